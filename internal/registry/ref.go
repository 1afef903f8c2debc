package registry

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
)

// Ref is a parsed model version reference. Exactly one field is set.
type Ref struct {
	Latest bool   // "" or "latest": the newest version
	Number int    // "v3" or "3"
	ID     string // 64 lower-case hex characters: a content id
	Alias  string // an alias name, e.g. "champion"
}

// String returns the reference in the form the store resolves ("v3",
// "latest", an id) or the alias name.
func (r Ref) String() string {
	switch {
	case r.Latest:
		return "latest"
	case r.Number > 0:
		return "v" + strconv.Itoa(r.Number)
	case r.ID != "":
		return r.ID
	}
	return r.Alias
}

var (
	idRE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	digits = regexp.MustCompile(`^v?[0-9]+$`)
)

// ParseRef reads "latest" (or ""), "v<N>" / "<N>" with N ≥ 1, a 64-hex
// content id, or an alias name.
func ParseRef(s string) (Ref, error) {
	switch {
	case s == "" || s == "latest":
		return Ref{Latest: true}, nil
	case digits.MatchString(s):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
		if err != nil || n < 1 {
			return Ref{}, errs.Invalid("version %q: want v1, v2, … (numbers start at 1)", s)
		}
		return Ref{Number: n}, nil
	case idRE.MatchString(s):
		return Ref{ID: s}, nil
	case ident.IsAlias(s):
		return Ref{Alias: s}, nil
	}
	return Ref{}, errs.Invalid("version %q: want latest, v<N>, <N>, a 64-hex version id or an alias name", s)
}

// CheckAlias reports whether name can name an alias: [a-z][a-z0-9_-]*, at
// most 63 characters, and not "latest" or "v<N>", which name versions.
func CheckAlias(name string) error {
	if err := ident.Alias(name); err != nil {
		return err
	}
	if name == "latest" || digits.MatchString(name) {
		return errs.Invalid("alias %q: reserved for version references; choose another name", name)
	}
	return nil
}

// CheckName reports whether name can name a model.
func CheckName(name string) error {
	return ident.Name("model", name)
}
