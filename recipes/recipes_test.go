package recipes

import (
	"io/fs"
	"testing"

	"github.com/tailor-ml/tailor/internal/recipe"
)

// TestShippedRecipesParse: every shipped recipe parses and validates.
func TestShippedRecipesParse(t *testing.T) {
	names, err := fs.Glob(Files, "*.yaml")
	if err != nil || len(names) < 3 {
		t.Fatalf("recipes %v, %v", names, err)
	}
	for _, n := range names {
		src, _ := Read(n)
		r, err := recipe.Parse(n, src)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if err := r.Validate(recipe.ValidateOptions{}); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}
