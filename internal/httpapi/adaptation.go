package httpapi

import (
	"net/http"
	"strconv"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

// adaptationRoutes serve continuous adaptation: monitors and feedback.
func (s *server) adaptationRoutes(mux *router) {
	mux.Handle("POST /v1/monitors", s.handle(func(r *http.Request) (any, error) {
		name, src, err := readSpec(r, "monitor")
		if err != nil {
			return nil, err
		}
		return s.svc.ApplyMonitor(r.Context(), name, src)
	}))
	mux.Handle("GET /v1/monitors", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Monitors(r.Context())
	}))
	mux.Handle("GET /v1/monitors/{name}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Monitor(r.Context(), r.PathValue("name"))
	}))
	mux.Handle("GET /v1/monitors/{name}/windows", s.handle(func(r *http.Request) (any, error) {
		after := int64(-1)
		if v := r.URL.Query().Get("after"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, errs.Invalid("after %q: want a window index", v)
			}
			after = n
		}
		return s.svc.MonitorWindows(r.Context(), r.PathValue("name"), after)
	}))
	mux.Handle("GET /v1/monitors/{name}/profile", s.handle(func(r *http.Request) (any, error) {
		return s.svc.MonitorProfile(r.Context(), r.PathValue("name"))
	}))
	mux.Handle("POST /v1/feedback", s.handle(func(r *http.Request) (any, error) {
		var f api.Feedback
		if err := decodeBody(r, &f); err != nil {
			return nil, err
		}
		return s.svc.PostFeedback(r.Context(), f)
	}))
	mux.Handle("POST /v1/feedback/{model}/accumulate", s.handle(func(r *http.Request) (any, error) {
		v, err := s.svc.AccumulateFeedback(r.Context(), r.PathValue("model"))
		if err != nil {
			return nil, err
		}
		return map[string]any{"accumulated": v}, nil
	}))
}
