package model

import (
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/nn"
)

// ForwardBackward implements engine.Trainable. Gradients are those of the
// summed loss (not the mean): divide by count when stepping. Causal LM:
// position i of an example predicts token i+1 where LossMask allows;
// classification: one cross-entropy term per example.
func (m *Model) ForwardBackward(b engine.Batch) (float64, int, error) {
	if err := m.prepare(b); err != nil {
		return 0, 0, err
	}
	m.setTrain(true)
	defer m.setTrain(false)
	if err := m.hidden(); err != nil {
		return 0, 0, err
	}
	if m.score != nil {
		return m.headLoss(b)
	}
	a, rt, v := &m.acts, m.rt, m.cfg.VocabSize
	m.lmHead.Forward(rt, a.nf, a.m, a.logits)
	loss, n := nn.CrossEntropy(rt, a.logits, a.m, v, a.targets, a.logits, 1, a.rowLoss)
	if n == 0 {
		return 0, 0, nil
	}
	m.lmHead.Backward(rt, a.nf, a.m, a.logits, a.dnf, false)
	m.backward()
	return loss, n, nil
}

// pool writes each example's pooled final hidden state into acts.pooled.
func (m *Model) pool() {
	a, d := &m.acts, m.cfg.Hidden
	for i, n := range a.lens {
		dst := a.pooled[i*d : (i+1)*d]
		if m.opts.Head.Pooling == PoolLast {
			r := i*a.seq + n - 1
			copy(dst, a.nf[r*d:(r+1)*d])
			continue
		}
		clear(dst)
		for t := 0; t < n; t++ {
			r := i*a.seq + t
			for j, x := range a.nf[r*d : (r+1)*d] {
				dst[j] += x
			}
		}
		inv := 1 / f32(n)
		for j := range dst {
			dst[j] *= inv
		}
	}
}

// unpool scatters dL/d pooled back to the rows of acts.dnf.
func (m *Model) unpool() {
	a, d := &m.acts, m.cfg.Hidden
	clear(a.dnf)
	for i, n := range a.lens {
		src := a.dpool[i*d : (i+1)*d]
		if m.opts.Head.Pooling == PoolLast {
			r := i*a.seq + n - 1
			copy(a.dnf[r*d:(r+1)*d], src)
			continue
		}
		inv := 1 / f32(n)
		for t := 0; t < n; t++ {
			r := i*a.seq + t
			row := a.dnf[r*d : (r+1)*d]
			for j, x := range src {
				row[j] = x * inv
			}
		}
	}
}

func (m *Model) headLoss(b engine.Batch) (float64, int, error) {
	a, rt, k := &m.acts, m.rt, m.score.Out
	m.pool()
	m.score.Forward(rt, a.pooled, a.batch, a.scores)
	labels := a.targets[:a.batch] // targets are rebuilt by every prepare
	for i, ex := range b.Examples {
		// #nosec G115 -- 0 <= Label < score.Out, checked before the step (run.go)
		labels[i] = int32(ex.Label)
	}
	loss, n := nn.CrossEntropy(rt, a.scores, a.batch, k, labels, a.scores, 1, a.rowLoss)
	if !m.baseTrainable() {
		m.score.Backward(rt, a.pooled, a.batch, a.scores, nil, false)
		return loss, n, nil
	}
	m.score.Backward(rt, a.pooled, a.batch, a.scores, a.dpool, false)
	m.unpool()
	m.backward()
	return loss, n, nil
}

// Forward runs inference (dropout off). A causal LM returns logits
// [batch, seq, vocab] (seq = the longest example; rows past an example's
// end are padding); a head returns class probabilities [batch, labels].
// The returned data is the model's own buffer, valid until the next call.
func (m *Model) Forward(b engine.Batch) (engine.Tensor, error) {
	if err := m.prepare(b); err != nil {
		return engine.Tensor{}, err
	}
	m.rt.NoGrad = true // no backward follows: layers skip what only it reads
	defer func() { m.rt.NoGrad = false }()
	if err := m.hidden(); err != nil {
		return engine.Tensor{}, err
	}
	a, rt := &m.acts, m.rt
	if m.score == nil {
		m.lmHead.Forward(rt, a.nf, a.m, a.logits)
		return engine.Tensor{Shape: []int{a.batch, a.seq, m.cfg.VocabSize}, Data: a.logits}, nil
	}
	m.pool()
	k := m.score.Out
	m.score.Forward(rt, a.pooled, a.batch, a.scores)
	for i := 0; i < a.batch; i++ {
		softmax(a.scores[i*k : (i+1)*k])
	}
	return engine.Tensor{Shape: []int{a.batch, k}, Data: a.scores}, nil
}
