package recipe

import (
	"regexp"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
)

// RefKind says what the part after "@" in a selector names.
type RefKind string

// The reference kinds.
const (
	RefLatest  RefKind = "latest"  // no "@", or "@latest"
	RefVersion RefKind = "version" // "@v3"
	RefID      RefKind = "id"      // "@3fa9c1e" (7 to 64 lowercase hex digits)
	RefAlias   RefKind = "alias"   // "@champion"
)

// Selector picks a base model version by name: the latest version, a
// version number, an id prefix, or the version an alias points to.
type Selector struct {
	Name string
	Ref  string // "" for latest, else "v3", an id prefix or an alias
	Kind RefKind
}

var (
	modelNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$`)
	versionRE   = regexp.MustCompile(`^v[1-9][0-9]{0,8}$`)
	idPrefixRE  = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
)

// ParseSelector parses "name", "name@latest", "name@v3", "name@<id prefix>"
// or "name@alias". A ref of 7 to 64 lowercase hex digits is an id prefix;
// "v" and a number is a version; any other lowercase word is an alias.
func ParseSelector(s string) (Selector, error) {
	name, ref, hasRef := strings.Cut(s, "@")
	if len(s) > 200 {
		return Selector{}, errs.Invalid("invalid selector: longer than 200 characters")
	}
	if !modelNameRE.MatchString(name) {
		return Selector{}, errs.Invalid("invalid selector %q: the name must start with a letter or digit and use only letters, digits, '.', '_', '-' (and at most one '/')", s)
	}
	switch {
	case !hasRef || ref == "latest":
		return Selector{Name: name, Kind: RefLatest}, nil
	case ref == "":
		return Selector{}, errs.Invalid("invalid selector %q: nothing after '@' (write name, name@v3, name@<id prefix> or name@alias)", s)
	case strings.HasPrefix(ref, "v") && strings.Trim(ref[1:], "0123456789") == "" && len(ref) > 1 && !versionRE.MatchString(ref):
		return Selector{}, errs.Invalid("invalid selector %q: versions are v1, v2, … (at most 9 digits)", s)
	case versionRE.MatchString(ref):
		return Selector{Name: name, Ref: ref, Kind: RefVersion}, nil
	case idPrefixRE.MatchString(ref):
		return Selector{Name: name, Ref: ref, Kind: RefID}, nil
	case ident.IsAlias(ref):
		return Selector{Name: name, Ref: ref, Kind: RefAlias}, nil
	}
	return Selector{}, errs.Invalid("invalid selector %q: %q is not a version (v3), an id prefix (7+ hex digits) or an alias (lowercase word like champion)", s, ref)
}

// String renders the canonical form: "name" for latest, else "name@ref".
func (s Selector) String() string {
	if s.Ref == "" {
		return s.Name
	}
	return s.Name + "@" + s.Ref
}
