package ident

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestParseRef(t *testing.T) {
	id := strings.Repeat("ab", 32)
	tests := []struct {
		in   string
		want Ref
		bad  bool
	}{
		{"", Ref{Kind: RefLatest}, false},
		{"latest", Ref{Kind: RefLatest}, false},
		{"v3", Ref{Kind: RefVersion, Version: 3}, false},
		{"3", Ref{Kind: RefVersion, Version: 3}, false},
		{"v007", Ref{Kind: RefVersion, Version: 7}, false},
		{"123456", Ref{Kind: RefVersion, Version: 123456}, false},
		{"v123456789", Ref{Kind: RefVersion, Version: 123456789}, false},
		{"1234567", Ref{Kind: RefID, ID: "1234567"}, false}, // 7 digits: an id prefix
		{id, Ref{Kind: RefID, ID: id}, false},
		{"3fa9c1e", Ref{Kind: RefID, ID: "3fa9c1e"}, false},
		{"champion", Ref{Kind: RefAlias, Alias: "champion"}, false},
		{"canary-eu_2", Ref{Kind: RefAlias, Alias: "canary-eu_2"}, false},
		{"cafe", Ref{Kind: RefAlias, Alias: "cafe"}, false}, // 4 hex letters: too short for an id
		{"v0", Ref{}, true},
		{"0", Ref{}, true},
		{"v1234567890", Ref{}, true},
		{"v99999999999999999999", Ref{}, true},
		{"Champion", Ref{}, true},
		{"-1", Ref{}, true},
		{"2champ", Ref{}, true},
		{strings.ToUpper(id), Ref{}, true},
		{id + "a", Ref{}, true},
		{strings.Repeat("g", 64), Ref{}, true},
		{"a@b", Ref{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRef(tc.in)
			if tc.bad {
				if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)) {
					t.Fatalf("ParseRef(%q) = %+v, %v; want an invalid error quoting the input", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestCheckAliasName(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"champion", true}, {"a", true}, {"eu-canary_2", true}, {"cafe", true},
		{"", false}, {"latest", false}, {"v2", false}, {"2", false}, {"Champion", false}, {"-x", false},
		{"deadbeef", false}, {"abcdefa", false}, {strings.Repeat("a", 63), false},
		{strings.Repeat("x", 63), true}, {strings.Repeat("x", 64), false},
	} {
		if err := CheckAliasName(tc.in); (err == nil) != tc.ok || (err != nil && (!errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)))) {
			t.Errorf("CheckAliasName(%q) = %v, want ok %v", tc.in, err, tc.ok)
		}
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in   string
		want Address
		err  string
	}{
		{"spam-lora", Address{Name: "spam-lora"}, ""},
		{"spam-lora@champion", Address{Name: "spam-lora", Ref: Ref{Kind: RefAlias, Alias: "champion"}, HasRef: true}, ""},
		{"spam-lora@3", Address{Name: "spam-lora", Ref: Ref{Kind: RefVersion, Version: 3}, HasRef: true}, ""},
		{"spam-lora@v3", Address{Name: "spam-lora", Ref: Ref{Kind: RefVersion, Version: 3}, HasRef: true}, ""},
		{"spam-lora@latest", Address{Name: "spam-lora", Ref: Ref{Kind: RefLatest}, HasRef: true}, ""},
		{"tailor-tiny@3fa9c1e", Address{Name: "tailor-tiny", Ref: Ref{Kind: RefID, ID: "3fa9c1e"}, HasRef: true}, ""},
		{"spam-lora@", Address{}, `model "spam-lora@": nothing after '@'`},
		{"Spam@v1", Address{}, `model "Spam@v1": the name must be`},
		{"spam@v1@v2", Address{}, `model "spam@v1@v2": version "v1@v2": want latest, v<N>`},
		{"spam@v0", Address{}, `model "spam@v0": version "v0": want v1, v2, … (numbers start at 1`},
		{"@v1", Address{}, `model "@v1": the name must be`},
	}
	for _, tc := range tests {
		got, err := ParseAddress("model", tc.in)
		if tc.err != "" {
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseAddress(%q) = %+v, %v; want an error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		canon := tc.in
		if tc.in == "spam-lora@3" {
			canon = "spam-lora@v3"
		}
		if got.String() != canon {
			t.Errorf("ParseAddress(%q).String() = %q, want %q", tc.in, got.String(), canon)
		}
	}
}

// FuzzParseAddress checks that ParseAddress never panics, names the input
// in its errors, round-trips through String, and accepts as an alias only
// what CheckAliasName accepts.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"m", "m@", "m@latest", "m@v1", "m@12", "m@v0", "m@champion", "m@Champion", "m@" + strings.Repeat("f", 64),
		"m@v-1", "m@v+1", "m@vv1", "m@0x10", "m@latest ", "m@a\x00b", "ü@1", "m@" + strings.Repeat("9", 30), "m@@", "m@1234567"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress("model", s)
		if err != nil {
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) || a != (Address{}) {
				t.Fatalf("ParseAddress(%q) = %+v, %v: want a zero address and an error naming the input", s, a, err)
			}
			return
		}
		back, err := ParseAddress("model", a.String())
		if err != nil || back != a {
			t.Fatalf("ParseAddress(%q).String() = %q parses to %+v, %v", s, a.String(), back, err)
		}
		if a.Ref.Kind == RefAlias && CheckAliasName(a.Ref.Alias) != nil {
			t.Fatalf("ParseAddress accepted alias %q that CheckAliasName refuses: %v", a.Ref.Alias, CheckAliasName(a.Ref.Alias))
		}
		if a.Ref.Kind == RefVersion && a.Ref.Version < 1 {
			t.Fatalf("version %d", a.Ref.Version)
		}
	})
}
