package modelengine

import (
	"context"
	"fmt"

	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
)

// group is the rows of one call that run on one base, as one batched
// decoder call; ads[j] is the adapter of rows[j] (nil: the base alone).
type group struct {
	b    *base
	rows []int
	ads  []*adapter
}

// plan groups rows by base (in order of first appearance), loading evicted
// bases and adapters again and pinning them until release is called.
func (e *Engine) plan(ctx context.Context, models []*serve.Loaded) (groups []*group, release func(), err error) {
	index := map[string]*group{}
	adapters := map[string]*adapter{}
	var pinned []*adapter
	var pinnedBases []*base
	release = func() {
		e.mu.Lock()
		for _, a := range pinned {
			a.pins--
		}
		for _, b := range pinnedBases {
			b.pins--
		}
		e.evict(nil)
		e.evictBases(nil)
		e.mu.Unlock()
	}
	fail := func(err error) ([]*group, func(), error) {
		release()
		return nil, nil, err
	}
	for i, l := range models {
		if l == nil {
			return fail(errs.Invalid("row %d names no model", i))
		}
		t := l.Target
		g, ok := index[t.BaseID]
		if !ok {
			b, err := e.pinBase(ctx, t)
			if err != nil {
				return fail(err)
			}
			pinnedBases = append(pinnedBases, b)
			g = &group{b: b}
			index[t.BaseID] = g
			groups = append(groups, g)
		}
		var a *adapter
		if t.Adapter != "" {
			if a = adapters[t.Adapter]; a == nil {
				if a, err = e.pinAdapter(ctx, t, g.b); err != nil {
					return fail(err)
				}
				pinned = append(pinned, a)
				adapters[t.Adapter] = a
			}
		}
		g.rows, g.ads = append(g.rows, i), append(g.ads, a)
	}
	return groups, release, nil
}

// pinAdapter returns t's adapter resident and pinned, loading it again if it
// was evicted in between.
func (e *Engine) pinAdapter(ctx context.Context, t serve.Target, b *base) (*adapter, error) {
	for tries := 0; ; tries++ {
		a, err := e.adapter(ctx, t, b)
		if err != nil {
			if tries < 3 && errs.Kind(err) == "unavailable" {
				continue
			}
			return nil, err
		}
		if a.base != b {
			return nil, errs.Invalid("adapter %s is resident over base %s, not %s", t.Adapter, a.base.id, b.id)
		}
		e.mu.Lock()
		if e.adapters[t.Adapter] == a {
			a.pins++
			e.mu.Unlock()
			return a, nil
		}
		e.mu.Unlock()
	}
}

func (a *adapter) model() *model.Adapter {
	if a == nil {
		return nil
	}
	return a.ad
}

// Classify implements serve.Engine: one batched decoder call per base, each
// row through its own adapter's head.
func (e *Engine) Classify(ctx context.Context, rows []serve.ClassifyRow) ([][]float32, error) {
	models := make([]*serve.Loaded, len(rows))
	for i, r := range rows {
		models[i] = r.Model
		if r.Model != nil && !r.Model.Classifier() {
			return nil, errs.Invalid("row %d: model %s has no classification head", i, r.Model.Target.VersionName())
		}
		if len(r.Tokens) == 0 {
			return nil, errs.Invalid("row %d: no tokens", i)
		}
	}
	groups, release, err := e.plan(ctx, models)
	if err != nil {
		return nil, err
	}
	defer release()
	out := make([][]float32, len(rows))
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in := make([]model.Row, len(g.rows))
		for j, i := range g.rows {
			in[j] = model.Row{Adapter: g.ads[j].model(), Tokens: rows[i].Tokens}
		}
		g.b.run.Lock()
		probs, err := g.b.dec.Classify(in)
		g.b.run.Unlock()
		if err != nil {
			return nil, fmt.Errorf("classify: %w", err)
		}
		for j, i := range g.rows {
			out[i] = probs[j]
		}
	}
	return out, nil
}

