// Package ident is the one grammar of what people and programs name in
// Tailor: names of datasets, bases, recipes, models and specs, aliases,
// and the short and long free-text fields (owner, actor, reason) that end
// up in listings, logs and the audit trail. Every package that checks one
// of these asks here, so a name valid in one place is valid in all.
package ident

import (
	"fmt"
	"regexp"
	"unicode"
	"unicode/utf8"

	"github.com/tailor-ml/tailor/internal/errs"
)

// The grammars. A name is what a newcomer types in a shell without quoting;
// an alias additionally starts with a letter so it never reads as a version.
var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	aliasRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
)

// Limits of the free-text fields, in characters.
const (
	MaxLabel = 128  // owner, actor
	MaxText  = 4096 // reason, override reason
)

// NameRule and AliasRule say the grammars in words, for error messages.
const (
	NameRule  = "1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
	AliasRule = "1-63 lower-case letters, digits, '_' or '-', starting with a letter"
)

// IsName reports whether s is a valid name.
func IsName(s string) bool { return nameRE.MatchString(s) }

// IsAlias reports whether s is a valid alias.
func IsAlias(s string) bool { return aliasRE.MatchString(s) }

// Name checks s as the name of a kind of thing ("dataset", "model").
func Name(kind, s string) error {
	if !IsName(s) {
		return errs.Invalid("%s name %q: use %s", kind, s, NameRule)
	}
	return nil
}

// Alias checks s as an alias.
func Alias(s string) error {
	if !IsAlias(s) {
		return errs.Invalid("alias %q: use %s", s, AliasRule)
	}
	return nil
}

// Label checks a short free-text field such as an owner or an actor: valid
// UTF-8, at most MaxLabel characters, and no control or formatting
// characters (an escape sequence in an owner must not repaint a terminal,
// a bidirectional override must not reorder a listing). Empty is valid.
func Label(field, s string) error { return check(field, s, MaxLabel, false) }

// Text checks a long free-text field such as a reason: as Label, but up to
// MaxText characters and with newlines and tabs allowed.
func Text(field, s string) error { return check(field, s, MaxText, true) }

func check(field, s string, limit int, multiline bool) error {
	if !utf8.ValidString(s) {
		return errs.Invalid("%s: not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > limit {
		return errs.Invalid("%s: %d characters, more than the %d allowed", field, n, limit)
	}
	for i, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return errs.Invalid("%s: character %s at byte %d is a control or formatting character", field, describe(r), i)
		}
	}
	return nil
}

func describe(r rune) string { return fmt.Sprintf("U+%04X", r) }
