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
	// AuditEntries returns up to limit of the project's entries after seq
	// after, oldest first (0: the default page), with the project's total.
	AuditEntries(ctx context.Context, after int64, limit int) (api.AuditPage, error)
	// AuditNewest returns up to limit of the project's entries before seq
	// before (0: from the newest), newest first, with the project's total;
	// Next is the older page's before, 0 after the oldest.
	AuditNewest(ctx context.Context, before int64, limit int) (api.AuditPage, error)
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
		limit := 0
		if v := q.Get("limit"); v != "" {
			var err error
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
				return nil, errs.Invalid("limit=%q: want a positive number of entries", v)
			}
		}
		switch order := q.Get("order"); order {
		case "", "oldest":
			if q.Get("before") != "" {
				return nil, errs.Invalid("before=%q: only with order=newest; oldest first, page with after=", q.Get("before"))
			}
			after, err := parseSeq(q.Get("after"))
			if err != nil {
				return nil, err
			}
			return s.svc.AuditEntries(r.Context(), after, limit)
		case "newest":
			if q.Get("after") != "" {
				return nil, errs.Invalid("after=%q: only oldest first; newest first, page with before=", q.Get("after"))
			}
			before, err := parseSeq(q.Get("before"))
			if err != nil {
				return nil, errs.Invalid("before=%q: want a non-negative sequence number", q.Get("before"))
			}
			return s.svc.AuditNewest(r.Context(), before, limit)
		default:
			return nil, errs.Invalid("order=%q: want oldest (the default) or newest", order)
		}
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
