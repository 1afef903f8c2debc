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
			page, err := s.svc.AuditEntries(r.Context(), after, limit)
			if err != nil {
				return nil, err
			}
			page.Total, err = auditHead(r.Context(), s.svc)
			return page, err
		case "newest":
			if q.Get("after") != "" {
				return nil, errs.Invalid("after=%q: only oldest first; newest first, page with before=", q.Get("after"))
			}
			before, err := parseSeq(q.Get("before"))
			if err != nil {
				return nil, errs.Invalid("before=%q: want a non-negative sequence number", q.Get("before"))
			}
			return auditNewest(r.Context(), s.svc, before, limit)
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

// The default and largest newest-first page, as internal/app has for
// oldest first.
const (
	auditDefaultPage = 100
	auditMaxPage     = 1000
)

// auditHead is the newest entry's seq, which is the number of entries:
// seqs run 1, 2, 3… without gaps (docs/security.md, Audit log). The
// service pages oldest first after a seq and keeps no count, and whether
// an entry follows seq k only turns from yes to no as k grows, so doubling
// a step and then halving the gap finds the newest seq in about 2·log2(n)
// reads of one entry each (a count in the store would be one read; the
// store is not this package's to change).
func auditHead(ctx context.Context, svc AuditService) (int64, error) {
	// after returns the first seq after k, or 0 when there is none.
	after := func(k int64) (int64, error) {
		p, err := svc.AuditEntries(ctx, k, 1)
		if err != nil || len(p.Entries) == 0 {
			return 0, err
		}
		return p.Entries[0].Seq, nil
	}
	lo, err := after(0) // an entry: the newest seq is at least lo
	if lo == 0 || err != nil {
		return 0, err
	}
	var hi int64 // no entry after hi, once found
	for step := int64(1); hi == 0; step *= 2 {
		s, err := after(lo + step - 1)
		switch {
		case err != nil:
			return 0, err
		case s == 0:
			hi = lo + step - 1
		default:
			lo = s
		}
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		s, err := after(mid)
		switch {
		case err != nil:
			return 0, err
		case s == 0:
			hi = mid
		default:
			lo = s
		}
	}
	return lo, nil
}

// auditNewest is the page of up to limit entries before seq before (0:
// past the newest), newest first, with the log's total. The service's
// page after before−1−limit, reversed, is the whole of it while seqs have
// no gaps; should a service leave some out (a view of the log filtered by
// project, say), the window reaches further back, twice as far each time,
// until the page is full or the log's start is reached.
func auditNewest(ctx context.Context, svc AuditService, before int64, limit int) (api.AuditPage, error) {
	switch {
	case limit > auditMaxPage:
		return api.AuditPage{}, errs.Invalid("limit=%d: want 1 to %d", limit, auditMaxPage)
	case limit == 0:
		limit = auditDefaultPage
	}
	head, err := auditHead(ctx, svc)
	if err != nil {
		return api.AuditPage{}, err
	}
	page := api.AuditPage{Entries: []api.AuditEntry{}, Total: head}
	if before == 0 || before > head+1 {
		before = head + 1
	}
	// The window is the seqs in (from, upTo]; the service returns the
	// first n entries after from, which hold every entry of the window.
	upTo, width := before-1, int64(limit)
	for upTo > 0 && len(page.Entries) < limit {
		from := max(0, upTo-width)
		got, err := svc.AuditEntries(ctx, from, int(upTo-from))
		if err != nil {
			return api.AuditPage{}, err
		}
		for i := len(got.Entries) - 1; i >= 0 && len(page.Entries) < limit; i-- {
			if e := got.Entries[i]; e.Seq <= upTo {
				page.Entries = append(page.Entries, e)
			}
		}
		upTo, width = from, min(2*width, auditMaxPage)
	}
	// A full page may have older entries after it; a short one reached
	// the start.
	if n := len(page.Entries); n == limit && page.Entries[n-1].Seq > 1 {
		page.Next = page.Entries[n-1].Seq
	}
	return page, nil
}

// Routes lists the "METHOD /path" patterns of the handler New(opts)
// builds, in registration order: what a test enumerates to hold every
// state-changing route to its audit entry.
func Routes(opts Options) []string {
	_, rt, _ := newRouter(opts)
	return slices.Clone(rt.patterns)
}
