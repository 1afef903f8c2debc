package model

import (
	"math"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

var _ engine.Trainable = (*Model)(nil)

// activations are the buffers one forward/backward pass reuses; they grow
// when a larger batch arrives and are otherwise never reallocated.
type activations struct {
	batch, seq, m int
	lens          []int
	ids, posIDs   []int32
	targets       []int32
	res           [][]f32 // residual stream entering each block, and leaving the last
	n1, h, n2     [][]f32 // per block: normed input, mid residual, normed mid
	tmp, nf       []f32
	dres, dn, dnf []f32
	logits        []f32
	rowLoss       []float64
	pooled, dpool []f32
	scores        []f32
}

func growF(s []f32, n int) []f32 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]f32, n)
}

func growI(s []int32, n int) []int32 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]int32, n)
}

// prepare validates the batch, pads it to its longest example (right
// padding: causal attention keeps real positions exact) and sizes buffers.
func (m *Model) prepare(b engine.Batch) error {
	a, c := &m.acts, m.cfg
	if len(b.Examples) == 0 {
		return errs.Invalid("batch: no examples")
	}
	seq := 0
	for i, ex := range b.Examples {
		n := len(ex.Tokens)
		switch {
		case n == 0:
			return errs.Invalid("batch: example %d has no tokens", i)
		case n > c.MaxPositions:
			return errs.Invalid("batch: example %d has %d tokens, more than max_position_embeddings %d", i, n, c.MaxPositions)
		case ex.LossMask != nil && len(ex.LossMask) != n:
			return errs.Invalid("batch: example %d loss mask has %d entries for %d tokens", i, len(ex.LossMask), n)
		case m.score != nil && (ex.Label < 0 || ex.Label >= m.score.Out):
			return errs.Invalid("batch: example %d label %d outside [0, %d)", i, ex.Label, m.score.Out)
		}
		for p, t := range ex.Tokens {
			if t < 0 || int(t) >= c.VocabSize {
				return errs.Invalid("batch: example %d token %d at position %d outside vocabulary [0, %d)", i, t, p, c.VocabSize)
			}
		}
		seq = max(seq, n)
	}
	a.batch, a.seq, a.m = len(b.Examples), seq, len(b.Examples)*seq
	mm, d := a.m, c.Hidden
	a.ids, a.posIDs, a.targets = growI(a.ids, mm), growI(a.posIDs, mm), growI(a.targets, mm)
	a.lens = a.lens[:0]
	for i, ex := range b.Examples {
		a.lens = append(a.lens, len(ex.Tokens))
		for t := 0; t < seq; t++ {
			r := i*seq + t
			a.ids[r], a.posIDs[r], a.targets[r] = 0, int32(t), -1
			if t < len(ex.Tokens) {
				a.ids[r] = ex.Tokens[t]
			}
			if t+1 < len(ex.Tokens) && (ex.LossMask == nil || ex.LossMask[t]) {
				a.targets[r] = ex.Tokens[t+1]
			}
		}
	}
	L := len(m.blocks)
	if len(a.res) != L+1 {
		a.res, a.n1, a.h, a.n2 = make([][]f32, L+1), make([][]f32, L), make([][]f32, L), make([][]f32, L)
	}
	for l := 0; l <= L; l++ {
		a.res[l] = growF(a.res[l], mm*d)
		if l < L {
			a.n1[l], a.h[l], a.n2[l] = growF(a.n1[l], mm*d), growF(a.h[l], mm*d), growF(a.n2[l], mm*d)
		}
	}
	a.tmp, a.nf = growF(a.tmp, mm*d), growF(a.nf, mm*d)
	a.dres, a.dn, a.dnf = growF(a.dres, mm*d), growF(a.dn, mm*d), growF(a.dnf, mm*d)
	if m.score != nil {
		a.pooled, a.dpool = growF(a.pooled, a.batch*d), growF(a.dpool, a.batch*d)
		a.scores = growF(a.scores, a.batch*m.score.Out)
	} else {
		a.logits = growF(a.logits, mm*c.VocabSize)
	}
	if cap(a.rowLoss) < max(mm, a.batch) {
		a.rowLoss = make([]float64, max(mm, a.batch))
	}
	return nil
}

