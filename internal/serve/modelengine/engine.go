// Package modelengine implements serve.Engine over engine/model's Decoder:
// one copy of each resident base in memory, bases and adapters (LoRA and an
// optional classification head) each in an LRU under its own byte budget,
// loaded on demand, and a KV cache per generating sequence.
//
// Budgets: past BudgetBytes the least recently used adapters are evicted,
// past BaseBudgetBytes the least recently used bases (with their adapters
// and KV caches). Neither is ever evicted while a running call holds it (a
// pin); the one just loaded stays even when it alone is over the budget.
// An evicted model is loaded again by the next call that names it, with the
// same results.
//
// A call's rows are grouped by base only: the rows of one base run as one
// batched Decoder step whatever their adapters (each base projection is one
// GEMM over all rows; each adapter's low-rank update and head touch only
// its own rows; no merged copy of the base is made per adapter).
//
// Generation: Logits receives each sequence's whole token list; the engine
// keeps, per StepRow.Seq, a KV cache and the tokens it holds, and feeds only
// what is new (the longest common prefix is kept, so a rewound or edited
// sequence recomputes only its changed suffix; a repeated call recomputes
// the last token). Seq 0 means no cache is kept. Release frees a
// sequence's cache. Caches are bounded separately from adapters, by
// CacheBudgetBytes: past it, the least recently used caches of sequences
// not in the running step are dropped, and those sequences recompute their
// prefix at their next step (results are the same; only time is lost).
//
// Lock order: Engine.mu, then a base's run lock is never taken while
// holding Engine.mu (loads happen outside both; a step pins its bases and
// adapters under Engine.mu, then runs under the base lock, taking Engine.mu
// only briefly for cache bookkeeping). Evictions happen under Engine.mu
// alone: they drop map and list entries, never take a run lock, and skip
// pinned entries, so a running step keeps what it uses.
//
// It imports serve, engine, engine/model, engine/peft, engine/tokenizer,
// basemodel and errs; never app, registry or store.
package modelengine

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
)

// Options configure New. Zero values take the documented defaults.
type Options struct {
	Loader Loader // required
	// BudgetBytes bounds the bytes of resident adapter tensors (default
	// 256 MiB). Least recently used adapters are evicted past it; an
	// adapter in use by the running step is never evicted.
	BudgetBytes int64
	// BaseBudgetBytes bounds the bytes of resident base weights (default
	// 0: no bound). Least recently used bases not in use by a running call
	// are evicted past it, with their adapters and KV caches.
	BaseBudgetBytes int64
	// CacheBudgetBytes bounds the bytes of resident KV caches (default
	// 256 MiB); see the package comment for what happens past it.
	CacheBudgetBytes int64
	// Threads for matrix products and element-wise work (default 2).
	Threads int
	Logger  *slog.Logger
}

// Engine implements serve.Engine.
type Engine struct {
	opts Options
	gemm gemm.GEMM

	mu         sync.Mutex
	bases      map[string]*base    // by base id
	baseLRU    *list.List          // of *base, front = most recent
	baseBytes  int64               // resident base bytes
	baseMapped int64               // of which memory-mapped
	adapters   map[string]*adapter // by adapter digest
	lru        *list.List          // of *adapter, front = most recent
	loading    map[string]*flight  // "base:"+id or "adapter:"+digest
	resident   int64               // adapter bytes
	loads      int64
	evictions  int64
	baseLoads  int64
	baseEvict  int64

	seqs       map[uint64]*sequence // generating sequences with a cache
	seqLRU     *list.List           // of *sequence, front = most recent
	cacheBytes int64
	cacheDrops int64
}

var _ serve.Engine = (*Engine)(nil)

type flight struct {
	done chan struct{}
	err  error
}

// base is one base model and the decoder that serves it.
type base struct {
	id    string
	b     *Base
	bytes int64
	eos   []int32
	run   sync.Mutex // serializes calls into dec
	dec   *model.Decoder
	alone *serve.Loaded // the base served without an adapter
	elem  *list.Element // in Engine.baseLRU; under Engine.mu
	pins  int           // running calls using it; under Engine.mu
}

type adapter struct {
	digest string
	base   *base
	ad     *model.Adapter
	bytes  int64
	loaded *serve.Loaded
	elem   *list.Element
	pins   int
}

