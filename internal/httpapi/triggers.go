package httpapi

import (
	"net/http"
)

// triggerRoutes serve triggers: apply a spec, list, show, and the history
// of firings.
func (s *server) triggerRoutes(mux *router) {
	mux.Handle("POST /v1/triggers", s.handle(func(r *http.Request) (any, error) {
		name, src, err := readSpec(r, "trigger")
		if err != nil {
			return nil, err
		}
		return s.svc.ApplyTrigger(r.Context(), name, src)
	}))
	mux.Handle("GET /v1/triggers", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Triggers(r.Context())
	}))
	mux.Handle("GET /v1/triggers/{name}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Trigger(r.Context(), r.PathValue("name"))
	}))
	mux.Handle("GET /v1/triggers/{name}/history", s.handle(func(r *http.Request) (any, error) {
		return s.svc.TriggerHistory(r.Context(), r.PathValue("name"))
	}))
}
