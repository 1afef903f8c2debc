package httpapi

import (
	"context"
	"net/http"

	"github.com/tailor-ml/tailor/api"
)

// Copier makes cross-region copies (part of Service).
type Copier interface {
	Copy(ctx context.Context, req api.CopyRequest) (api.Copy, error)
}

// copyRoutes serve the one explicit way a dataset, base or model version
// crosses regions. A copy the residency policy forbids is a 403 naming the
// version, its region, the compute region and the rule.
func (s *server) copyRoutes(mux *router) {
	mux.Handle("POST /v1/copies", s.handle(func(r *http.Request) (any, error) {
		var req api.CopyRequest
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return s.svc.Copy(r.Context(), req)
	}))
}
