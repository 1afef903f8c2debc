package recipe

import (
	"github.com/tailor-ml/tailor/internal/ident"
)

// RefKind says what the part after "@" in a selector names.
type RefKind = ident.RefKind

// The reference kinds (ident's).
const (
	RefLatest  = ident.RefLatest  // no "@", or "@latest"
	RefVersion = ident.RefVersion // "@v3"
	RefID      = ident.RefID      // "@3fa9c1e" (7 to 64 lowercase hex digits)
	RefAlias   = ident.RefAlias   // "@champion"
)

// Selector picks a base model version by name: the latest version, a
// version number, an id prefix, or the version an alias points to.
type Selector struct {
	Name string
	Ref  string // "" for latest, else "v3", an id prefix or an alias
	Kind RefKind
}

// ParseSelector parses "name", "name@latest", "name@v3", "name@<id prefix>"
// or "name@alias", in the grammar every model reference uses
// (ident.ParseAddress).
func ParseSelector(s string) (Selector, error) {
	a, err := ident.ParseAddress("selector", s)
	if err != nil {
		return Selector{}, err
	}
	sel := Selector{Name: a.Name, Kind: a.Ref.Kind}
	if a.Ref.Kind != ident.RefLatest {
		sel.Ref = a.Ref.String()
	}
	return sel, nil
}

// String renders the canonical form: "name" for latest, else "name@ref".
func (s Selector) String() string {
	if s.Ref == "" {
		return s.Name
	}
	return s.Name + "@" + s.Ref
}
