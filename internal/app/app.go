// Package app is Tailor's composition root and application layer: it opens
// the store, the artifact store and the bus, wires the scheduler, and
// implements the operations the HTTP API exposes (import, apply, start,
// lineage, fsck) by combining the domain packages (data, basemodel, recipe,
// run). Among several replicas, only the holder of the leader lease runs
// the scheduler, triggers, monitors and reconcile (leader.go). Domain
// packages never import app.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/blob/blobstore"
	"github.com/tailor-ml/tailor/internal/blob/local"
	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/bus/busaddr"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/meter"
	"github.com/tailor-ml/tailor/internal/registry"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/childengine"
	"github.com/tailor-ml/tailor/internal/serve/modelengine"
	"github.com/tailor-ml/tailor/internal/serve/reqlog"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/storeaddr"
)

// Options configure an App. Zero values take the documented defaults.
type Options struct {
	// DataDir holds tailor.db, blobs/, staging/ and work/ (required).
	DataDir string
	// Blob is the artifact store's address, "file:///abs/dir" or
	// "s3://bucket/prefix" (see internal/blob/blobstore); default the
	// local store in DataDir/blobs. Training workers and the serving
	// process get it in their spec and open the same store.
	Blob string
	// Getenv reads the S3 store's endpoint and credentials (the config
	// layer passes os.Getenv; nil reads nothing). The worker processes
	// read the same variables from the environment they inherit.
	Getenv func(string) string
	// Region is where this server computes and stores (default "local").
	Region string
	// Regions are the region names recipes and datasets may use (default
	// [Region], plus every region the residency policy names).
	Regions []string
	// Residency says which regions compute in each region may read from
	// and write to (nil: residency.Default, where each region reads and
	// writes only itself). It must have a rule for Region.
	Residency *residency.Policy
	// Owner tags imports that name none (default "local").
	Owner string
	// Concurrency is how many runs train at once (default 1).
	Concurrency int
	// WorkerCommand starts a worker (default: this executable, "worker", "train").
	WorkerCommand []string
	// ServeCommand starts the serving process (`tailor worker serve`), a
	// supervised child that runs the models so that a crash or an
	// out-of-memory kill there costs 503s for a moment, not the server.
	// Default: this executable, "worker", "serve", when WorkerCommand is
	// unset too (the real binary: server and demo); otherwise none, and
	// inference runs in this process (tests with a fake worker).
	// ServeInProcess keeps inference in this process in any case.
	ServeCommand   []string
	ServeInProcess bool
	// RequireApproval names the model aliases whose moves need a second
	// person's approval, e.g. {"champion": true}.
	RequireApproval map[string]bool
	// ServeBudgetBytes bounds the adapter tensors resident for serving
	// (default 256 MiB).
	ServeBudgetBytes int64
	// ServeBaseBudgetBytes bounds the base weights resident for serving
	// (default 0: no bound); past it the least recently used bases not in
	// use are evicted and loaded again on demand.
	ServeBaseBudgetBytes int64
	// RequestLogSampleRate is the fraction of served requests logged, in
	// [0, 1] (nil: 1, every request; 0: none). Only a logged request's
	// input is kept with its prediction, so feedback on an unlogged one is
	// recorded but never accumulated into a dataset.
	RequestLogSampleRate *float64
	// RequestLogMaxBytes and RequestLogMaxAge bound the request log on
	// disk (default 0: no bound); see reqlog.Options.MaxBytes and MaxAge.
	RequestLogMaxBytes int64
	RequestLogMaxAge   time.Duration
	// Redact lists regular expressions replaced by [REDACTED] in logged
	// inputs and outputs.
	Redact []string
	// ImportCacheBytes bounds the importer states kept in memory so an
	// append does not read its parent's records again (default 256 MiB).
	ImportCacheBytes int64
	// ImportReserveBytes is the free space imports leave on the data disk
	// (default 256 MiB): an import needs twice its size (staged, then
	// copied into the artifact store) plus this, or it is refused with
	// errs.ErrInsufficientStorage before it stages anything.
	ImportReserveBytes int64
	// FreeSpace reports the bytes still writable on the file system
	// holding dir, or -1 when unknown (default: statfs; -1 where there is
	// none).
	FreeSpace func(dir string) (int64, error)
	// Failpoints name points at which the process kills itself with
	// SIGKILL, for fault-injection tests of the real binary (the server
	// reads them from TAILOR_FAILPOINTS): "feedback.imported" (feedback
	// appended, labels not yet marked), "run.checkpointed" (a training
	// checkpoint recorded), "trigger.acted" (an action done, its result not
	// yet stored).
	Failpoints []string
	// Meter configures metering: the energy model's watts per core, the
	// cost rates, where /proc and RAPL are read (docs/metering.md).
	Meter meter.Options
	// UsageFlushEvery is how often served requests' usage is stored
	// (default 10 s).
	UsageFlushEvery time.Duration
	// EngineVersion goes into every run key (required).
	EngineVersion string
	Logger        *slog.Logger
	Now           func() time.Time

	// Several replicas (docs/scale-out.md, leader.go).
	//
	// Bus is the event bus's address (internal/bus/busaddr): "local", the
	// in-process bus (default), or nats://host:port[,…], a NATS
	// JetStream stream every replica shares.
	Bus string
	// Store is the metadata store's address (internal/store/storeaddr):
	// "sqlite:///abs/file.db" or "postgres://user@host:port/db?sslmode=…"
	// (default: the SQLite file DataDir/tailor.db). Replicas share one
	// PostgreSQL database, or, on one machine, one SQLite file.
	Store string
	// Replica is this server's name among replicas, the holder name of
	// the leader lease (default: the host name and a hash of DataDir, the
	// same across restarts).
	Replica string
	// LeaseTTL is how long the leader lease lasts unless renewed (default
	// 5 s). The leader renews it every LeaseTTL/3; a follower takes over
	// within about LeaseTTL + LeaseTTL/3 of the leader's death.
	LeaseTTL time.Duration
	// NewExecutor, when set, builds the executor of training runs in place
	// of local child processes of WorkerCommand: it gets the hub of remote
	// workers (run.Remote), on which an executor whose workers run
	// elsewhere (internal/run/kube) opens each attempt, and which serves
	// their routes (Workers).
	NewExecutor func(remote *run.Remote) (run.Executor, error)
}

