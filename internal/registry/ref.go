package registry

import (
	"github.com/tailor-ml/tailor/internal/ident"
)

// CheckAlias reports whether name can name an alias (ident.CheckAliasName:
// an alias that does not read as a version or an id prefix).
func CheckAlias(name string) error { return ident.CheckAliasName(name) }

// CheckName reports whether name can name a model.
func CheckName(name string) error {
	return ident.Name("model", name)
}
