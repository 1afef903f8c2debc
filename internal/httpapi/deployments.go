package httpapi

import (
	"net/http"
	"strconv"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

// deploymentRoutes serve deployments: change one (a new version), list,
// show, history, the request-log comparison, and the canary's promotion
// or rollback.
func (s *server) deploymentRoutes(mux *router) {
	mux.Handle("POST /v1/deployments", s.handle(func(r *http.Request) (any, error) {
		var d api.DeploymentSpec
		if err := decodeBody(r, &d); err != nil {
			return nil, err
		}
		return s.svc.Deploy(r.Context(), d)
	}))
	mux.Handle("GET /v1/deployments", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Deployments(r.Context())
	}))
	mux.Handle("GET /v1/deployments/{name}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Deployment(r.Context(), r.PathValue("name"))
	}))
	mux.Handle("GET /v1/deployments/{name}/history", s.handle(func(r *http.Request) (any, error) {
		return s.svc.DeploymentHistory(r.Context(), r.PathValue("name"))
	}))
	mux.Handle("GET /v1/deployments/{name}/compare", s.handle(func(r *http.Request) (any, error) {
		q := r.URL.Query()
		var o api.CompareOptions
		var err error
		if o.All, err = queryBool(q, "all"); err != nil {
			return nil, err
		}
		if v := q.Get("version"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return nil, errs.Invalid("query parameter \"version\" %q: want a deployment version number, 1 or more", v)
			}
			o.Version = n
		}
		if o.All && o.Version != 0 {
			return nil, errs.Invalid("query parameters \"all\" and \"version\" exclude each other")
		}
		return s.svc.CompareDeployment(r.Context(), r.PathValue("name"), o)
	}))
	mux.Handle("POST /v1/deployments/{name}/promote", s.handle(func(r *http.Request) (any, error) {
		var p api.DeploymentPromote
		if err := decodeBody(r, &p); err != nil {
			return nil, err
		}
		return s.svc.PromoteCanary(r.Context(), r.PathValue("name"), p)
	}))
	mux.Handle("POST /v1/deployments/{name}/rollback", s.handle(func(r *http.Request) (any, error) {
		var p api.DeploymentRollback
		if err := decodeBody(r, &p); err != nil {
			return nil, err
		}
		return s.svc.RollbackCanary(r.Context(), r.PathValue("name"), p)
	}))
}
