package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/serve/reqlog"
)

// Options configure New. Zero values take the documented defaults.
type Options struct {
	Engine   Engine   // required
	Resolver Resolver // required
	// Log receives sampled requests (nil: no request log).
	Log    *reqlog.Writer
	Logger *slog.Logger
	Now    func() time.Time

	MaxBatch int // rows per engine step, per base (default 8)
	// MaxQueue bounds the requests waiting for a batch slot, per base
	// (default 64). Past it, requests get 429 with Retry-After.
	MaxQueue   int
	RetryAfter time.Duration // default 1 s
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64
	// MaxTokens caps max_tokens (default 512); DefaultMaxTokens is used
	// when a request sets none (default 128).
	MaxTokens        int
	DefaultMaxTokens int
	// MaxInputs bounds the inputs of one classify request (default 64).
	MaxInputs int
	// MaxRequestTime bounds a request's wall time (default 60 s). A
	// generation that reaches it ends with finish_reason "length".
	MaxRequestTime time.Duration
	// Seed drives canary choices for requests without a user key.
	Seed uint64
	// ShadowTimeout bounds a mirrored request (default MaxRequestTime).
	ShadowTimeout time.Duration
	// NewID names requests (default "req-" + 16 random hex characters).
	NewID func() string
	// Observer, when set, is told every classification answered (primary
	// and shadow); see Observer.
	Observer Observer
	// Meter, when set, is told every request answered (primary and
	// shadow): tokens, latency, the model it resolved to. It must not
	// block.
	Meter func(Usage)
	// MeterTag, when set, names the group a request's usage belongs to
	// (Usage.Tag; the application passes the request's project). It is
	// read once per request, so a shadow copy has its primary's tag.
	// Without it, usage is tagged with the request's Scope.
	MeterTag func(*http.Request) string
	// Scope, when set, names the namespace a request's model names live
	// in: the application passes the request's project
	// (store.ProjectFrom), so one name resolves apart in each project.
	// It keys the resolved models and the deployments, tags observations,
	// and adds a project label to the per-model metrics. AliasMoved,
	// ModelChanged, Deploy, Undeploy and Deployments act in the Scope of
	// their ctx. Without it every request shares one namespace and the
	// metrics have no project label.
	Scope func(ctx context.Context) string
}

func (o *Options) defaults() error {
	if o.Engine == nil || o.Resolver == nil {
		return errs.Invalid("serve: an engine and a resolver are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxBatch, 8)
	def(&o.MaxQueue, 64)
	def(&o.MaxTokens, 512)
	def(&o.DefaultMaxTokens, min(128, o.MaxTokens))
	def(&o.MaxInputs, 64)
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Second
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.MaxRequestTime <= 0 {
		o.MaxRequestTime = 60 * time.Second
	}
	if o.ShadowTimeout <= 0 {
		o.ShadowTimeout = o.MaxRequestTime
	}
	if o.NewID == nil {
		o.NewID = func() string {
			var b [8]byte
			rand.Read(b[:])
			return "req-" + hex.EncodeToString(b[:])
		}
	}
	return nil
}

// Server is the inference server. Its Handler serves the OpenAI-compatible
// API, /v1/classify and /metrics.
type Server struct {
	opts    Options
	metrics *metrics
	seqs    atomic.Uint64
	shadows sync.WaitGroup

	mu          sync.RWMutex
	scheds      map[string]*scheduler // by base id
	cache       map[string]*Loaded    // by scopedKey of the canonical ref: the hot-swappable pointer
	deployments map[string]Deployment // by scopedKey of the model name

	rngMu sync.Mutex
	rng   *mrand.Rand
}

// New returns a server.
func New(opts Options) (*Server, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	m := newMetrics(opts.Now)
	m.scoped = opts.Scope != nil
	return &Server{opts: opts, metrics: m, scheds: map[string]*scheduler{}, cache: map[string]*Loaded{},
		// #nosec G404 -- seeded traffic split between deployments; not a secret
		deployments: map[string]Deployment{}, rng: mrand.New(mrand.NewPCG(opts.Seed, 0xca7a))}, nil
}

// Close stops the schedulers, failing what they still hold, and waits for
// shadow requests.
func (s *Server) Close() {
	s.mu.Lock()
	scheds := s.scheds
	s.scheds = map[string]*scheduler{}
	s.mu.Unlock()
	for _, sc := range scheds {
		sc.close()
	}
	s.shadows.Wait()
}

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.handleChat)
	mux.HandleFunc("POST /v1/completions", s.handleCompletion)
	mux.HandleFunc("POST /v1/classify", s.handleClassify)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("GET /v1/models/{id...}", s.handleModel)
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	return mux
}

