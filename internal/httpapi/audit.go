package httpapi

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

// AuditService is what the audit routes need from the application.
type AuditService interface {
	// AuditEntries returns up to limit entries after seq after (0: the
	// default page).
	AuditEntries(ctx context.Context, after int64, limit int) (api.AuditPage, error)
	// VerifyAudit walks the chain; a broken chain is in the result.
	VerifyAudit(ctx context.Context) (api.AuditVerification, error)
	// ExportAudit writes every entry as one JSON line, oldest first.
	ExportAudit(ctx context.Context, w io.Writer) error
}

// auditRoutes serve the audit log: a page of entries, the verification
// of the whole chain, and the whole log as JSON lines.
func (s *server) auditRoutes(mux *router) {
	mux.Handle("GET /v1/audit", s.handle(func(r *http.Request) (any, error) {
		q := r.URL.Query()
		after, err := parseSeq(q.Get("after"))
		if err != nil {
			return nil, err
		}
		limit := 0
		if v := q.Get("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
				return nil, errs.Invalid("limit=%q: want a positive number of entries", v)
			}
		}
		return s.svc.AuditEntries(r.Context(), after, limit)
	}))
	mux.Handle("GET /v1/audit/verify", s.handle(func(r *http.Request) (any, error) {
		return s.svc.VerifyAudit(r.Context())
	}))
	mux.HandleFunc("GET /v1/audit/export", func(w http.ResponseWriter, r *http.Request) {
		s.stream(w, r, "application/x-ndjson", func(out io.Writer) error {
			return s.svc.ExportAudit(r.Context(), out)
		})
	})
}

// Routes lists the "METHOD /path" patterns of the handler New(opts)
// builds, in registration order: what a test enumerates to hold every
// state-changing route to its audit entry.
func Routes(opts Options) []string {
	_, rt, _ := newRouter(opts)
	return slices.Clone(rt.patterns)
}
