// Package httpapi serves Tailor's JSON API under /v1/. It owns the routes,
// their access classes (access.go: every route but GET /v1/health needs a
// bearer token, checked by internal/auth), the one place where error kinds
// become HTTP status codes, and the writers
// for JSON, NDJSON streams and server-sent events. It calls the application
// through the Service interface and speaks only the wire types of api/,
// but for the remote workers' routes (worker.go), which speak the worker
// protocol of internal/run.
// When given the dashboard's handler (internal/ui) it mounts it at / and
// /ui/, beside the API and outside it.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Service is what the API needs from the application (internal/app). The
// reader an import gets is the request body, bounded by Options.MaxUpload;
// it has a Size() int64 method giving its Content-Length (-1 when unknown).
type Service interface {
	MeterService // usage.go
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
	GC(ctx context.Context, o api.GCOptions) (api.GCReport, error)

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

	Deploy(ctx context.Context, d api.DeploymentSpec) (api.DeploymentApply, error)
	Deployments(ctx context.Context) ([]api.Deployment, error)
	Deployment(ctx context.Context, model string) (api.Deployment, error)
	DeploymentHistory(ctx context.Context, model string) ([]api.Deployment, error)
	CompareDeployment(ctx context.Context, model string, o api.CompareOptions) (api.DeploymentComparison, error)
	PromoteCanary(ctx context.Context, model string, p api.DeploymentPromote) (api.DeploymentPromotion, error)
	RollbackCanary(ctx context.Context, model string, r api.DeploymentRollback) (api.Deployment, error)

	AuditService

	Copier
}

// Options configure the handler.
type Options struct {
	Service Service
	Logger  *slog.Logger
	// MaxUpload bounds request bodies of imports (default 64 GiB); past it
	// an import fails with 413 and leaves nothing behind.
	MaxUpload int64
	// MaxUploads bounds the dataset and base imports served at once; one
	// more answers 503 with Retry-After (default 4).
	MaxUploads int
	// UploadWait is how long an import waits for one of those slots
	// (default 30 s).
	UploadWait time.Duration
	// BodyIdleTimeout is the longest a request body may stall between two
	// reads before the request fails with 408 (default 30 s).
	BodyIdleTimeout time.Duration
	// Inference, when set, serves the OpenAI-compatible routes
	// (/v1/chat/completions, /v1/completions, /v1/classify, /v1/models,
	// /metrics) with its own error format.
	Inference http.Handler
	// Auth authenticates every request but GET /v1/health and decides
	// whether it may act (the route's class in access.go); it serves the
	// token and project routes too. Without one, every guarded route
	// answers 500: a server is never open by omission. For a server
	// without tokens, pass an authority with InsecureLocal.
	Auth *auth.Authority
	// UI, when set, serves the dashboard: GET / and GET /ui/… (internal/ui).
	// It is not part of the JSON API, so docs/openapi.yaml leaves it out.
	UI http.Handler
	// Workers, when set, serves remote training workers' routes
	// (/v1/runs/{id}/worker/…, worker.go); without it they answer 404.
	Workers Workers
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxUpload <= 0 {
		o.MaxUpload = 64 << 30
	}
	if o.MaxUploads <= 0 {
		o.MaxUploads = 4
	}
	if o.UploadWait <= 0 {
		o.UploadWait = 30 * time.Second
	}
	if o.BodyIdleTimeout <= 0 {
		o.BodyIdleTimeout = 30 * time.Second
	}
}

type server struct {
	svc     Service
	logger  *slog.Logger
	opts    Options
	uploads chan struct{} // one token per import in progress
	// closing is closed when the HTTP server shuts down: the streams that
	// follow (events, run logs) end then, as they would never end on
	// their own and Shutdown waits for every request.
	closing     chan struct{}
	closeStream sync.Once
}

// stopStreams ends the following streams (see closing).
func (s *server) stopStreams() { s.closeStream.Do(func() { close(s.closing) }) }

// New returns the /v1/ handler.
func New(opts Options) http.Handler {
	h, _, _ := newRouter(opts)
	return h
}