func (s *Server) scheduler(base string) *scheduler {
	s.mu.RLock()
	sc := s.scheds[base]
	s.mu.RUnlock()
	if sc != nil {
		return sc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sc = s.scheds[base]; sc == nil {
		sc = newScheduler(s.opts.Engine, s.opts.MaxBatch, s.opts.MaxQueue, s.metrics, &s.seqs)
		s.scheds[base] = sc
	}
	return sc
}

// scope is Options.Scope of ctx ("" without one).
func (s *Server) scope(ctx context.Context) string {
	if s.opts.Scope == nil {
		return ""
	}
	return s.opts.Scope(ctx)
}

// scopedKey keys what the server holds per scope: a model reference or a
// deployed model's name within the scope.
func scopedKey(scope, name string) string { return scope + "\x00" + name }

// resolve returns the resident model for a canonical reference in ctx's
// scope, loading it on first use. Later requests get the cached pointer,
// which only a swap replaces.
func (s *Server) resolve(ctx context.Context, ref Ref) (*Loaded, error) {
	key := scopedKey(s.scope(ctx), ref.String())
	s.mu.RLock()
	l := s.cache[key]
	s.mu.RUnlock()
	if l != nil {
		return l, nil
	}
	t, err := s.opts.Resolver.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	l, err = s.opts.Engine.Load(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", ref, err)
	}
	l = named(l, t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.cache[key]; cur != nil {
		return cur, nil // a concurrent request or a swap got there first
	}
	s.cache[key] = l
	return l, nil
}

// named returns l under t's name and version number. An engine keeps one
// loaded model per content (base and adapter), whose Target names whoever
// loaded it first; one content may be registered under other names or
// numbers (in another scope, or as a copy), and each request must see
// the name it resolved.
func named(l *Loaded, t Target) *Loaded {
	if l.Target.Model == t.Model && l.Target.Version == t.Version {
		return l
	}
	c := *l
	c.Target.Model, c.Target.Version = t.Model, t.Version
	return &c
}

// AliasMoved hot-swaps name@alias (and the bare name, which may follow the
// champion): the new target is loaded and warmed with one forward pass,
// then replaces the old one atomically. Requests that already hold the old
// model finish on it; nothing waits and nothing fails during the swap. The
// app calls it for every model.alias.moved event.
func (s *Server) AliasMoved(ctx context.Context, name, alias string) error {
	want := Ref{Name: name, Ref: ident.Ref{Kind: ident.RefAlias, Alias: alias}, HasRef: true}
	return s.refresh(ctx, func(r Ref) bool { return r.Name == name && (r.Ref == want.Ref || !r.HasRef) }, want)
}

// ModelChanged refreshes every cached reference of name (call it when a new
// version is registered: "name@latest" and a bare name may move).
func (s *Server) ModelChanged(ctx context.Context, name string) error {
	return s.refresh(ctx, func(r Ref) bool { return r.Name == name && !r.Ref.Fixed() }, Ref{})
}

// refresh re-resolves the cached references of ctx's scope that match,
// loading the new targets before swapping them in. want, when named, is
// warmed even if no request has used it yet, so the first request after a
// move is fast.
func (s *Server) refresh(ctx context.Context, match func(Ref) bool, want Ref) error {
	scope := s.scope(ctx)
	s.mu.RLock()
	keys := map[string]Ref{}
	for k := range s.cache {
		sc, ref, _ := strings.Cut(k, "\x00")
		if r, err := ParseRef(ref); err == nil && sc == scope && match(r) {
			keys[k] = r
		}
	}
	s.mu.RUnlock()
	if want.Name != "" {
		keys[scopedKey(scope, want.String())] = want
	}
	var first error
	for key, ref := range keys {
		t, err := s.opts.Resolver.Resolve(ctx, ref)
		if errs.Kind(err) == "not_found" {
			s.mu.Lock()
			delete(s.cache, key)
			s.mu.Unlock()
			continue
		}
		var l *Loaded
		if err == nil {
			l, err = s.opts.Engine.Load(ctx, t)
		}
		if err == nil {
			l = named(l, t)
		}
		if err != nil {
			s.metrics.count(s.metrics.swaps, "failed")
			s.opts.Logger.Warn("hot swap failed; the old version keeps serving", "model", ref.String(), "scope", scope, "err", err)
			if first == nil {
				first = fmt.Errorf("swap %s: %w", ref, err)
			}
			continue
		}
		s.mu.Lock()
		old := s.cache[key]
		s.cache[key] = l
		s.mu.Unlock()
		if old == nil || old.Target.VersionID != l.Target.VersionID || old.Target.Version != l.Target.Version {
			s.metrics.count(s.metrics.swaps, "ok")
			s.opts.Logger.Info("hot swap", "model", ref.String(), "scope", scope, "to", l.Target.VersionName())
		}
	}
	return first
}
