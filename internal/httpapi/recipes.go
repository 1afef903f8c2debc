package httpapi

import (
	"fmt"
	"io"
	"net/http"

	"github.com/tailor-ml/tailor/internal/errs"
)

// maxRecipeBytes bounds a recipe upload; recipes are small YAML files.
const maxRecipeBytes = 1 << 20

func (s *server) recipeRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/recipes", s.handle(func(r *http.Request) (any, error) {
		src, err := io.ReadAll(io.LimitReader(r.Body, maxRecipeBytes+1))
		if err != nil {
			return nil, fmt.Errorf("read recipe: %w", err)
		}
		name := r.URL.Query().Get("filename")
		if len(src) > maxRecipeBytes {
			return nil, errs.Invalid("%s: recipe is larger than %d bytes", name, maxRecipeBytes)
		}
		return s.svc.ApplyRecipe(r.Context(), name, src)
	}))
	mux.Handle("GET /v1/recipes", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Recipes(r.Context(), r.URL.Query().Get("name"))
	}))
	mux.Handle("GET /v1/recipes/{name}/versions/{ref}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Recipe(r.Context(), r.PathValue("name"), r.PathValue("ref"))
	}))
}
