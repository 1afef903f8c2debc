package httpapi

import (
	"context"
	"net/http"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// MeterService is the part of Service that serves metering and budgets.
type MeterService interface {
	// Usage groups metered usage by project, model or day.
	Usage(ctx context.Context, q api.UsageQuery) (api.UsageReport, error)
	// RunUsage is one run's usage and budget in force.
	RunUsage(ctx context.Context, id string) (api.RunUsage, error)
	// ResumeRun raises a stopped run's budget and queues it to resume.
	ResumeRun(ctx context.Context, id string, b api.Budget) (api.Run, error)
}

func (s *server) usageRoutes(mux *router) {
	mux.Handle("GET /v1/usage", s.handle(func(r *http.Request) (any, error) {
		// Usage is read in the request's project, as everything else is:
		// another project's needs a role there (X-Tailor-Project).
		q := r.URL.Query()
		project := store.ProjectFrom(r.Context())
		if p := q.Get("project"); p != "" && p != project {
			return nil, errs.Invalid("project=%q: usage is read in the request's project %q; act in another with the %s header (tailor --project)", p, project, ProjectHeader)
		}
		return s.svc.Usage(r.Context(), api.UsageQuery{By: q.Get("by"), From: q.Get("from"), To: q.Get("to"), Project: project})
	}))
	mux.Handle("GET /v1/runs/{id}/usage", s.handle(func(r *http.Request) (any, error) {
		return s.svc.RunUsage(r.Context(), r.PathValue("id"))
	}))
	mux.Handle("POST /v1/runs/{id}/resume", s.handle(func(r *http.Request) (any, error) {
		var b api.Budget
		if err := decodeBody(r, &b); err != nil {
			return nil, err
		}
		return s.svc.ResumeRun(r.Context(), r.PathValue("id"), b)
	}))
}
