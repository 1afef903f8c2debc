// Package modelengine implements serve.Engine over engine/model: one copy of
// each base in memory, adapters (LoRA and an optional classification head)
// resident by content digest in an LRU under a byte budget, loaded on demand.
//
// A step's rows are grouped by base, then by adapter; each group runs one
// model.Forward. The models of one base share its weights: there is one
// model.Model per adapter shape (method, rank, alpha, targets, labels,
// pooling), and an adapter's tensors are copied into that model's
// parameters before its group runs (skipped when they are already there).
// Generation recomputes the whole prefix at every step (no KV cache): slow
// but exact; engine/infer replaces this behind serve.Engine.
//
// Lock order: Engine.mu, then a base's run lock is never taken while
// holding Engine.mu (loads happen outside both; a step pins its adapters
// under Engine.mu, then runs under the base lock).
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
	"strings"
	"sync"

	"github.com/tailor-ml/tailor/internal/engine"
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
	// Threads for matrix products and element-wise work (default 2).
	Threads int
	Logger  *slog.Logger
}

// Engine implements serve.Engine.
type Engine struct {
	opts Options
	gemm gemm.GEMM

	mu        sync.Mutex
	bases     map[string]*base    // by base id
	adapters  map[string]*adapter // by adapter digest
	lru       *list.List          // of *adapter, front = most recent
	loading   map[string]*flight  // "base:"+id or "adapter:"+digest
	resident  int64               // adapter bytes
	loads     int64
	evictions int64
}

var _ serve.Engine = (*Engine)(nil)

type flight struct {
	done chan struct{}
	err  error
}

// base is one base model and the models built over its weights.
type base struct {
	id      string
	b       *Base
	bytes   int64
	eos     []int32
	run     sync.Mutex // serializes forwards of the models below
	shapes  map[string]*shaped
	alone   *serve.Loaded // the base served without an adapter
	aloneMu sync.Mutex
}

// shaped is one model.Model for adapters of one shape.
type shaped struct {
	m       *model.Model
	params  []*engine.Param
	current string // digest whose tensors are in params
	head    bool
}

type adapter struct {
	digest string
	base   *base
	shape  string
	data   [][]float32 // aligned with the shaped model's params
	bytes  int64
	loaded *serve.Loaded
	elem   *list.Element
	pins   int
}

