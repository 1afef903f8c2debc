package httpapi

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

func (s *server) datasetRoutes(mux *router) {
	mux.Handle("POST /v1/datasets/{name}/versions", s.handle(func(r *http.Request) (any, error) {
		q := r.URL.Query()
		expect, err := expectParent(r.Header)
		if err != nil {
			return nil, err
		}
		appendTo, err := queryBool(q, "append")
		if err != nil {
			return nil, err
		}
		skip, err := queryBool(q, "skip_existing")
		if err != nil {
			return nil, err
		}
		release, err := s.upload(r.Context())
		if err != nil {
			return nil, err
		}
		defer release()
		body := s.uploadBody(r)
		return s.svc.ImportDataset(r.Context(), body, api.DatasetImportOptions{
			Name: r.PathValue("name"), Task: q.Get("task"), Format: q.Get("format"),
			FileName: q.Get("filename"), Region: q.Get("region"), Owner: q.Get("owner"),
			Split: q.Get("split"), Append: appendTo, SkipExisting: skip, ExpectParent: expect,
		})
	}))
	mux.Handle("GET /v1/datasets", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Datasets(r.Context(), r.URL.Query().Get("name"))
	}))
	mux.Handle("GET /v1/datasets/{name}/versions/{ref}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Dataset(r.Context(), r.PathValue("name"), r.PathValue("ref"))
	}))
	mux.HandleFunc("GET /v1/datasets/{name}/versions/{ref}/records", func(w http.ResponseWriter, r *http.Request) {
		// Check the version first so a bad name gets a JSON error, not a
		// truncated stream.
		if _, err := s.svc.Dataset(r.Context(), r.PathValue("name"), r.PathValue("ref")); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.stream(w, r, "application/x-ndjson", func(w io.Writer) error {
			return s.svc.DatasetRecords(r.Context(), r.PathValue("name"), r.PathValue("ref"), r.URL.Query().Get("split"), w)
		})
	})
	mux.Handle("GET /v1/datasets/{name}/diff", s.handle(func(r *http.Request) (any, error) {
		q := r.URL.Query()
		return s.svc.DiffDatasets(r.Context(), r.PathValue("name"), q.Get("a"), q.Get("b"))
	}))
}

// expectParent reads an import's precondition: If-Match: "<version id>"
// (the latest version must be that one) or If-None-Match: * (the dataset
// must have no version yet).
func expectParent(h http.Header) (string, error) {
	match, none := h.Get("If-Match"), h.Get("If-None-Match")
	switch {
	case match != "" && none != "":
		return "", errs.Invalid("send If-Match or If-None-Match, not both")
	case none == "*":
		return api.ExpectNone, nil
	case none != "":
		return "", errs.Invalid("If-None-Match %q: only * (no version yet) is supported", none)
	case match == "":
		return "", nil
	}
	id := strings.TrimPrefix(strings.TrimSuffix(match, `"`), `"`)
	if id == "" || id == "*" || strings.ContainsAny(id, `", `) {
		return "", errs.Invalid(`If-Match %q: want one quoted version id, such as "3f2a…"`, match)
	}
	return id, nil
}

// queryDuration reads an optional duration query parameter (def when
// absent): a Go duration such as 90m or 168h, not negative.
func queryDuration(q url.Values, name string, def time.Duration) (time.Duration, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errs.Invalid("query parameter %s=%q: want a duration such as 30m or 168h", name, v)
	}
	return d, nil
}

// queryBool reads an optional true/false query parameter; anything else is
// a 400 naming the parameter, never a silent false.
func queryBool(q url.Values, name string) (bool, error) {
	switch v := q.Get(name); v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, errs.Invalid("query parameter %s=%q: want true or false", name, v)
	}
}
