package registry

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	id := strings.Repeat("ab", 32)
	tests := []struct {
		in   string
		want Ref
		bad  bool
	}{
		{"", Ref{Latest: true}, false},
		{"latest", Ref{Latest: true}, false},
		{"v3", Ref{Number: 3}, false},
		{"3", Ref{Number: 3}, false},
		{"v007", Ref{Number: 7}, false},
		{id, Ref{ID: id}, false},
		{"champion", Ref{Alias: "champion"}, false},
		{"canary-eu_2", Ref{Alias: "canary-eu_2"}, false},
		{"v0", Ref{}, true},
		{"0", Ref{}, true},
		{"v99999999999999999999", Ref{}, true},
		{"Champion", Ref{}, true},
		{"-1", Ref{}, true},
		{"2champ", Ref{}, true},
		{strings.ToUpper(id), Ref{}, true},
		{strings.Repeat("a", 64), Ref{ID: strings.Repeat("a", 64)}, false}, // 64 hex: an id, never an alias
		{strings.Repeat("g", 64), Ref{}, true},                             // too long for an alias
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRef(tc.in)
			if tc.bad {
				wantErr(t, err, "invalid", fmt.Sprintf("%q", tc.in))
				return
			}
			must(t, err)
			if got != tc.want {
				t.Errorf("ParseRef(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestCheckAlias(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"champion", true}, {"a", true}, {"eu-canary_2", true},
		{"", false}, {"latest", false}, {"v2", false}, {"2", false}, {"Champion", false}, {"-x", false},
		{strings.Repeat("a", 63), true}, {strings.Repeat("a", 64), false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			err := CheckAlias(tc.in)
			if tc.ok {
				must(t, err)
				return
			}
			wantErr(t, err, "invalid", fmt.Sprintf("%q", tc.in))
		})
	}
}

// FuzzParseRef checks that ParseRef never panics, sets exactly one field,
// names the input in its errors, round-trips through String, and accepts as
// an alias only what CheckAlias accepts.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"", "latest", "v1", "12", "v0", "champion", "Champion", strings.Repeat("f", 64),
		"v-1", "v+1", "vv1", "0x10", "latest ", "a\x00b", "ü", strings.Repeat("9", 30)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
				t.Fatalf("error %q does not name the input", err)
			}
			if r != (Ref{}) {
				t.Fatalf("error with non-zero ref %+v", r)
			}
			return
		}
		set := 0
		for _, b := range []bool{r.Latest, r.Number > 0, r.ID != "", r.Alias != ""} {
			if b {
				set++
			}
		}
		if set != 1 || r.Number < 0 {
			t.Fatalf("ParseRef(%q) = %+v: want exactly one field set", s, r)
		}
		back, err := ParseRef(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRef(%q).String() = %q parses to %+v, %v", s, r.String(), back, err)
		}
		if r.Alias != "" && CheckAlias(r.Alias) != nil {
			t.Fatalf("ParseRef accepted alias %q that CheckAlias refuses: %v", s, CheckAlias(r.Alias))
		}
	})
}
