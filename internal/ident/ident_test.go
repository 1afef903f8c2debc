package ident

import (
	"errors"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestNames(t *testing.T) {
	tests := []struct {
		s           string
		name, alias bool
	}{
		{"spam", true, true},
		{"spam-lora.v2", true, false},
		{"2026-data", true, false},
		{"champion", true, true},
		{"", false, false},
		{"Spam", false, false},
		{"-x", false, false},
		{"a b", false, false},
		{"a/b", false, false},
		{strings.Repeat("a", 64), true, false},
		{strings.Repeat("a", 63), true, true},
		{strings.Repeat("a", 65), false, false},
		{"\x1b[31mred", false, false},
	}
	for _, tt := range tests {
		if got := IsName(tt.s); got != tt.name {
			t.Errorf("IsName(%q) = %v", tt.s, got)
		}
		if got := IsAlias(tt.s); got != tt.alias {
			t.Errorf("IsAlias(%q) = %v", tt.s, got)
		}
		if err := Name("dataset", tt.s); (err == nil) != tt.name || (err != nil && !errors.Is(err, errs.ErrInvalid)) {
			t.Errorf("Name(%q) = %v", tt.s, err)
		}
	}
}

func TestFreeText(t *testing.T) {
	tests := []struct {
		s           string
		label, text string // "" valid, else a part of the error
	}{
		{"", "", ""},
		{"alice@example.com", "", ""},
		{"Zoë Łukasz 山田", "", ""},
		{"team\x1b[2J", "U+001B at byte 4", "U+001B at byte 4"},
		{"a\nb", "U+000A at byte 1", ""},
		{"a\tb", "U+0009", ""},
		{"evil\u202Etxt", "U+202E", "U+202E"},
		{"bad \xff utf8", "not valid UTF-8", "not valid UTF-8"},
		{strings.Repeat("é", 128), "", ""},
		{strings.Repeat("é", 129), "129 characters, more than the 128 allowed", ""},
		{strings.Repeat("x", 4097), "4097 characters", "4097 characters, more than the 4096 allowed"},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			fn   func(string, string) error
			want string
		}{{Label, tt.label}, {Text, tt.text}} {
			err := c.fn("owner", tt.s)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("%q: unexpected %v", tt.s, err)
			case c.want != "" && (err == nil || !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "owner: ")):
				t.Errorf("%q: err = %v, want one containing %q", tt.s, err, c.want)
			}
		}
	}
}