// sequence is one generating sequence's cache: the tokens it holds, for
// which base and adapter. cache and tokens change under base.run; the rest
// under Engine.mu.
type sequence struct {
	id      uint64
	base    *base
	adapter string
	cache   *model.KVCache
	tokens  []int32
	bytes   int64
	elem    *list.Element
}

// New returns an engine.
func New(opts Options) (*Engine, error) {
	if opts.Loader == nil {
		return nil, errs.Invalid("model engine: a loader is required")
	}
	if opts.BudgetBytes <= 0 {
		opts.BudgetBytes = 256 << 20
	}
	if opts.CacheBudgetBytes <= 0 {
		opts.CacheBudgetBytes = 256 << 20
	}
	if opts.Threads < 1 {
		opts.Threads = 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BaseBudgetBytes < 0 {
		opts.BaseBudgetBytes = 0
	}
	return &Engine{opts: opts, gemm: gemm.New(opts.Threads), bases: map[string]*base{}, baseLRU: list.New(), adapters: map[string]*adapter{},
		lru: list.New(), loading: map[string]*flight{}, seqs: map[uint64]*sequence{}, seqLRU: list.New()}, nil
}

// once runs fn for key unless another goroutine is already running it, in
// which case it waits for that one.
func (e *Engine) once(ctx context.Context, key string, ready func() bool, fn func() error) error {
	for {
		e.mu.Lock()
		if ready() {
			e.mu.Unlock()
			return nil
		}
		if f, ok := e.loading[key]; ok {
			e.mu.Unlock()
			select {
			case <-f.done:
				if f.err != nil {
					return f.err
				}
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		f := &flight{done: make(chan struct{})}
		e.loading[key] = f
		e.mu.Unlock()
		f.err = fn()
		e.mu.Lock()
		delete(e.loading, key)
		e.mu.Unlock()
		close(f.done)
		return f.err
	}
}

func (e *Engine) base(ctx context.Context, t serve.Target) (*base, error) {
	if t.BaseID == "" {
		return nil, errs.Invalid("target %s has no base id", t.VersionName())
	}
	err := e.once(ctx, "base:"+t.BaseID, func() bool { return e.bases[t.BaseID] != nil }, func() error {
		b, err := e.opts.Loader.Base(ctx, t)
		if err != nil {
			return fmt.Errorf("load base %s: %w", t.BaseID, err)
		}
		dec, err := model.NewDecoder(b.Config, b.Weights, model.DecoderOptions{Workers: e.opts.Threads, GEMM: e.gemm})
		if err != nil {
			release(b, e.opts.Logger)
			return fmt.Errorf("base %s: %w", t.BaseID, err)
		}
		nb := &base{id: t.BaseID, b: b, dec: dec, eos: eosIDs(b)}
		nb.alone = e.loaded(nb, serve.Target{}, nil)
		for _, w := range b.Weights {
			nb.bytes += int64(len(w.Data)) * 4
		}
		e.mu.Lock()
		e.bases[t.BaseID] = nb
		nb.elem = e.baseLRU.PushFront(nb)
		e.baseBytes += nb.bytes
		e.baseMapped += b.MappedBytes
		e.baseLoads++
		e.evictBases(nb)
		e.mu.Unlock()
		e.opts.Logger.Info("base loaded", "base", t.BaseID, "bytes", nb.bytes)
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.bases[t.BaseID]
	if b == nil { // evicted between the load and now: very tight budget
		return nil, errs.Unavailable("base %s was evicted while loading; raise the base memory budget", t.BaseID)
	}
	e.baseLRU.MoveToFront(b.elem)
	return b, nil
}

// pinBase returns t's base resident and pinned (never evicted until
// unpinBase), loading it again if it was evicted in between.
func (e *Engine) pinBase(ctx context.Context, t serve.Target) (*base, error) {
	for tries := 0; ; tries++ {
		b, err := e.base(ctx, t)
		if err != nil {
			if tries < 3 && errs.Kind(err) == "unavailable" {
				continue
			}
			return nil, err
		}
		e.mu.Lock()
		if e.bases[t.BaseID] == b {
			b.pins++
			e.mu.Unlock()
			return b, nil
		}
		e.mu.Unlock()
	}
}

// unpinBase releases a pin of pinBase and evicts what is over the budget.
func (e *Engine) unpinBase(b *base) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b.pins--
	e.evictBases(nil)
}

// evictBases drops least recently used unpinned bases while over the base
// budget, never keep, together with their adapters and KV caches. e.mu is
// held.
func (e *Engine) evictBases(keep *base) {
	if e.opts.BaseBudgetBytes <= 0 {
		return
	}
	for el := e.baseLRU.Back(); el != nil && e.baseBytes > e.opts.BaseBudgetBytes; {
		b := el.Value.(*base)
		prev := el.Prev()
		if b != keep && b.pins == 0 && !e.adapterPinned(b) {
			e.dropBase(b)
		}
		el = prev
	}
}

func (e *Engine) adapterPinned(b *base) bool {
	for _, a := range e.adapters {
		if a.base == b && a.pins > 0 {
			return true
		}
	}
	return false
}

// Close drops every resident base, with its adapters and caches, and
// unmaps its weights. No call may be running; a later call loads what it
// names again.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.bases {
		e.dropBase(b)
	}
	return nil
}

// dropBase forgets b, its adapters and its sequences' caches. e.mu is held.
func (e *Engine) dropBase(b *base) {
	e.baseLRU.Remove(b.elem)
	delete(e.bases, b.id)
	e.baseBytes -= b.bytes
	e.baseMapped -= b.b.MappedBytes
	e.baseEvict++
	for _, a := range e.adapters {
		if a.base == b {
			e.dropAdapter(a)
		}
	}
	for _, s := range e.seqs {
		if s.base == b {
			e.dropSeq(s)
		}
	}
	// Nothing uses b's weights now: a running call pins its base, and the
	// adapters and caches over it are gone.
	release(b.b, e.opts.Logger)
	e.opts.Logger.Info("base evicted", "base", b.id, "bytes", b.bytes)
}

// release frees b's weights, if its loader asked for that.
func release(b *Base, log *slog.Logger) {
	if b.Release == nil {
		return
	}
	if err := b.Release(); err != nil {
		log.Warn("release base weights", "err", err)
	}
}

// eosIDs lists the tokens that end a generation.
func eosIDs(b *Base) []int32 {
	var out []int32
	add := func(id int32) {
		if id >= 0 && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	// #nosec G115 -- hfconfig validates eos_token_id to [-1, vocab_size), and vocab_size fits int32
	add(int32(b.Config.EOSTokenID))
	add(b.Tokenizer.EOS())
	for _, s := range []string{"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "</s>"} {
		if id, ok := b.Tokenizer.TokenToID(s); ok && b.Tokenizer.IsSpecial(id) {
			add(id)
		}
	}
	return out
}

// Load implements serve.Engine.
func (e *Engine) Load(ctx context.Context, t serve.Target) (*serve.Loaded, error) {
	b, err := e.pinBase(ctx, t)
	if err != nil {
		return nil, err
	}
	defer e.unpinBase(b)
	var l *serve.Loaded
	if t.Adapter == "" {
		l = b.aloneFor(t)
	} else {
		a, err := e.adapter(ctx, t, b)
		if err != nil {
			return nil, err
		}
		l = a.loaded
	}
	// Warm: one forward pass through the exact model the requests will use.
	row := []int32{0}
	if l.Classifier() {
		_, err = e.Classify(ctx, []serve.ClassifyRow{{Model: l, Tokens: row}})
	} else {
		_, err = e.Logits(ctx, []serve.StepRow{{Model: l, Tokens: row}})
	}
	if err != nil {
		return nil, fmt.Errorf("warm %s: %w", t.VersionName(), err)
	}
	return l, nil
}

func (e *Engine) loaded(b *base, t serve.Target, labels []string) *serve.Loaded {
	return &serve.Loaded{Target: t, Tokenizer: b.b.Tokenizer, Labels: labels, MaxPositions: b.b.Config.MaxPositions,
		MaxInputTokens: b.b.Config.MaxPositions, VocabSize: b.b.Config.VocabSize, EOS: b.eos}
}

// aloneFor returns the base served without an adapter, for target t.
func (b *base) aloneFor(t serve.Target) *serve.Loaded {
	l := *b.alone
	l.Target = t
	return &l
}

// adapter returns t's adapter, loading it if it is not resident, and
// touches it in the LRU.
func (e *Engine) adapter(ctx context.Context, t serve.Target, b *base) (*adapter, error) {
	err := e.once(ctx, "adapter:"+t.Adapter, func() bool { return e.adapters[t.Adapter] != nil }, func() error {
		raw, err := e.opts.Loader.Adapter(ctx, t)
		if err != nil {
			return fmt.Errorf("load adapter %s: %w", t.Adapter, err)
		}
		a, err := e.align(b, t, raw)
		if err != nil {
			return fmt.Errorf("adapter %s: %w", t.Adapter, err)
		}
		e.mu.Lock()
		if e.bases[b.id] != b { // its base was evicted meanwhile
			e.mu.Unlock()
			return errs.Unavailable("base %s was evicted while adapter %s loaded; raise the base memory budget", b.id, t.Adapter)
		}
		e.adapters[t.Adapter] = a
		a.elem = e.lru.PushFront(a)
		e.resident += a.bytes
		e.loads++
		e.evict(a)
		e.mu.Unlock()
		e.opts.Logger.Info("adapter loaded", "adapter", t.Adapter, "base", b.id, "bytes", a.bytes)
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.adapters[t.Adapter]
	if a == nil { // evicted between the load and now: very tight budget
		return nil, errs.Unavailable("adapter %s was evicted while loading; raise the adapter memory budget", t.Adapter)
	}
	e.lru.MoveToFront(a.elem)
	return a, nil
}

// align checks raw against the base and wraps its tensors (used in place)
// as a decoder adapter.
func (e *Engine) align(b *base, t serve.Target, raw *Adapter) (*adapter, error) {
	c := raw.PEFT.Config
	ad, err := b.dec.NewAdapter(model.AdapterSpec{Tensors: raw.PEFT.Tensors, Scale: c.Scale(), Targets: c.TargetModules,
		Pooling: model.Pooling(raw.Pooling)})
	if err != nil {
		return nil, err
	}
	if ad.Labels() != len(raw.Labels) {
		return nil, errs.Invalid("the manifest lists %d labels, the head has %d classes", len(raw.Labels), ad.Labels())
	}
	l := e.loaded(b, t, raw.Labels)
	if raw.MaxSeqLen > 0 && raw.MaxSeqLen < l.MaxInputTokens {
		l.MaxInputTokens = raw.MaxSeqLen
	}
	return &adapter{digest: t.Adapter, base: b, ad: ad, bytes: ad.Bytes(), loaded: l}, nil
}

// evict drops least recently used unpinned adapters while over budget,
// never keep. e.mu is held.
func (e *Engine) evict(keep *adapter) {
	for el := e.lru.Back(); el != nil && e.resident > e.opts.BudgetBytes; {
		a := el.Value.(*adapter)
		prev := el.Prev()
		if a != keep && a.pins == 0 {
			e.dropAdapter(a)
		}
		el = prev
	}
}

// dropAdapter forgets a. e.mu is held.
func (e *Engine) dropAdapter(a *adapter) {
	e.lru.Remove(a.elem)
	delete(e.adapters, a.digest)
	e.resident -= a.bytes
	e.evictions++
	e.opts.Logger.Info("adapter evicted", "adapter", a.digest, "bytes", a.bytes)
}

// Stats implements serve.Engine.
func (e *Engine) Stats() serve.EngineStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := serve.EngineStats{Bases: len(e.bases), BaseBytes: e.baseBytes, BaseMappedBytes: e.baseMapped, BaseBudgetBytes: e.opts.BaseBudgetBytes,
		BaseLoads: e.baseLoads, BaseEvictions: e.baseEvict, AdapterBytes: e.resident, BudgetBytes: e.opts.BudgetBytes,
		Loads: e.loads, Evictions: e.evictions, CacheBytes: e.cacheBytes}
	for el := e.lru.Front(); el != nil; el = el.Next() {
		a := el.Value.(*adapter)
		st.Adapters = append(st.Adapters, serve.AdapterStat{Digest: a.digest, Base: a.base.id, Bytes: a.bytes})
	}
	return st
}
