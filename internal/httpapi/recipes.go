package httpapi

import (
	"fmt"
	"io"
	"net/http"

	"github.com/tailor-ml/tailor/internal/errs"
)

// maxSpecBytes bounds a recipe, monitor or trigger upload: small YAML files.
const maxSpecBytes = 1 << 20

// readSpec reads an uploaded YAML document (a recipe, monitor or trigger)
// and the file name it came from (?filename=).
func readSpec(r *http.Request, what string) (string, []byte, error) {
	src, err := io.ReadAll(io.LimitReader(r.Body, maxSpecBytes+1))
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", what, err)
	}
	name := r.URL.Query().Get("filename")
	if len(src) > maxSpecBytes {
		return "", nil, errs.Invalid("%s: %s is larger than %d bytes", name, what, maxSpecBytes)
	}
	return name, src, nil
}

func (s *server) recipeRoutes(mux *router) {
	mux.Handle("POST /v1/recipes", s.handle(func(r *http.Request) (any, error) {
		name, src, err := readSpec(r, "recipe")
		if err != nil {
			return nil, err
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
