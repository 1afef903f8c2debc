package modelengine

import (
	"context"
	"fmt"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
)

// group is the rows of one step that run through one model.
type group struct {
	b    *base
	a    *adapter // nil: the base alone
	rows []int
}

// plan groups rows by base and adapter (in order of first appearance),
// loading evicted adapters again and pinning them until release is called.
func (e *Engine) plan(ctx context.Context, models []*serve.Loaded) (groups []*group, release func(), err error) {
	index := map[string]*group{}
	var pinned []*adapter
	release = func() {
		e.mu.Lock()
		for _, a := range pinned {
			a.pins--
		}
		e.evict(nil)
		e.mu.Unlock()
	}
	for i, l := range models {
		if l == nil {
			release()
			return nil, nil, errs.Invalid("row %d names no model", i)
		}
		t := l.Target
		key := "adapter:" + t.Adapter
		if t.Adapter == "" {
			key = "base:" + t.BaseID
		}
		if g, ok := index[key]; ok {
			g.rows = append(g.rows, i)
			continue
		}
		b, err := e.base(ctx, t)
		if err != nil {
			release()
			return nil, nil, err
		}
		g := &group{b: b, rows: []int{i}}
		if t.Adapter == "" {
			if _, err := e.baseAlone(b, t); err != nil {
				release()
				return nil, nil, err
			}
		} else {
			a, err := e.pinAdapter(ctx, t, b)
			if err != nil {
				release()
				return nil, nil, err
			}
			pinned = append(pinned, a)
			g.a = a
		}
		index[key] = g
		groups = append(groups, g)
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
		e.mu.Lock()
		if e.adapters[t.Adapter] == a {
			a.pins++
			e.mu.Unlock()
			return a, nil
		}
		e.mu.Unlock()
	}
}

// model returns the group's model with its adapter's tensors in place.
// g.b.run is held.
func (g *group) model() *shaped {
	if g.a == nil {
		return g.b.shapes["base"]
	}
	s := g.b.shapes[g.a.shape]
	if s.current != g.a.digest {
		for i, p := range s.params {
			copy(p.Data, g.a.data[i])
		}
		s.current = g.a.digest
	}
	return s
}

// Classify implements serve.Engine.
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
		exs := make([]engine.Example, len(g.rows))
		for j, i := range g.rows {
			exs[j] = engine.Example{Tokens: rows[i].Tokens, Label: 0}
		}
		g.b.run.Lock()
		t, err := g.model().m.Forward(engine.Batch{Examples: exs})
		if err == nil {
			k := t.Shape[1]
			for j, i := range g.rows {
				out[i] = append([]float32(nil), t.Data[j*k:(j+1)*k]...)
			}
		}
		g.b.run.Unlock()
		if err != nil {
			return nil, fmt.Errorf("classify: %w", err)
		}
	}
	return out, nil
}

// Logits implements serve.Engine: it recomputes each row's whole prefix.
func (e *Engine) Logits(ctx context.Context, rows []serve.StepRow) ([][]float32, error) {
	models := make([]*serve.Loaded, len(rows))
	for i, r := range rows {
		models[i] = r.Model
		if r.Model != nil && r.Model.Classifier() {
			return nil, errs.Invalid("row %d: model %s is a classifier; it does not generate text", i, r.Model.Target.VersionName())
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
		exs := make([]engine.Example, len(g.rows))
		for j, i := range g.rows {
			exs[j] = engine.Example{Tokens: rows[i].Tokens, Label: -1}
		}
		g.b.run.Lock()
		t, err := g.model().m.Forward(engine.Batch{Examples: exs})
		if err == nil {
			seq, vocab := t.Shape[1], t.Shape[2]
			for j, i := range g.rows {
				off := (j*seq + len(rows[i].Tokens) - 1) * vocab
				out[i] = append([]float32(nil), t.Data[off:off+vocab]...)
			}
		}
		g.b.run.Unlock()
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
	}
	return out, nil
}
