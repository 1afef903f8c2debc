package httpapi

import (
	"io"
	"net/http"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

func (s *server) baseRoutes(mux *router) {
	mux.Handle("POST /v1/bases/{name}/versions", s.handle(func(r *http.Request) (any, error) {
		if run := r.URL.Query().Get("from_run"); run != "" {
			return s.svc.ImportBaseFromRun(r.Context(), r.PathValue("name"), run)
		}
		release, err := s.upload(r.Context())
		if err != nil {
			return nil, err
		}
		defer release()
		body := s.uploadBody(r)
		return s.svc.ImportBase(r.Context(), r.PathValue("name"), r.URL.Query().Get("region"), body)
	}))
	mux.Handle("GET /v1/bases", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Bases(r.Context(), r.URL.Query().Get("name"))
	}))
	mux.HandleFunc("GET /v1/bases/{name}/versions/{ref}/files/{file}", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.svc.Base(r.Context(), r.PathValue("name"), r.PathValue("ref"))
		if err == nil && !hasFile(v, r.PathValue("file")) {
			err = errs.NotFound("base %s v%d has no file %q", v.Name, v.Version, r.PathValue("file"))
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.stream(w, r, "application/octet-stream", func(w io.Writer) error {
			return s.svc.BaseFile(r.Context(), r.PathValue("name"), r.PathValue("ref"), r.PathValue("file"), w)
		})
	})
	mux.Handle("GET /v1/bases/{name}/versions/{ref}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Base(r.Context(), r.PathValue("name"), r.PathValue("ref"))
	}))
}

func hasFile(v api.BaseVersion, name string) bool {
	for _, f := range v.Files {
		if f.Name == name {
			return true
		}
	}
	return false
}
