package train

import (
	"fmt"
	"math"

	"github.com/tailor-ml/tailor/internal/engine"
)

// Small Trainables with analytic gradients, used by the tests in place of
// the transformer model. Each accumulates float64 per-example gradients
// into float32 Grad in a fixed order, so runs are deterministic.

func newParam(name string, shape ...int) *engine.Param {
	n := engine.Numel(shape)
	return &engine.Param{Name: name, Shape: shape, Data: make([]float32, n), Grad: make([]float32, n)}
}

func initNormal(rng *RNG, p *engine.Param, scale float64) {
	for i := range p.Data {
		p.Data[i] = float32(rng.Normal() * scale)
	}
}

// softmaxCE returns the cross-entropy of label under logits and writes
// dLoss/dLogits into d.
func softmaxCE(logits []float64, label int, d []float64) float64 {
	mx := math.Inf(-1)
	for _, z := range logits {
		mx = math.Max(mx, z)
	}
	var sum float64
	for i, z := range logits {
		d[i] = math.Exp(z - mx)
		sum += d[i]
	}
	for i := range d {
		d[i] /= sum
	}
	loss := -math.Log(d[label])
	d[label]--
	return loss
}

// softmaxReg is multinomial logistic regression on bag-of-token features:
// logits = Σ_tok W[:, tok] + b. One loss term per example.
type softmaxReg struct {
	vocab, classes int
	w, b           *engine.Param
}

func newSoftmaxReg(vocab, classes int, seed uint64) *softmaxReg {
	m := &softmaxReg{vocab: vocab, classes: classes,
		w: newParam("linear.weight", classes, vocab), b: newParam("linear.bias", classes)}
	initNormal(NewRNG(seed), m.w, 0.1)
	return m
}

func (m *softmaxReg) Params() []*engine.Param { return []*engine.Param{m.w, m.b} }

func (m *softmaxReg) logits(ex engine.Example) []float64 {
	z := make([]float64, m.classes)
	for c := range z {
		z[c] = float64(m.b.Data[c])
		for _, tok := range ex.Tokens {
			z[c] += float64(m.w.Data[c*m.vocab+int(tok)])
		}
	}
	return z
}

func (m *softmaxReg) ForwardBackward(b engine.Batch) (float64, int, error) {
	var loss float64
	d := make([]float64, m.classes)
	for _, ex := range b.Examples {
		if ex.Label < 0 || ex.Label >= m.classes {
			return 0, 0, fmt.Errorf("label %d out of range", ex.Label)
		}
		loss += softmaxCE(m.logits(ex), ex.Label, d)
		for c, dc := range d {
			m.b.Grad[c] += float32(dc)
			for _, tok := range ex.Tokens {
				m.w.Grad[c*m.vocab+int(tok)] += float32(dc)
			}
		}
	}
	return loss, len(b.Examples), nil
}

// mlp is a 2-layer perceptron on bag-of-token features with ReLU and
// optional inverted dropout on the hidden layer (seeded via SetSeed).
type mlp struct {
	vocab, hidden, classes int
	dropout                float64
	rng                    *RNG
	w1, b1, w2, b2         *engine.Param
}

func newMLP(vocab, hidden, classes int, dropout float64, seed uint64) *mlp {
	m := &mlp{vocab: vocab, hidden: hidden, classes: classes, dropout: dropout, rng: NewRNG(0),
		w1: newParam("fc1.weight", hidden, vocab), b1: newParam("fc1.bias", hidden),
		w2: newParam("fc2.weight", classes, hidden), b2: newParam("fc2.bias", classes)}
	r := NewRNG(seed)
	initNormal(r, m.w1, 1/math.Sqrt(3))
	initNormal(r, m.w2, 1/math.Sqrt(float64(hidden)))
	return m
}

func (m *mlp) Params() []*engine.Param { return []*engine.Param{m.w1, m.b1, m.w2, m.b2} }

func (m *mlp) SetSeed(seed uint64) { m.rng = NewRNG(seed) }

