package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

func (s *server) modelRoutes(mux *router) {
	mux.Handle("GET /v1/registry/models", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Models(r.Context(), r.URL.Query().Get("name"))
	}))
	mux.Handle("GET /v1/registry/models/{name}/versions/{ref}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Model(r.Context(), r.PathValue("name"), r.PathValue("ref"))
	}))
	mux.Handle("POST /v1/registry/models/{name}/promote", s.handle(func(r *http.Request) (any, error) {
		var p api.Promote
		if err := decodeBody(r, &p); err != nil {
			return nil, err
		}
		return s.svc.Promote(r.Context(), r.PathValue("name"), p)
	}))
	mux.Handle("POST /v1/registry/models/{name}/rollback", s.handle(func(r *http.Request) (any, error) {
		var p api.Rollback
		if err := decodeBody(r, &p); err != nil {
			return nil, err
		}
		return s.svc.Rollback(r.Context(), r.PathValue("name"), p)
	}))
	mux.Handle("GET /v1/registry/models/{name}/history", s.handle(func(r *http.Request) (any, error) {
		return s.svc.AliasHistory(r.Context(), r.PathValue("name"), r.URL.Query().Get("alias"))
	}))
	mux.Handle("GET /v1/registry/models/{name}/approvals", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Approvals(r.Context(), r.PathValue("name"), r.URL.Query().Get("state"))
	}))
	mux.Handle("POST /v1/registry/approvals/{id}", s.handle(func(r *http.Request) (any, error) {
		var d api.Decision
		if err := decodeBody(r, &d); err != nil {
			return nil, err
		}
		return s.svc.Decide(r.Context(), r.PathValue("id"), d)
	}))
	mux.HandleFunc("GET /v1/registry/models/{name}/versions/{ref}/export", func(w http.ResponseWriter, r *http.Request) {
		// Streamed: ExportModel fails before its first byte on anything
		// about the model (a proper error response); a failure later cuts
		// the connection, so the client sees a broken transfer.
		s.stream(w, r, "application/x-tar", func(w io.Writer) error {
			return s.svc.ExportModel(r.Context(), r.PathValue("name"), r.PathValue("ref"), r.URL.Query().Get("format"), w)
		})
	})
	mux.Handle("GET /v1/reports/{digest}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.EvalReport(r.Context(), r.PathValue("digest"))
	}))
}

// decodeBody reads a small JSON request body into v.
func decodeBody(r *http.Request, v any) error {
	return decodeJSON(r, v, false)
}

// decodeOptionalBody is decodeBody for a route whose body may be left
// out: an empty body leaves v as it is.
func decodeOptionalBody(r *http.Request, v any) error {
	return decodeJSON(r, v, true)
}

func decodeJSON(r *http.Request, v any, optional bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !(optional && errors.Is(err, io.EOF)) {
		return errs.Invalid("%s %s: request body: %v", r.Method, r.URL.Path, err)
	}
	return nil
}