// Logits implements serve.Engine: each sequence feeds only the tokens its
// cache does not hold yet, and the rows of one base run as one step.
func (e *Engine) Logits(ctx context.Context, rows []serve.StepRow) ([][]float32, error) {
	models := make([]*serve.Loaded, len(rows))
	seen := map[uint64]int{}
	for i, r := range rows {
		models[i] = r.Model
		if r.Model != nil && r.Model.Classifier() {
			return nil, errs.Invalid("row %d: model %s is a classifier; it does not generate text", i, r.Model.Target.VersionName())
		}
		if len(r.Tokens) == 0 {
			return nil, errs.Invalid("row %d: no tokens", i)
		}
		if j, dup := seen[r.Seq]; dup && r.Seq != 0 {
			return nil, errs.Invalid("row %d: sequence %d already appears in row %d", i, r.Seq, j)
		}
		seen[r.Seq] = i
	}
	groups, release, err := e.plan(ctx, models)
	if err != nil {
		return nil, err
	}
	defer release()
	out := make([][]float32, len(rows))
	for _, g := range groups {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := e.step(g, rows, out); err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
	}
	return out, nil
}

// step runs one base's rows as one decoder step and writes their logits.
func (e *Engine) step(g *group, rows []serve.StepRow, out [][]float32) error {
	seqs := make([]*sequence, len(g.rows))
	in := make([]model.Row, len(g.rows))
	g.b.run.Lock()
	defer g.b.run.Unlock()
	for j, i := range g.rows {
		s := e.sequence(g.b, rows[i].Seq, g.ads[j])
		toks := rows[i].Tokens
		p := commonPrefix(s.tokens, toks)
		if p == len(toks) { // nothing new: recompute the last token
			p--
		}
		s.cache.Truncate(p)
		s.tokens = s.tokens[:p]
		seqs[j] = s
		in[j] = model.Row{Adapter: g.ads[j].model(), Cache: s.cache, Tokens: toks[p:]}
	}
	lg, err := g.b.dec.Step(in)
	if err != nil {
		return err
	}
	v := lg.Shape[1]
	for j, i := range g.rows {
		out[i] = append([]float32(nil), lg.Data[j*v:(j+1)*v]...)
		seqs[j].tokens = append(seqs[j].tokens, rows[i].Tokens[len(seqs[j].tokens):]...)
	}
	e.account(seqs)
	return nil
}

// sequence returns the cache entry for id on base b and adapter a, a fresh
// one when there is none or it belongs to another model. Id 0 is never
// kept.
func (e *Engine) sequence(b *base, id uint64, a *adapter) *sequence {
	digest := ""
	if a != nil {
		digest = a.digest
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.seqs[id]; s != nil && id != 0 {
		if s.base == b && s.adapter == digest {
			e.seqLRU.MoveToFront(s.elem)
			return s
		}
		e.dropSeq(s)
	}
	s := &sequence{id: id, base: b, adapter: digest, cache: b.dec.NewCache()}
	if id != 0 {
		e.seqs[id] = s
		s.elem = e.seqLRU.PushFront(s)
	}
	return s
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// account updates cache bytes after a step and drops least recently used
// caches of other sequences while over the budget.
func (e *Engine) account(used []*sequence) {
	e.mu.Lock()
	defer e.mu.Unlock()
	keep := map[*sequence]bool{}
	for _, s := range used {
		keep[s] = true
		if s.elem == nil || e.seqs[s.id] != s { // id 0, or released meanwhile
			continue
		}
		n := s.cache.Bytes()
		e.cacheBytes += n - s.bytes
		s.bytes = n
	}
	for el := e.seqLRU.Back(); el != nil && e.cacheBytes > e.opts.CacheBudgetBytes; {
		s, prev := el.Value.(*sequence), el.Prev()
		if !keep[s] {
			e.dropSeq(s)
			e.cacheDrops++
			e.opts.Logger.Info("kv cache dropped over budget", "seq", s.id, "bytes", s.bytes)
		}
		el = prev
	}
}

// dropSeq forgets s. e.mu is held.
func (e *Engine) dropSeq(s *sequence) {
	if e.seqs[s.id] != s {
		return
	}
	delete(e.seqs, s.id)
	e.seqLRU.Remove(s.elem)
	e.cacheBytes -= s.bytes
}

// Release implements serve.Engine: it frees the sequence's KV cache.
func (e *Engine) Release(seq uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.seqs[seq]; s != nil {
		e.dropSeq(s)
	}
}

// CacheStats is what the KV caches hold.
type CacheStats struct {
	Sequences   int
	Bytes       int64
	BudgetBytes int64
	Drops       int64 // caches dropped over the budget
}

// Caches reports the KV caches, for metrics and tests.
func (e *Engine) Caches() CacheStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return CacheStats{Sequences: len(e.seqs), Bytes: e.cacheBytes, BudgetBytes: e.opts.CacheBudgetBytes, Drops: e.cacheDrops}
}