// forward returns hidden activations (after ReLU and dropout), the dropout
// scale per unit, and logits.
func (m *mlp) forward(ex engine.Example, train bool) (h, keep, z []float64) {
	h, keep, z = make([]float64, m.hidden), make([]float64, m.hidden), make([]float64, m.classes)
	for j := range h {
		a := float64(m.b1.Data[j])
		for _, tok := range ex.Tokens {
			a += float64(m.w1.Data[j*m.vocab+int(tok)])
		}
		keep[j] = 1
		if train && m.dropout > 0 {
			keep[j] = 0
			if m.rng.Float64() >= m.dropout {
				keep[j] = 1 / (1 - m.dropout)
			}
		}
		if a < 0 {
			keep[j] = 0
		}
		h[j] = a * keep[j]
	}
	for c := range z {
		z[c] = float64(m.b2.Data[c])
		for j, hj := range h {
			z[c] += float64(m.w2.Data[c*m.hidden+j]) * hj
		}
	}
	return h, keep, z
}

func (m *mlp) ForwardBackward(b engine.Batch) (float64, int, error) {
	var loss float64
	dz := make([]float64, m.classes)
	for _, ex := range b.Examples {
		h, keep, z := m.forward(ex, true)
		loss += softmaxCE(z, ex.Label, dz)
		for c, d := range dz {
			m.b2.Grad[c] += float32(d)
			for j, hj := range h {
				m.w2.Grad[c*m.hidden+j] += float32(d * hj)
			}
		}
		for j := range h {
			var dh float64
			for c, d := range dz {
				dh += d * float64(m.w2.Data[c*m.hidden+j])
			}
			da := dh * keep[j]
			m.b1.Grad[j] += float32(da)
			for _, tok := range ex.Tokens {
				m.w1.Grad[j*m.vocab+int(tok)] += float32(da)
			}
		}
	}
	return loss, len(b.Examples), nil
}

func (m *mlp) predict(ex engine.Example) int {
	_, _, z := m.forward(ex, false)
	best := 0
	for c := range z {
		if z[c] > z[best] {
			best = c
		}
	}
	return best
}

// bigram is a causal LM whose next-token logits are a row of a table:
// logits(Tokens[i+1]) = E[Tokens[i], :]. One loss term per counted position.
type bigram struct {
	vocab int
	e     *engine.Param
}

func newBigram(vocab int, seed uint64) *bigram {
	m := &bigram{vocab: vocab, e: newParam("lm.table", vocab, vocab)}
	initNormal(NewRNG(seed), m.e, 0.1)
	return m
}

func (m *bigram) Params() []*engine.Param { return []*engine.Param{m.e} }

func (m *bigram) ForwardBackward(b engine.Batch) (float64, int, error) {
	var loss float64
	n := 0
	z, d := make([]float64, m.vocab), make([]float64, m.vocab)
	for _, ex := range b.Examples {
		for i := 0; i+1 < len(ex.Tokens); i++ {
			if ex.LossMask != nil && !ex.LossMask[i] {
				continue
			}
			row := int(ex.Tokens[i]) * m.vocab
			for k := range z {
				z[k] = float64(m.e.Data[row+k])
			}
			loss += softmaxCE(z, int(ex.Tokens[i+1]), d)
			for k, dk := range d {
				m.e.Grad[row+k] += float32(dk)
			}
			n++
		}
	}
	return loss, n, nil
}

// sliceData is an in-memory Dataset.
type sliceData []engine.Example

func (s sliceData) Len() int                     { return len(s) }
func (s sliceData) Example(i int) engine.Example { return s[i] }

// modularData is the task "label = (a + b) mod p" with a distractor token:
// tokens a (0..p-1), p+b, 2p+c; all p³ combinations.
func modularData(p int) sliceData {
	var out sliceData
	for a := range p {
		for b := range p {
			for c := range p {
				out = append(out, engine.Example{Tokens: []int32{int32(a), int32(p + b), int32(2*p + c)}, Label: (a + b) % p})
			}
		}
	}
	return out
}

// lmData makes n causal-LM examples of varied lengths over vocab tokens,
// following a noisy cyclic pattern; every third example masks its prompt.
func lmData(n, vocab int, seed uint64) sliceData {
	r := NewRNG(seed)
	var out sliceData
	for i := range n {
		l := 2 + r.Intn(14)
		ex := engine.Example{Label: -1, Tokens: make([]int32, l)}
		ex.Tokens[0] = int32(r.Intn(vocab))
		for j := 1; j < l; j++ {
			next := (int(ex.Tokens[j-1]) + 1) % vocab
			if r.Intn(5) == 0 {
				next = r.Intn(vocab)
			}
			ex.Tokens[j] = int32(next)
		}
		if i%3 == 0 {
			ex.LossMask = make([]bool, l)
			for j := l / 2; j < l; j++ {
				ex.LossMask[j] = true
			}
		}
		out = append(out, ex)
	}
	return out
}
