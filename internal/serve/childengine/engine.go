package childengine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
)

// Options configure New. Zero values take the documented defaults.
type Options struct {
	// Command starts the serving process, e.g. [self, "worker", "serve"]
	// (required); Env is appended to its environment.
	Command []string
	Env     []string
	// Blobs is the artifact store; the parent reads only tokenizers from
	// it (required).
	Blobs basemodel.Source
	// Spec goes to every serving process (Blob, the store's address,
	// required).
	Spec   Spec
	Logger *slog.Logger
	// MinBackoff is the delay before restarting a process that died
	// (default 100 ms); it doubles after each death up to MaxBackoff
	// (default 5 s), and is reset once a process has lived StableAfter
	// (default 30 s).
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	StableAfter time.Duration
	// ReadyWait bounds how long a call waits for a process being started
	// before it fails as unavailable (default 5 s).
	ReadyWait time.Duration
	// StartTimeout bounds a process's start, up to its hello (default 30 s).
	StartTimeout time.Duration
	// WriteTimeout: a process that does not read a request within it is
	// taken for hung and killed (default 10 s).
	WriteTimeout time.Duration
	// CancelGrace: a process that has not answered a canceled call within
	// it (a step stuck where cancellation cannot reach) is taken for hung
	// and killed (default 30 s).
	CancelGrace time.Duration
}

// Engine implements serve.Engine over a supervised serving process.
type Engine struct {
	opts   Options
	nextID atomic.Uint64

	mu       sync.Mutex
	cur      *proc         // the ready process; nil while none is
	ready    chan struct{} // closed when cur is set, replaced when it dies
	closed   bool
	restarts int64
	prior    serve.EngineStats // counters of processes that died
	last     serve.EngineStats // the current process's latest stats
	toks     map[string]*tokEntry

	stop chan struct{}
	done chan struct{} // the supervisor ended
}

var _ serve.Engine = (*Engine)(nil)

type tokEntry struct {
	done chan struct{}
	tok  *tokenizer.Tokenizer
	err  error
}

// New starts the supervisor, which starts the first serving process;
// calls wait for it (up to ReadyWait). Close stops it.
func New(opts Options) (*Engine, error) {
	if len(opts.Command) == 0 || opts.Blobs == nil || opts.Spec.Blob == "" {
		return nil, errs.Invalid("serving process: a command, an artifact store and its address are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.MinBackoff, 100*time.Millisecond)
	def(&opts.MaxBackoff, 5*time.Second)
	def(&opts.StableAfter, 30*time.Second)
	def(&opts.ReadyWait, 5*time.Second)
	def(&opts.StartTimeout, 30*time.Second)
	def(&opts.WriteTimeout, 10*time.Second)
	def(&opts.CancelGrace, 30*time.Second)
	e := &Engine{opts: opts, ready: make(chan struct{}), toks: map[string]*tokEntry{}, stop: make(chan struct{}), done: make(chan struct{})}
	go e.supervise()
	return e, nil
}

// Close stops the serving process and the supervisor. Calls after it fail
// as unavailable.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.stop)
	e.mu.Unlock()
	<-e.done
	return nil
}

// PID is the current serving process's id (0 while none is ready).
func (e *Engine) PID() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur == nil {
		return 0
	}
	return e.cur.pid
}

