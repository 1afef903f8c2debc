package httpapi

import "net/http"

func (s *server) baseRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/bases/{name}/versions", s.handle(func(r *http.Request) (any, error) {
		if run := r.URL.Query().Get("from_run"); run != "" {
			return s.svc.ImportBaseFromRun(r.Context(), r.PathValue("name"), run)
		}
		body := http.MaxBytesReader(nil, r.Body, s.opts.MaxUpload)
		return s.svc.ImportBase(r.Context(), r.PathValue("name"), r.URL.Query().Get("region"), body)
	}))
	mux.Handle("GET /v1/bases", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Bases(r.Context(), r.URL.Query().Get("name"))
	}))
	mux.Handle("GET /v1/bases/{name}/versions/{ref}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Base(r.Context(), r.PathValue("name"), r.PathValue("ref"))
	}))
}