// newRouter builds the handler, the router that knows its routes, and the
// server behind them.
func newRouter(opts Options) (http.Handler, *router, *server) {
	opts.defaults()
	s := &server{svc: opts.Service, logger: opts.Logger, opts: opts, uploads: make(chan struct{}, opts.MaxUploads), closing: make(chan struct{})}
	mux := &router{mux: http.NewServeMux(), guard: s.guard}
	mux.Handle("GET /v1/health", s.handle(func(r *http.Request) (any, error) {
		if h, ok := s.svc.(interface {
			Health(context.Context) (api.Health, error)
		}); ok {
			return h.Health(r.Context())
		}
		return api.Health{Status: "ok"}, nil
	}))
	s.datasetRoutes(mux)
	s.baseRoutes(mux)
	s.recipeRoutes(mux)
	s.runRoutes(mux)
	s.eventRoutes(mux)
	s.modelRoutes(mux)
	s.adaptationRoutes(mux)
	s.triggerRoutes(mux)
	s.deploymentRoutes(mux)
	s.auditRoutes(mux)
	s.copyRoutes(mux)
	s.usageRoutes(mux)
	s.accessRoutes(mux)
	mux.Handle("GET /v1/lineage/{id}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Lineage(r.Context(), r.PathValue("id"))
	}))
	s.workerRoutes(mux)
	if opts.Inference != nil {
		for _, p := range InferenceRoutes {
			mux.Handle(p, opts.Inference)
		}
	}
	if opts.UI != nil {
		mux.mux.Handle("GET /{$}", opts.UI)
		mux.mux.Handle("GET /ui/", opts.UI)
	}
	mux.Handle("POST /v1/fsck", s.handle(func(r *http.Request) (any, error) { return s.svc.Fsck(r.Context()) }))
	mux.Handle("POST /v1/gc", s.handle(func(r *http.Request) (any, error) {
		q := r.URL.Query()
		o := api.DefaultGCOptions()
		var err error
		if o.DryRun, err = queryBool(q, "dry_run"); err != nil {
			return nil, err
		}
		if o.Grace, err = queryDuration(q, "grace", o.Grace); err != nil {
			return nil, err
		}
		if o.KeepCheckpoints, err = queryDuration(q, "keep_checkpoints", o.KeepCheckpoints); err != nil {
			return nil, err
		}
		return s.svc.GC(r.Context(), o)
	}))
	mux.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := mux.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeError(w, r, errMethod{fmt.Sprintf("%s %s: method not allowed; allowed: %s (docs/api.md)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
			return
		}
		s.writeError(w, r, errs.NotFound("no route for %s %s; see docs/api.md", r.Method, r.URL.Path))
	})
	return guardBodies(mux.mux, opts.BodyIdleTimeout), mux, s
}

// InferenceRoutes are the routes served by Options.Inference.
var InferenceRoutes = []string{"POST /v1/chat/completions", "POST /v1/completions", "POST /v1/classify", "GET /v1/models", "GET /v1/models/{id...}", "GET /metrics"}

// errMethod is a known path asked with a method it does not serve.
type errMethod struct{ msg string }

func (e errMethod) Error() string { return e.msg }

// router is the mux plus the patterns registered on it, so that a wrong
// method is told which ones the path takes, and tests can hold the routes
// against docs/openapi.yaml.
type router struct {
	mux      *http.ServeMux
	patterns []string
	guard    func(pattern string, h http.Handler) http.Handler
}

// Handle registers h behind the access check of its pattern's class.
func (m *router) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.mux.Handle(pattern, m.guard(pattern, h))
}

func (m *router) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// allowed lists the methods some route serves r's path with.
func (m *router) allowed(r *http.Request) []string {
	var out []string
	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, pattern := m.mux.Handler(probe); pattern != "/" && pattern != "" {
			out = append(out, method)
		}
	}
	return out
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
// A body over its limit is a 413 whatever kind wraps it.
func Status(err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
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
	case "timeout":
		return http.StatusRequestTimeout
	case "insufficient_storage":
		return http.StatusInsufficientStorage
	case "unauthenticated":
		return http.StatusUnauthorized
	case "rate_limited":
		return http.StatusTooManyRequests
	}
	if errors.As(err, new(errMethod)) {
		return http.StatusMethodNotAllowed
	}
	return http.StatusInternalServerError
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := Status(err)
	kind := errs.Kind(err)
	switch status {
	case http.StatusRequestEntityTooLarge, http.StatusMethodNotAllowed:
		kind = "invalid"
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="tailor"`)
	}
	if status == http.StatusInternalServerError {
		s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, api.ErrorBody{Error: api.Error{Kind: kind, Message: err.Error()}})
}

// stream answers with what fn writes. An error before the first byte is an
// ordinary error response (a bad parameter is a 400, not an empty 200);
// after it, the error is logged and the connection cut without ending the
// response, so the client reads a broken transfer instead of a stream
// that looks complete but is short.
func (s *server) stream(w http.ResponseWriter, r *http.Request, contentType string, fn func(io.Writer) error) {
	sw := &startWriter{w: w, contentType: contentType}
	if err := fn(sw); err != nil {
		if !sw.started {
			s.writeError(w, r, err)
			return
		}
		s.logger.Warn("stream cut", "method", r.Method, "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
	if !sw.started {
		w.Header().Set("Content-Type", contentType)
	}
}

// startWriter sets the content type on the first write and remembers it.
type startWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (s *startWriter) Write(p []byte) (int, error) {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", s.contentType)
	}
	return s.w.Write(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