// current returns the ready process, waiting up to ReadyWait for one.
func (e *Engine) current(ctx context.Context) (*proc, error) {
	var timer <-chan time.Time
	for {
		e.mu.Lock()
		p, ready, closed := e.cur, e.ready, e.closed
		e.mu.Unlock()
		switch {
		case closed:
			return nil, errs.Unavailable("the inference engine is shut down")
		case p != nil:
			return p, nil
		}
		if timer == nil {
			t := time.NewTimer(e.opts.ReadyWait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer:
			return nil, errs.Unavailable("the serving process is restarting; retry after the Retry-After delay")
		}
	}
}

// call sends a request and waits for its answer. When ctx ends first, the
// request is canceled in the child and ctx's error returned; when the
// child dies, the error is unavailable.
func (e *Engine) call(ctx context.Context, f frame) (frame, error) {
	p, err := e.current(ctx)
	if err != nil {
		return frame{}, err
	}
	return e.callOn(ctx, p, f)
}

func (e *Engine) callOn(ctx context.Context, p *proc, f frame) (frame, error) {
	f.id = e.nextID.Add(1)
	ch := make(chan frame, 1)
	if err := p.register(f.id, ch); err != nil {
		return frame{}, err
	}
	if err := p.send(f); err != nil {
		p.unregister(f.id)
		return frame{}, err
	}
	answer := func(r frame) (frame, error) {
		if r.typ == frameError {
			return frame{}, decodeError(r)
		}
		return r, nil
	}
	select {
	case r := <-ch:
		return answer(r)
	case <-p.gone:
		select {
		case r := <-ch: // answered just before it died
			return answer(r)
		default:
		}
		return frame{}, p.err()
	case <-ctx.Done():
		go e.cancel(p, f.id, ch) // the caller does not wait
		return frame{}, ctx.Err()
	}
}

// cancel sends a cancel frame for call id and waits for the call's answer
// (its error) for CancelGrace; a process that gives none is hung where
// cancellation cannot reach, and is killed.
func (e *Engine) cancel(p *proc, id uint64, answer chan frame) {
	_ = p.send(frame{typ: frameCancel, id: id})
	t := time.NewTimer(e.opts.CancelGrace)
	defer t.Stop()
	select {
	case <-answer:
	case <-p.gone:
	case <-t.C:
		p.unregister(id)
		e.opts.Logger.Error("the serving process did not stop a canceled call; killing it", "pid", p.pid, "grace", e.opts.CancelGrace)
		p.kill()
	}
}

// Load implements serve.Engine: the tokenizer is read here, the model
// loaded (and warmed) in the serving process.
func (e *Engine) Load(ctx context.Context, t serve.Target) (*serve.Loaded, error) {
	tok, err := e.tokenizer(ctx, t)
	if err != nil {
		return nil, err
	}
	f, err := jsonFrame(frameLoad, 0, t, nil)
	if err != nil {
		return nil, err
	}
	r, err := e.call(ctx, f)
	if err != nil {
		return nil, err
	}
	var m loadedMeta
	if err := decodeMeta(r, &m); err != nil {
		return nil, err
	}
	return &serve.Loaded{Target: t, Tokenizer: tok, Labels: m.Labels, MaxPositions: m.MaxPositions, MaxInputTokens: m.MaxInputTokens,
		VocabSize: m.VocabSize, EOS: m.EOS}, nil
}

// tokenizer returns the base's tokenizer, read once per base.
func (e *Engine) tokenizer(ctx context.Context, t serve.Target) (*tokenizer.Tokenizer, error) {
	if t.BaseID == "" {
		return nil, errs.Invalid("target %s has no base id", t.VersionName())
	}
	e.mu.Lock()
	te := e.toks[t.BaseID]
	if te == nil {
		te = &tokEntry{done: make(chan struct{})}
		e.toks[t.BaseID] = te
		e.mu.Unlock()
		te.tok, te.err = basemodel.LoadTokenizer(ctx, e.opts.Blobs, t.BaseManifest)
		if te.err != nil {
			te.err = fmt.Errorf("load base %s: %w", t.BaseID, te.err)
			e.mu.Lock()
			delete(e.toks, t.BaseID) // the next call tries again
			e.mu.Unlock()
		}
		close(te.done)
	} else {
		e.mu.Unlock()
	}
	select {
	case <-te.done:
		return te.tok, te.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Classify implements serve.Engine.
func (e *Engine) Classify(ctx context.Context, rows []serve.ClassifyRow) ([][]float32, error) {
	models := make([]*serve.Loaded, len(rows))
	toks := make([][]int32, len(rows))
	for i, r := range rows {
		models[i], toks[i] = r.Model, r.Tokens
	}
	return e.rows(ctx, frameClassify, models, nil, toks)
}

// Logits implements serve.Engine.
func (e *Engine) Logits(ctx context.Context, rows []serve.StepRow) ([][]float32, error) {
	models := make([]*serve.Loaded, len(rows))
	seqs := make([]uint64, len(rows))
	toks := make([][]int32, len(rows))
	for i, r := range rows {
		models[i], seqs[i], toks[i] = r.Model, r.Seq, r.Tokens
	}
	return e.rows(ctx, frameLogits, models, seqs, toks)
}

func (e *Engine) rows(ctx context.Context, typ byte, models []*serve.Loaded, seqs []uint64, toks [][]int32) ([][]float32, error) {
	m, data, err := encodeCall(models, seqs, toks)
	if err != nil {
		return nil, err
	}
	f, err := jsonFrame(typ, 0, m, data)
	if err != nil {
		return nil, err
	}
	r, err := e.call(ctx, f)
	if err != nil {
		return nil, err
	}
	return decodeRows(r, len(models))
}

// Release implements serve.Engine. A process that is not up holds no
// caches, so there is nothing to release then.
func (e *Engine) Release(seq uint64) {
	e.mu.Lock()
	p := e.cur
	e.mu.Unlock()
	if p == nil {
		return
	}
	f, err := jsonFrame(frameRelease, 0, releaseMeta{Seq: seq}, nil)
	if err == nil {
		_ = p.send(f)
	}
}

// statsTimeout bounds a stats request; a slower process is reported from
// its last answer.
const statsTimeout = 2 * time.Second

// Stats implements serve.Engine: the serving process's residency (its
// last answer when it does not answer in time, nothing while it is down),
// with counters summed over the processes that died, and the restarts.
func (e *Engine) Stats() serve.EngineStats {
	e.mu.Lock()
	p := e.cur
	e.mu.Unlock()
	if p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
		r, err := e.callOn(ctx, p, frame{typ: frameStats})
		cancel()
		var st serve.EngineStats
		if err == nil {
			err = decodeMeta(r, &st)
		}
		e.mu.Lock()
		if err == nil && e.cur == p {
			e.last = st
		}
		e.mu.Unlock()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.last
	st.Adapters = append([]serve.AdapterStat(nil), st.Adapters...)
	st.BaseLoads += e.prior.BaseLoads
	st.BaseEvictions += e.prior.BaseEvictions
	st.Loads += e.prior.Loads
	st.Evictions += e.prior.Evictions
	st.Restarts = e.restarts
	if st.BudgetBytes == 0 {
		st.BudgetBytes, st.BaseBudgetBytes = e.prior.BudgetBytes, e.prior.BaseBudgetBytes
	}
	return st
}

// lost records that p died: calls wait for the next process from now on,
// and p's counters join those of the dead.
func (e *Engine) lost(p *proc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur != p {
		return
	}
	e.cur = nil
	e.ready = make(chan struct{})
	e.prior.BaseLoads += e.last.BaseLoads
	e.prior.BaseEvictions += e.last.BaseEvictions
	e.prior.Loads += e.last.Loads
	e.prior.Evictions += e.last.Evictions
	if e.last.BudgetBytes != 0 {
		e.prior.BudgetBytes, e.prior.BaseBudgetBytes = e.last.BudgetBytes, e.last.BaseBudgetBytes
	}
	e.last = serve.EngineStats{}
}

// up makes p the current process.
func (e *Engine) up(p *proc, restart bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	if restart {
		e.restarts++
	}
	e.cur = p
	close(e.ready)
	return true
}

// supervise starts the serving process and starts it again, after a
// backoff, each time it dies, until Close.
func (e *Engine) supervise() {
	defer close(e.done)
	backoff := e.opts.MinBackoff
	started := false
	for {
		p, err := e.start()
		if err != nil {
			e.opts.Logger.Error("start the serving process", "err", err, "retry_in", backoff)
		} else {
			if !e.up(p, started) {
				p.kill()
				<-p.gone
				return
			}
			started = true
			since := time.Now()
			select {
			case <-p.gone:
				e.lost(p) // if it died before it was up, fail did not see it current
			case <-e.stop:
				p.kill()
				<-p.gone
				return
			}
			if time.Since(since) >= e.opts.StableAfter {
				backoff = e.opts.MinBackoff
			}
			e.opts.Logger.Warn("serving process died; restarting it", "pid", p.pid, "err", p.err(), "retry_in", backoff)
		}
		select {
		case <-time.After(backoff):
		case <-e.stop:
			return
		}
		backoff = min(2*backoff, e.opts.MaxBackoff)
	}
}
