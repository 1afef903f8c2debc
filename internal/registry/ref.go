package registry

import (
	"github.com/tailor-ml/tailor/internal/ident"
)

// CheckName reports whether name can name a model.
func CheckName(name string) error {
	return ident.Name("model", name)
}