func (m *Model) setTrain(train bool) {
	for _, r := range m.loras {
		r.lin.LoRA.Train = train
	}
}

// add writes dst = x + y in parallel.
func (m *Model) add(dst, x, y []f32) {
	d := m.cfg.Hidden
	m.rt.Parallel(len(dst)/d, func(lo, hi int) {
		for i := lo * d; i < hi*d; i++ {
			dst[i] = x[i] + y[i]
		}
	})
}

// hidden runs embeddings, blocks and the final norm into acts.nf.
func (m *Model) hidden() error {
	a, rt := &m.acts, m.rt
	if err := m.embed.Forward(a.ids, a.res[0]); err != nil {
		return err
	}
	if m.pos != nil {
		if err := m.pos.Forward(a.posIDs, a.tmp); err != nil {
			return err
		}
		m.add(a.res[0], a.res[0], a.tmp)
	}
	// Each residual add runs in one pass with the norm that reads its sum:
	// h = res + attention, n2 = ln2(h); res' = h + mlp, n1' = the next
	// block's ln1(res') (the final norm's, after the last block).
	L := len(m.blocks)
	if L == 0 {
		m.norm.Forward(rt, a.res[0], a.m, a.nf)
		return nil
	}
	m.blocks[0].ln1.Forward(rt, a.res[0], a.m, a.n1[0])
	for l, blk := range m.blocks {
		blk.attn.Forward(rt, a.n1[l], a.batch, a.seq, a.tmp)
		blk.ln2.AddForward(rt, a.res[l], a.tmp, a.m, a.h[l], a.n2[l])
		blk.mlp.Forward(rt, a.n2[l], a.m, a.tmp)
		next, out := m.norm, a.nf
		if l+1 < L {
			next, out = m.blocks[l+1].ln1, a.n1[l+1]
		}
		next.AddForward(rt, a.h[l], a.tmp, a.m, a.res[l+1], out)
	}
	return nil
}

// embedTrainable reports whether gradients must reach the embeddings.
func (m *Model) embedTrainable() bool { return m.embed.DW != nil }

// backward takes dL/d nf in acts.dnf and runs the blocks in reverse.
func (m *Model) backward() {
	a, rt := &m.acts, m.rt
	L := len(m.blocks)
	m.norm.Backward(rt, a.res[L], a.m, a.dnf, a.dres, false)
	for l := L - 1; l >= 0; l-- {
		blk := m.blocks[l]
		blk.mlp.Backward(rt, a.n2[l], a.dres, a.dn, false)
		blk.ln2.Backward(rt, a.h[l], a.m, a.dn, a.dres, true)
		needX := l > 0 || m.embedTrainable()
		if !needX && m.opts.Method != Full {
			blk.attn.Backward(rt, a.n1[l], a.dres, nil, false)
			continue
		}
		blk.attn.Backward(rt, a.n1[l], a.dres, a.dn, false)
		var dx []f32
		if needX {
			dx = a.dres
		}
		blk.ln1.Backward(rt, a.res[l], a.m, a.dn, dx, true)
	}
	if m.embedTrainable() {
		m.embed.Backward(a.ids, a.dres)
		if m.pos != nil {
			m.pos.Backward(a.posIDs, a.dres)
		}
	}
}

// baseTrainable reports whether anything below the head has gradients.
func (m *Model) baseTrainable() bool { return m.opts.Method == Full || len(m.loras) > 0 }

func softmax(row []f32) {
	mx := row[0]
	for _, v := range row {
		mx = max(mx, v)
	}
	var s float64
	for i, v := range row {
		e := math.Exp(float64(v - mx))
		row[i] = f32(e)
		s += e
	}
	for i := range row {
		row[i] = f32(float64(row[i]) / s)
	}
}
