// Package httpapi serves Tailor's JSON API under /v1/. It owns the routes,
// the one place where error kinds become HTTP status codes, and the writers
// for JSON, NDJSON streams and server-sent events. It calls the application
// through the Service interface and speaks only the wire types of api/.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Service is what the API needs from the application (internal/app).
type Service interface {
	ImportDataset(ctx context.Context, r io.Reader, o api.DatasetImportOptions) (api.DatasetImport, error)
	Datasets(ctx context.Context, name string) ([]api.DatasetVersion, error)
	Dataset(ctx context.Context, name, ref string) (api.DatasetDetail, error)
	DiffDatasets(ctx context.Context, name, a, b string) (json.RawMessage, error)
	DatasetRecords(ctx context.Context, name, ref, split string, w io.Writer) error

	ImportBase(ctx context.Context, name, region string, tarStream io.Reader) (api.BaseImport, error)
	ImportBaseFromRun(ctx context.Context, name, runID string) (api.BaseImport, error)
	Bases(ctx context.Context, name string) ([]api.BaseVersion, error)
	BaseFile(ctx context.Context, name, ref, file string, w io.Writer) error
	Base(ctx context.Context, name, ref string) (api.BaseVersion, error)

	ApplyRecipe(ctx context.Context, fileName string, src []byte) (api.RecipeApply, error)
	Recipes(ctx context.Context, name string) ([]api.RecipeVersion, error)
	Recipe(ctx context.Context, name, ref string) (api.RecipeVersion, error)

	StartRun(ctx context.Context, s api.RunStart) (api.Run, error)
	StartEval(ctx context.Context, s api.EvalStart) (api.Run, error)
	Runs(ctx context.Context, state string) ([]api.Run, error)
	Run(ctx context.Context, id string) (api.Run, error)
	CancelRun(ctx context.Context, id string) (api.Run, error)
	RunLogs(ctx context.Context, id string, after int64) ([]api.RunLog, error)

	Lineage(ctx context.Context, id string) (api.LineageNode, error)
	Events(ctx context.Context, after int64) ([]api.Event, error)
	// Subscribe delivers events committed from now on; the channel closes
	// when ctx ends or the subscriber fell too far behind.
	Subscribe(ctx context.Context) <-chan api.Event
	Fsck(ctx context.Context) (api.FsckReport, error)

	Models(ctx context.Context, name string) ([]api.ModelVersion, error)
	Model(ctx context.Context, name, ref string) (api.ModelVersion, error)
	Promote(ctx context.Context, name string, p api.Promote) (api.Promotion, error)
	Rollback(ctx context.Context, name string, r api.Rollback) (api.AliasMove, error)
	AliasHistory(ctx context.Context, name, alias string) ([]api.AliasMove, error)
	Approvals(ctx context.Context, name, state string) ([]api.Approval, error)
	Decide(ctx context.Context, id string, d api.Decision) (api.Approval, error)
	EvalReport(ctx context.Context, digest string) (api.EvalReportBody, error)
	ExportModel(ctx context.Context, name, ref, format string, w io.Writer) error

	ApplyMonitor(ctx context.Context, fileName string, src []byte) (api.MonitorApply, error)
	Monitors(ctx context.Context) ([]api.MonitorStatus, error)
	Monitor(ctx context.Context, name string) (api.MonitorStatus, error)
	MonitorWindows(ctx context.Context, name string, after int64) ([]api.MonitorWindow, error)
	MonitorProfile(ctx context.Context, name string) (json.RawMessage, error)
	PostFeedback(ctx context.Context, f api.Feedback) (api.FeedbackResult, error)
	AccumulateFeedback(ctx context.Context, model string) (*api.DatasetVersion, error)

	ApplyTrigger(ctx context.Context, fileName string, src []byte) (api.TriggerApply, error)
	Triggers(ctx context.Context) ([]api.TriggerStatus, error)
	Trigger(ctx context.Context, name string) (api.TriggerStatus, error)
	TriggerHistory(ctx context.Context, name string) ([]api.Firing, error)
}

// Options configure the handler.
type Options struct {
	Service Service
	Logger  *slog.Logger
	// MaxUpload bounds request bodies of imports (default 64 GiB).
	MaxUpload int64
	// Inference, when set, serves the OpenAI-compatible routes
	// (/v1/chat/completions, /v1/completions, /v1/classify, /v1/models,
	// /metrics) with its own error format.
	Inference http.Handler
}

type server struct {
	svc    Service
	logger *slog.Logger
	opts   Options
}

// New returns the /v1/ handler.
func New(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxUpload <= 0 {
		opts.MaxUpload = 64 << 30
	}
	s := &server{svc: opts.Service, logger: opts.Logger, opts: opts}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/health", s.handle(func(r *http.Request) (any, error) { return map[string]string{"status": "ok"}, nil }))
	s.datasetRoutes(mux)
	s.baseRoutes(mux)
	s.recipeRoutes(mux)
	s.runRoutes(mux)
	s.eventRoutes(mux)
	s.modelRoutes(mux)
	s.adaptationRoutes(mux)
	s.triggerRoutes(mux)
	mux.Handle("GET /v1/lineage/{id}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Lineage(r.Context(), r.PathValue("id"))
	}))
	if opts.Inference != nil {
		for _, p := range []string{"POST /v1/chat/completions", "POST /v1/completions", "POST /v1/classify", "GET /v1/models", "GET /v1/models/{id...}", "GET /metrics"} {
			mux.Handle(p, opts.Inference)
		}
	}
	mux.Handle("POST /v1/fsck", s.handle(func(r *http.Request) (any, error) { return s.svc.Fsck(r.Context()) }))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errs.NotFound("no route for %s %s; see docs/api.md", r.Method, r.URL.Path))
	})
	return mux
}

// handle adapts a handler that returns (value, error) and writes either.
func (s *server) handle(fn func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// Status maps an error kind to an HTTP status. It is the only such mapping.
func Status(err error) int {
	switch errs.Kind(err) {
	case "not_found":
		return http.StatusNotFound
	case "invalid":
		return http.StatusBadRequest
	case "conflict":
		return http.StatusConflict
	case "forbidden":
		return http.StatusForbidden
	case "unavailable":
		return http.StatusServiceUnavailable
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := Status(err)
	kind := errs.Kind(err)
	if status == http.StatusRequestEntityTooLarge {
		kind = "invalid"
	}
	if status == http.StatusInternalServerError {
		s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, api.ErrorBody{Error: api.Error{Kind: kind, Message: err.Error()}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