// App implements the application's operations.
type App struct {
	opts     Options
	store    store.Store
	blobs    blob.Store
	bus      bus.Bus
	sched    *run.Scheduler
	registry *registry.Registry
	serve    *serve.Server
	engine   io.Closer // the serving process's supervisor; nil in-process
	reqlog   *reqlog.Writer
	logger   *slog.Logger
	policy   *residency.Policy
	// datasets serializes imports of one dataset name in this process,
	// feedback the accumulation of one model's labels.
	datasets nameLocks
	feedback nameLocks
	// deployLocks serializes the changes of one deployment; deployMu
	// the reading and applying of deployments to the inference server.
	deployLocks nameLocks
	deployMu    sync.Mutex
	imports     *data.Cache // importer states of recent dataset versions
	// gcMu: GC holds it; dataset and base imports read-hold it from
	// committing their blobs until their metadata refers to them.
	gcMu     sync.RWMutex
	recorder *recorder
	meter    *meter.Meter
	usage    *requestMeter
	monitors *monitors
	triggers *triggers
	started  atomic.Bool
	lead     *leadership
	remote   *run.Remote // nil with local workers
}

// Open opens (creating if needed) the data directory and wires the parts.
func Open(opts Options) (*App, error) {
	if opts.DataDir == "" {
		return nil, errs.Invalid("no data directory: pass --data-dir")
	}
	// Addresses are checked before anything is created.
	if opts.Bus != "" {
		if _, err := busaddr.Parse(opts.Bus); err != nil {
			return nil, fmt.Errorf("--bus: %w", err)
		}
	}
	if opts.Store != "" {
		if _, err := storeaddr.Parse(opts.Store); err != nil {
			return nil, fmt.Errorf("--store: %w", err)
		}
	}
	if opts.Region == "" {
		opts.Region = "local"
	}
	if len(opts.Regions) == 0 {
		opts.Regions = []string{opts.Region}
	}
	if !slices.Contains(opts.Regions, opts.Region) {
		opts.Regions = append(opts.Regions, opts.Region)
	}
	if opts.Residency == nil {
		opts.Residency = residency.Default(opts.Regions...)
	}
	if _, ok := opts.Residency.Regions[opts.Region]; !ok {
		return nil, errs.Invalid("%s has no rule for this server's region %q (it has %s): add regions.%s with its read and write lists, or start the server with --region set to one of those",
			opts.Residency.Source, opts.Region, strings.Join(opts.Residency.ComputeRegions(), ", "), opts.Region)
	}
	for _, r := range opts.Residency.AllRegions() {
		if !slices.Contains(opts.Regions, r) {
			opts.Regions = append(opts.Regions, r)
		}
	}
	if opts.Owner == "" {
		opts.Owner = "local"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ImportReserveBytes <= 0 {
		opts.ImportReserveBytes = 256 << 20
	}
	if opts.FreeSpace == nil {
		opts.FreeSpace = diskFree
	}
	if len(opts.WorkerCommand) == 0 {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable for workers: %w", err)
		}
		opts.WorkerCommand = []string{self, "worker", "train"}
		if len(opts.ServeCommand) == 0 {
			opts.ServeCommand = []string{self, "worker", "serve"}
		}
	}
	if opts.ServeInProcess {
		opts.ServeCommand = nil
	}
	for _, d := range []string{"", "staging", "work"} {
		if err := os.MkdirAll(filepath.Join(opts.DataDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
	}
	// Staging areas left by a crash hold nothing referenced: drop them.
	if err := os.RemoveAll(filepath.Join(opts.DataDir, "staging")); err != nil {
		return nil, err
	}
	if opts.Blob == "" {
		var err error
		if opts.Blob, err = blobstore.FileURL(filepath.Join(opts.DataDir, "blobs")); err != nil {
			return nil, err
		}
	}
	if opts.Replica == "" {
		opts.Replica = defaultReplica(opts.DataDir)
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.Store == "" {
		var err error
		if opts.Store, err = storeaddr.SQLiteURL(filepath.Join(opts.DataDir, "tailor.db")); err != nil {
			return nil, err
		}
	}
	st, err := storeaddr.Open(opts.Store)
	if err != nil {
		return nil, fmt.Errorf("open metadata store: %w", err)
	}
	blobs, err := blobstore.Open(context.Background(), opts.Blob, opts.Getenv)
	if err != nil {
		// #nosec G104 -- cleanup on an error path; the open error is returned
		st.Close()
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	events, err := busaddr.Open(context.Background(), opts.Bus, opts.Getenv, opts.Logger)
	if err != nil {
		// #nosec G104 -- cleanup on an error path; the open error is returned
		st.Close()
		return nil, fmt.Errorf("open event bus: %w", err)
	}
	a := &App{opts: opts, store: st, blobs: blobs, bus: events, logger: opts.Logger, policy: opts.Residency,
		imports: data.NewCache(opts.ImportCacheBytes)}
	a.lead = newLeadership(a)
	a.recorder = newRecorder(st, opts.Logger)
	a.meter = meter.New(opts.Meter)
	a.usage = newRequestMeter(st, a.meter, opts.Logger, opts.UsageFlushEvery, opts.Now)
	a.monitors = newMonitors(a)
	a.triggers = newTriggers(a)
	a.registry = registry.New(registry.Options{Store: st, Publisher: a.bus, RequireApproval: opts.RequireApproval, Now: opts.Now, Logger: opts.Logger,
		Admit: func(ctx context.Context, v store.ModelVersion) error {
			_, err := a.residency().readableModel(ctx, st, v)
			return err
		}})
	if err := a.openServing(); err != nil {
		events.Close()
		// #nosec G104 -- cleanup on an error path; the serving error is returned
		st.Close()
		return nil, err
	}
	if err := a.restoreDeployments(context.Background()); err != nil {
		a.closeServing()
		events.Close()
		// #nosec G104 -- cleanup on an error path; the restore error is returned
		st.Close()
		return nil, err
	}
	var executor run.Executor = &run.LocalExecutor{Command: opts.WorkerCommand, Logger: opts.Logger}
	if opts.NewExecutor != nil {
		a.remote = run.NewRemote(auth.NewWorkerCredentials(auth.WorkerOptions{Now: opts.Now}), opts.Logger)
		if executor, err = opts.NewExecutor(a.remote); err != nil {
			a.closeServing()
			// #nosec G104 -- cleanup on an error path; the executor error is returned
			st.Close()
			return nil, err
		}
	}
	a.sched = run.New(run.Options{
		Store: st, Publisher: a.bus, Concurrency: opts.Concurrency, Logger: opts.Logger, Now: opts.Now,
		Executor: executor,
		Blob:     opts.Blob, WorkDir: filepath.Join(opts.DataDir, "work"),
		Failpoint: a.failpoint,
		Meter:     a.meter, BudgetOf: recipeBudget,
		OnSucceeded: func(ctx context.Context, r store.Run) {
			if err := a.registerRun(ctx, r); err != nil {
				a.logger.Error("register succeeded run", "run", r.ID, "err", err)
			}
		},
	})
	return a, nil
}

// Start follows model events for serving and starts this replica's own
// background work (request usage, the request log's retention), then
// competes for the leader lease (leader.go). Whichever replica leads
// registers succeeded runs a crash left unregistered, starts the monitors
// and the triggers (which resume interrupted firings), then executes
// queued runs (and resumes interrupted ones). When this replica can lead
// at once (one server, or the lease free), it does so before Start
// returns, and an error doing so is Start's.
func (a *App) Start(ctx context.Context) error {
	a.started.Store(true)
	// What the server does on its own is audited under a system actor
	// (audit.go), whatever ctx carries.
	server := store.WithActor(ctx, serverActor)
	go a.followModels(server)
	go a.recorder.run(server)
	go a.usage.run(server)
	go a.pruneRequestLog(ctx)
	return a.lead.start(ctx)
}

// startLeading starts the work only the leader does, under ctx (which
// carries the leader's fence), and returns a function that waits until
// it has stopped after ctx ended.
func (a *App) startLeading(ctx context.Context) (wait func(), err error) {
	if err := a.reconcile(store.WithActor(ctx, serverActor)); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		a.monitors.run(store.WithActor(ctx, monitorActor))
	}()
	go func() {
		defer wg.Done()
		a.followForLeader(ctx)
	}()
	// Every change a trigger makes is the trigger's.
	a.triggers.start(store.WithActor(ctx, triggerActor))
	wait = func() {
		wg.Wait()
		a.triggers.wait()
		a.sched.Wait()
	}
	if err := a.sched.Start(store.WithActor(ctx, schedulerActor)); err != nil {
		return wait, err
	}
	return wait, nil
}

// openServing builds the inference server: the engine over the artifact
// store (in the serving process, or in this one), the request log and the
// resolver over the registry.
func (a *App) openServing() error {
	eng, err := a.openEngine()
	if err != nil {
		return fmt.Errorf("serving engine: %w", err)
	}
	rate := 1.0
	if a.opts.RequestLogSampleRate != nil {
		rate = *a.opts.RequestLogSampleRate
	}
	a.reqlog, err = reqlog.Open(reqlog.Options{Dir: a.requestLogDir(), SampleRate: rate, Redact: a.opts.Redact,
		MaxBytes: a.opts.RequestLogMaxBytes, MaxAge: a.opts.RequestLogMaxAge, Now: a.opts.Now})
	if err != nil {
		a.closeEngine()
		return fmt.Errorf("request log: %w", err)
	}
	a.serve, err = serve.New(serve.Options{Engine: eng, Resolver: a.servingResolver(), Log: a.reqlog, Logger: a.logger,
		Observer: a.recorder, Meter: a.usage.record, Scope: store.ProjectFrom})
	if pe, ok := eng.(interface{ PID() int }); ok {
		a.usage.pid = func() int {
			if pid := pe.PID(); pid > 0 {
				return pid
			}
			return os.Getpid()
		}
	}
	if err != nil {
		a.closeEngine()
	}
	return err
}

func (a *App) requestLogDir() string { return filepath.Join(a.opts.DataDir, "requests") }

// pruneRequestLog enforces the request log's MaxAge while the server runs,
// so an idle log ages out too (MaxBytes is enforced as records are
// written). It returns when ctx ends.
func (a *App) pruneRequestLog(ctx context.Context) {
	if a.opts.RequestLogMaxAge <= 0 {
		return
	}
	t := time.NewTicker(min(time.Minute, max(time.Second, a.opts.RequestLogMaxAge/10)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := a.reqlog.Prune(); err != nil {
				a.logger.Warn("request log retention", "err", err)
			} else if n > 0 {
				a.logger.Info("request log retention deleted segments", "segments", n)
			}
		}
	}
}

// openEngine starts the serving process's supervisor, or the in-process
// engine when there is no serve command.
func (a *App) openEngine() (serve.Engine, error) {
	workDir := filepath.Join(a.opts.DataDir, "work", "serve")
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, err
	}
	if len(a.opts.ServeCommand) == 0 {
		return modelengine.New(modelengine.Options{Loader: &modelengine.BlobLoader{Blobs: a.blobs, WorkDir: workDir},
			BudgetBytes: a.opts.ServeBudgetBytes, BaseBudgetBytes: a.opts.ServeBaseBudgetBytes, Logger: a.logger})
	}
	eng, err := childengine.New(childengine.Options{Command: a.opts.ServeCommand, Blobs: a.blobs, Logger: a.logger,
		Spec: childengine.Spec{Blob: a.opts.Blob, WorkDir: workDir, BudgetBytes: a.opts.ServeBudgetBytes,
			BaseBudgetBytes: a.opts.ServeBaseBudgetBytes}})
	if err != nil {
		return nil, err
	}
	a.engine = eng
	return eng, nil
}

// closeServing undoes openServing.
func (a *App) closeServing() {
	a.serve.Close()
	a.closeEngine()
	_ = a.reqlog.Close()
}

func (a *App) closeEngine() {
	if a.engine != nil {
		if err := a.engine.Close(); err != nil {
			a.logger.Warn("stop the serving process", "err", err)
		}
	}
}

// Inference is the OpenAI-compatible handler (chat, completions, classify,
// models, metrics).
func (a *App) Inference() http.Handler { return a.serve.Handler() }

// Close waits for the scheduler (its context must be canceled first) and
// closes the store.
func (a *App) Close() error {
	if a.started.Load() {
		a.lead.wait() // the leader's work has stopped and the lease is released
	}
	a.sched.Wait()
	if a.started.Load() {
		<-a.recorder.done // its last batch is stored
		<-a.usage.done    // and its last request usage
	}
	a.serve.Close()
	a.closeEngine()
	if err := a.reqlog.Close(); err != nil {
		a.logger.Warn("close request log", "err", err)
	}
	a.bus.Close()
	if a.started.Load() {
		a.triggers.wait() // its loops end with ctx and the bus
	}
	return a.store.Close()
}

// Authority returns the authenticator of this App's tokens and projects
// (internal/auth) over its store, publishing token and project events on
// its bus; o's Store, Publisher, Now and Logger are filled in. Every
// server (`tailor server`, the demo, tests) builds its guard here.
func (a *App) Authority(o auth.Options) *auth.Authority {
	o.Store, o.Publisher, o.Now, o.Logger = a.store, a.bus, a.opts.Now, a.logger
	return auth.New(o)
}

// Store exposes the metadata store to tests and tools in this module.
func (a *App) Store() store.Store { return a.store }

// Blobs exposes the artifact store.
func (a *App) Blobs() blob.Store { return a.blobs }

// Replica is this server's name among replicas (Options.Replica, filled).
func (a *App) Replica() string { return a.opts.Replica }

// BlobAddress is the artifact store's address (Options.Blob, filled).
func (a *App) BlobAddress() string { return a.opts.Blob }

// StoreAddress is the metadata store's address (Options.Store, filled)
// without its password, for logs.
func (a *App) StoreAddress() string {
	l, err := storeaddr.Parse(a.opts.Store)
	if err != nil {
		return ""
	}
	return l.String()
}

// failpoint kills the process with SIGKILL, as a crash would, when the
// point is named in Options.Failpoints.
func (a *App) failpoint(name string) {
	if slices.Contains(a.opts.Failpoints, name) {
		a.logger.Warn("failpoint reached: killing the process", "failpoint", name)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// actorOf is who a change is attributed to: the principal of the request's
// token, which the HTTP layer puts into ctx (store.WithActor), or a system
// actor the app sets itself (triggers). The actor fields of request
// bodies are never read: a client cannot name who it is. A context
// without an actor gives "", which the registry refuses for alias moves
// and approvals.
func actorOf(ctx context.Context) string { return store.ActorFrom(ctx) }

func checkName(kind, name string) error {
	return ident.Name(kind, name)
}

// freeText returns the first failed check of a request's free-text fields
// (ident.Label, ident.Text), as a 400 naming the field.
func freeText(checks ...error) error {
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *App) checkRegion(what, region string) error {
	if !slices.Contains(a.opts.Regions, region) {
		return errs.Invalid("%s: unknown region %q (known: %s); start the server with --regions to add one", what, region, strings.Join(a.opts.Regions, ", "))
	}
	return nil
}

func (a *App) publish(evs []store.Event) {
	if len(evs) > 0 {
		a.bus.Publish(evs...)
	}
}

func (a *App) event(typ, subject string, data any) store.Event {
	raw, _ := json.Marshal(data)
	return store.Event{Type: typ, Subject: subject, Time: a.opts.Now().UTC(), Data: raw}
}

// stage is a private artifact store for one import, always a local one in
// DataDir/staging whatever the main store is. Nothing in it is visible
// until commit copies it into the main store; discard removes it all, so a
// failed import leaves no trace.
type stage struct {
	*local.Store
	dir string
}

// newStage creates a stage. Call checkSpace first.
func (a *App) newStage() (*stage, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(a.opts.DataDir, "staging", hex.EncodeToString(b[:]))
	s, err := local.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("create staging area: %w", err)
	}
	return &stage{Store: s, dir: dir}, nil
}

func (s *stage) discard() { _ = os.RemoveAll(s.dir) }

// commit copies every staged blob into the main store and reports how many
// were already there. The caller read-holds gcMu until its metadata refers
// to them.
func (a *App) commit(ctx context.Context, s *stage) (reused int, err error) {
	err = s.List(ctx, func(d blob.Digest, _ int64) error {
		if a.stored(ctx, d) {
			reused++
			return nil
		}
		r, err := s.Open(ctx, d)
		if err != nil {
			return err
		}
		defer r.Close()
		got, _, err := a.blobs.Put(ctx, r)
		if err == nil && got != d {
			err = fmt.Errorf("staged blob %s copied as %s", d, got)
		}
		return err
	})
	return reused, err
}

// stored reports whether blob d is already in the store, and then marks it
// written now (for GC's grace) where the store can.
func (a *App) stored(ctx context.Context, d blob.Digest) bool {
	if t, ok := a.blobs.(blob.Toucher); ok {
		return t.Touch(ctx, d) == nil
	}
	_, err := a.blobs.Stat(ctx, d)
	return err == nil
}

func (a *App) putJSON(ctx context.Context, dst interface {
	Put(context.Context, io.Reader) (blob.Digest, int64, error)
}, v any) (blob.Digest, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	d, _, err := dst.Put(ctx, strings.NewReader(string(data)))
	return d, err
}

func (a *App) readJSON(ctx context.Context, d blob.Digest, v any) error {
	r, err := a.blobs.Open(ctx, d)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := json.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("read manifest %s: %w", d, err)
	}
	return nil
}

// Events returns the committed events of ctx's project after seq.
func (a *App) Events(ctx context.Context, after int64) ([]api.Event, error) {
	evs, err := a.store.Events(ctx, after, 0)
	if err != nil {
		return nil, err
	}
	out := make([]api.Event, len(evs))
	for i, e := range evs {
		out[i] = toAPIEvent(e)
	}
	return out, nil
}

// Subscribe streams the events of ctx's project committed from now on
// until ctx ends.
func (a *App) Subscribe(ctx context.Context) <-chan api.Event {
	project := store.ProjectFrom(ctx)
	sub := a.bus.Subscribe(256)
	out := make(chan api.Event)
	go func() {
		defer close(out)
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.C:
				if !ok {
					return
				}
				if e.Project != project && (e.Project != "" || project != store.DefaultProject) {
					continue
				}
				select {
				case out <- toAPIEvent(e):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

func toAPIEvent(e store.Event) api.Event {
	return api.Event{Seq: e.Seq, Type: e.Type, Subject: e.Subject, Time: e.Time, Data: e.Data, Project: e.Project}
}

// Workers is the hub of remote workers whose routes the API serves
// (httpapi.Options.Workers), or nil when runs train in local child
// processes.
func (a *App) Workers() *run.Remote { return a.remote }