// New returns an engine.
func New(opts Options) (*Engine, error) {
	if opts.Loader == nil {
		return nil, errs.Invalid("model engine: a loader is required")
	}
	if opts.BudgetBytes <= 0 {
		opts.BudgetBytes = 256 << 20
	}
	if opts.Threads < 1 {
		opts.Threads = 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{opts: opts, gemm: gemm.New(opts.Threads), bases: map[string]*base{}, adapters: map[string]*adapter{},
		lru: list.New(), loading: map[string]*flight{}}, nil
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
		nb := &base{id: t.BaseID, b: b, shapes: map[string]*shaped{}, eos: eosIDs(b)}
		for _, w := range b.Weights {
			nb.bytes += int64(len(w.Data)) * 4
		}
		e.mu.Lock()
		e.bases[t.BaseID] = nb
		e.mu.Unlock()
		e.opts.Logger.Info("base loaded", "base", t.BaseID, "bytes", nb.bytes)
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.bases[t.BaseID], nil
}

// eosIDs lists the tokens that end a generation.
func eosIDs(b *Base) []int32 {
	var out []int32
	add := func(id int32) {
		if id >= 0 && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
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
	b, err := e.base(ctx, t)
	if err != nil {
		return nil, err
	}
	var l *serve.Loaded
	if t.Adapter == "" {
		if l, err = e.baseAlone(b, t); err != nil {
			return nil, err
		}
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
		VocabSize: b.b.Config.VocabSize, EOS: b.eos}
}

// baseAlone returns the base served without an adapter. It runs on a LoRA
// model whose single rank-1 adapter has B = 0, so its output is exactly the
// base's, without the full fine-tune mode's gradient buffers.
func (e *Engine) baseAlone(b *base, t serve.Target) (*serve.Loaded, error) {
	b.aloneMu.Lock()
	defer b.aloneMu.Unlock()
	if b.alone == nil {
		b.run.Lock()
		_, err := b.shape("base", func() (*model.Model, error) {
			target := "q_proj"
			if b.b.Config.Arch == "GPT2LMHeadModel" {
				target = "c_attn"
			}
			return model.New(b.b.Config, b.b.Weights, model.Options{Method: model.LoRA, Workers: e.opts.Threads, GEMM: e.gemm,
				LoRA: model.LoRAOptions{Rank: 1, Alpha: 1, Targets: []string{target}}})
		})
		b.run.Unlock()
		if err != nil {
			return nil, fmt.Errorf("base %s: %w", b.id, err)
		}
		b.alone = e.loaded(b, t, nil)
	}
	l := *b.alone
	l.Target = t
	return &l, nil
}

// shape returns the model for key, building it with build. b.run is held.
func (b *base) shape(key string, build func() (*model.Model, error)) (*shaped, error) {
	if s, ok := b.shapes[key]; ok {
		return s, nil
	}
	m, err := build()
	if err != nil {
		return nil, err
	}
	s := &shaped{m: m, params: m.Params(), head: strings.HasPrefix(key, "head")}
	b.shapes[key] = s
	return s, nil
}

func shapeKey(a *Adapter) (string, model.Options) {
	c := a.PEFT.Config
	o := model.Options{Method: model.LoRA, LoRA: model.LoRAOptions{Rank: c.R, Alpha: c.LoraAlpha, Targets: c.TargetModules}}
	kind := "lora"
	if len(a.Labels) > 0 {
		kind = "head"
		o.Method = model.Head
		o.Head = model.HeadOptions{NumLabels: len(a.Labels), Pooling: model.Pooling(a.Pooling)}
	}
	targets := slices.Clone(c.TargetModules)
	slices.Sort(targets)
	return fmt.Sprintf("%s r=%d alpha=%g targets=%s labels=%d pool=%s", kind, c.R, c.LoraAlpha,
		strings.Join(targets, ","), len(a.Labels), a.Pooling), o
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

// align builds (or finds) the shaped model for raw and lines its tensors up
// with that model's parameters.
func (e *Engine) align(b *base, t serve.Target, raw *Adapter) (*adapter, error) {
	key, o := shapeKey(raw)
	o.Workers, o.GEMM = e.opts.Threads, e.gemm
	b.run.Lock()
	defer b.run.Unlock()
	s, err := b.shape(key, func() (*model.Model, error) { return model.New(b.b.Config, b.b.Weights, o) })
	if err != nil {
		return nil, err
	}
	a := &adapter{digest: t.Adapter, base: b, shape: key}
	for _, p := range s.params {
		tn, ok := raw.PEFT.Tensors[p.Name]
		if !ok {
			tn, ok = raw.PEFT.Tensors["base_model.model."+p.Name]
		}
		if !ok {
			return nil, errs.Invalid("tensor %q is missing", p.Name)
		}
		if !slices.Equal(tn.Shape, p.Shape) {
			return nil, errs.Invalid("tensor %q has shape %v, the model wants %v", p.Name, tn.Shape, p.Shape)
		}
		a.data = append(a.data, tn.Data)
		a.bytes += int64(len(tn.Data)) * 4
	}
	a.loaded = e.loaded(b, t, raw.Labels)
	return a, nil
}

// evict drops least recently used unpinned adapters while over budget,
// never keep. e.mu is held.
func (e *Engine) evict(keep *adapter) {
	for el := e.lru.Back(); el != nil && e.resident > e.opts.BudgetBytes; {
		a := el.Value.(*adapter)
		prev := el.Prev()
		if a != keep && a.pins == 0 {
			e.lru.Remove(el)
			delete(e.adapters, a.digest)
			e.resident -= a.bytes
			e.evictions++
			e.opts.Logger.Info("adapter evicted", "adapter", a.digest, "bytes", a.bytes)
		}
		el = prev
	}
}

// Stats implements serve.Engine.
func (e *Engine) Stats() serve.EngineStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := serve.EngineStats{Bases: len(e.bases), AdapterBytes: e.resident, BudgetBytes: e.opts.BudgetBytes,
		Loads: e.loads, Evictions: e.evictions}
	for _, b := range e.bases {
		st.BaseBytes += b.bytes
	}
	for el := e.lru.Front(); el != nil; el = el.Next() {
		a := el.Value.(*adapter)
		st.Adapters = append(st.Adapters, serve.AdapterStat{Digest: a.digest, Base: a.base.id, Bytes: a.bytes})
	}
	return st
}

// Release implements serve.Engine; without a cache there is nothing to free.
func (e *Engine) Release(uint64) {}
