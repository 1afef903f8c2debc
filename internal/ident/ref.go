package ident

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// RefKind says what a reference names.
type RefKind uint8

// The reference kinds.
const (
	RefLatest  RefKind = iota // "" or "latest": the newest version
	RefVersion                // "v3", or "3" (up to 6 digits)
	RefID                     // 7 to 64 lower-case hex digits: a content id or a prefix of one
	RefAlias                  // an alias name, e.g. "champion"
)

// String names the kind in words: latest, version, id or alias.
func (k RefKind) String() string {
	switch k {
	case RefVersion:
		return "version"
	case RefID:
		return "id"
	case RefAlias:
		return "alias"
	}
	return "latest"
}

// Ref is a parsed version reference: the part after '@' in
// "spam-lora@champion". The store, the registry, serving and recipe
// selectors all read references with ParseRef.
type Ref struct {
	Kind    RefKind
	Version int    // RefVersion: N ≥ 1
	ID      string // RefID: a full content id (64 hex digits) or a prefix of one
	Alias   string // RefAlias
}

// MinIDPrefix is the shortest id prefix a reference may use.
const MinIDPrefix = 7

var (
	versionRE = regexp.MustCompile(`^(v[0-9]+|[0-9]{1,6})$`)
	idRE      = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
)

// RefRule says the grammar in words, for error messages.
const RefRule = "latest, v<N>, a content id (or its first 7+ hex digits) or an alias"

// ParseRef reads "" or "latest"; "v<N>" (N ≥ 1, at most 9 digits) or a bare
// number of up to 6 digits; 7 to 64 lower-case hex digits, a content id or
// its prefix; or an alias. Errors wrap errs.ErrInvalid and quote s.
func ParseRef(s string) (Ref, error) {
	switch {
	case s == "" || s == "latest":
		return Ref{Kind: RefLatest}, nil
	case versionRE.MatchString(s):
		digits := strings.TrimPrefix(s, "v")
		n, err := strconv.Atoi(digits)
		if err != nil || len(digits) > 9 || n < 1 {
			return Ref{}, errs.Invalid("version %q: want v1, v2, … (numbers start at 1 and have at most 9 digits)", s)
		}
		return Ref{Kind: RefVersion, Version: n}, nil
	case idRE.MatchString(s):
		return Ref{Kind: RefID, ID: s}, nil
	case IsAlias(s):
		return Ref{Kind: RefAlias, Alias: s}, nil
	}
	return Ref{}, errs.Invalid("version %q: want %s", s, RefRule)
}

// String returns the canonical form ParseRef reads back: "latest", "v3",
// the id or the alias.
func (r Ref) String() string {
	switch r.Kind {
	case RefVersion:
		return "v" + strconv.Itoa(r.Version)
	case RefID:
		return r.ID
	case RefAlias:
		return r.Alias
	}
	return "latest"
}

// Fixed reports whether r always names the same version (a number or an
// id), where latest and an alias move.
func (r Ref) Fixed() bool { return r.Kind == RefVersion || r.Kind == RefID }

// IsPrefix reports whether a RefID reference is shorter than a full id.
func (r Ref) IsPrefix() bool { return r.Kind == RefID && len(r.ID) < 64 }

// CheckAliasName reports whether name can be given to an alias: an alias
// name that does not read as a version or an id prefix.
func CheckAliasName(name string) error {
	if err := Alias(name); err != nil {
		return err
	}
	if r, _ := ParseRef(name); r.Kind != RefAlias {
		return errs.Invalid("alias %q: reserved: it reads as a version reference (latest, v<N> or 7+ hex digits); choose another name", name)
	}
	return nil
}

// Address is "name" or "name@ref": one version of a named thing, or with
// no '@' whatever the reader's default is (the newest version; serving
// prefers a base, then the champion alias).
type Address struct {
	Name   string
	Ref    Ref
	HasRef bool // an '@' was written; the zero Address names a bare name
}

// ParseAddress reads "name" or "name@ref" for a kind of thing ("model",
// "dataset"). Errors wrap errs.ErrInvalid and quote s.
func ParseAddress(kind, s string) (Address, error) {
	name, ref, hasAt := strings.Cut(s, "@")
	if !IsName(name) {
		return Address{}, errs.Invalid("%s %q: the name must be %s", kind, s, NameRule)
	}
	if !hasAt {
		return Address{Name: name}, nil
	}
	if ref == "" {
		return Address{}, errs.Invalid("%s %q: nothing after '@'; write %s", kind, s, RefRule)
	}
	r, err := ParseRef(ref)
	if err != nil {
		return Address{}, errs.Invalid("%s %q: %v", kind, s, err)
	}
	return Address{Name: name, Ref: r, HasRef: true}, nil
}

// String returns the canonical form: "name" when bare, else "name@ref".
func (a Address) String() string {
	if !a.HasRef {
		return a.Name
	}
	return a.Name + "@" + a.Ref.String()
}
