package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
)

func testRT() *Runtime { return &Runtime{GEMM: gemm.New(2), Workers: 2} }

func randn(r *rand.Rand, n int, std float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = r.NormFloat64() * std
	}
	return s
}

// tensor is one differentiable input: its values and where backward put
// its analytic gradient.
type tensor struct {
	name       string
	data, grad []float64
}

// layerCase builds a layer in float64. loss runs the forward pass and
// returns L = Σ y·R; grads zeroes the gradients and runs forward+backward.
type layerCase struct {
	name  string
	build func(r *rand.Rand) (loss func() float64, grads func(), ts []tensor)
}

// checkGrads compares every analytic gradient with central differences.
func checkGrads(t *testing.T, c layerCase) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 11))
	loss, grads, ts := c.build(r)
	grads()
	const eps, tol = 1e-6, 1e-6
	for _, tn := range ts {
		idx := r.Perm(len(tn.data))
		if len(idx) > 40 {
			idx = idx[:40]
		}
		for _, i := range idx {
			orig := tn.data[i]
			tn.data[i] = orig + eps
			lp := loss()
			tn.data[i] = orig - eps
			lm := loss()
			tn.data[i] = orig
			num := (lp - lm) / (2 * eps)
			got := tn.grad[i]
			if math.Abs(num-got) > tol*math.Max(1, math.Abs(num)) {
				t.Fatalf("%s[%d]: analytic %.9g numeric %.9g", tn.name, i, got, num)
			}
		}
	}
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func newLinear(r *rand.Rand, in, out int, bias, transposed bool, rank int, dropout float64) *Linear[float64] {
	l := &Linear[float64]{In: in, Out: out, W: randn(r, in*out, 0.3), DW: make([]float64, in*out), Transposed: transposed}
	if bias {
		l.B, l.DB = randn(r, out, 0.3), make([]float64, out)
	}
	if rank > 0 {
		l.LoRA = &LoRA[float64]{Rank: rank, Scale: 2, Dropout: dropout, Train: true,
			A: randn(r, rank*in, 0.3), B: randn(r, out*rank, 0.3), DA: make([]float64, rank*in), DB: make([]float64, out*rank)}
	}
	return l
}

func linearTensors(l *Linear[float64]) []tensor {
	var ts []tensor
	if l.DW != nil {
		ts = append(ts, tensor{"W", l.W, l.DW})
	}
	if l.DB != nil {
		ts = append(ts, tensor{"B", l.B, l.DB})
	}
	if l.LoRA != nil {
		ts = append(ts, tensor{"lora_A", l.LoRA.A, l.LoRA.DA}, tensor{"lora_B", l.LoRA.B, l.LoRA.DB})
	}
	return ts
}

func zeroAll(ts []tensor) {
	for _, t := range ts {
		zero(t.grad)
	}
}

func linearCase(name string, bias, transposed bool, rank int, dropout float64, frozen bool) layerCase {
	return layerCase{name, func(r *rand.Rand) (func() float64, func(), []tensor) {
		rt := testRT()
		const m, in, out = 6, 5, 7
		l := newLinear(r, in, out, bias, transposed, rank, dropout)
		if frozen {
			l.DW, l.DB = nil, nil
		}
		x, dx, R := randn(r, m*in, 1), make([]float64, m*in), randn(r, m*out, 1)
		y := make([]float64, m*out)
		fwd := func() {
			if l.LoRA != nil {
				l.LoRA.RNG = rand.New(rand.NewPCG(3, 3)) // same mask every pass
			}
			l.Forward(rt, x, m, y)
		}
		ts := append(linearTensors(l), tensor{"x", x, dx})
		return func() float64 { fwd(); return dot(y, R) },
			func() { zeroAll(ts); fwd(); l.Backward(rt, x, m, R, dx, false) }, ts
	}}
}

func TestLinearGrad(t *testing.T) {
	for _, c := range []layerCase{
		linearCase("plain", false, false, 0, 0, false),
		linearCase("bias", true, false, 0, 0, false),
		linearCase("conv1d", true, true, 0, 0, false),
		linearCase("lora", false, false, 3, 0, false),
		linearCase("lora_dropout", true, false, 2, 0.3, false),
		linearCase("lora_frozen_base", true, true, 2, 0, true),
	} {
		t.Run(c.name, func(t *testing.T) { checkGrads(t, c) })
	}
}

func TestEmbeddingNormGrad(t *testing.T) {
	const m, d = 5, 8
	cases := []layerCase{
		{"embedding", func(r *rand.Rand) (func() float64, func(), []tensor) {
			e := &Embedding[float64]{Vocab: 4, Dim: d, W: randn(r, 4*d, 1), DW: make([]float64, 4*d)}
			ids := []int32{1, 3, 1, 0, 2}
			y, R := make([]float64, m*d), randn(r, m*d, 1)
			ts := []tensor{{"W", e.W, e.DW}}
			return func() float64 { _ = e.Forward(ids, y); return dot(y, R) },
				func() { zeroAll(ts); _ = e.Forward(ids, y); e.Backward(ids, R) }, ts
		}},
		normCase("rmsnorm", func(r *rand.Rand) (Norm[float64], []tensor) {
			n := &RMSNorm[float64]{Dim: d, Eps: 1e-5, W: randn(r, d, 1), DW: make([]float64, d)}
			return n, []tensor{{"W", n.W, n.DW}}
		}),
		normCase("layernorm", func(r *rand.Rand) (Norm[float64], []tensor) {
			n := &LayerNorm[float64]{Dim: d, Eps: 1e-5, W: randn(r, d, 1), B: randn(r, d, 1), DW: make([]float64, d), DB: make([]float64, d)}
			return n, []tensor{{"W", n.W, n.DW}, {"B", n.B, n.DB}}
		}),
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkGrads(t, c) })
	}
}

func normCase(name string, mk func(r *rand.Rand) (Norm[float64], []tensor)) layerCase {
	return layerCase{name, func(r *rand.Rand) (func() float64, func(), []tensor) {
		rt := testRT()
		const m, d = 5, 8
		n, ts := mk(r)
		x, dx, R, y := randn(r, m*d, 1), make([]float64, m*d), randn(r, m*d, 1), make([]float64, m*d)
		ts = append(ts, tensor{"x", x, dx})
		return func() float64 { n.Forward(rt, x, m, y); return dot(y, R) },
			func() { zeroAll(ts); n.Forward(rt, x, m, y); n.Backward(rt, x, m, R, dx, false) }, ts
	}}
}

func TestRoPEGrad(t *testing.T) {
	c := layerCase{"rope", func(r *rand.Rand) (func() float64, func(), []tensor) {
		rt := testRT()
		const batch, seq, heads, hd = 2, 5, 3, 8
		rope, err := NewRoPE[float64](hd, 16, 10000, engine.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8})
		if err != nil {
			t.Fatal(err)
		}
		n := batch * seq * heads * hd
		x, dx, R, y := randn(r, n, 1), make([]float64, n), randn(r, n, 1), make([]float64, n)
		ts := []tensor{{"x", x, dx}}
		fwd := func() { copy(y, x); rope.Apply(rt, y, batch, seq, heads, heads*hd, 0, false) }
		return func() float64 { fwd(); return dot(y, R) },
			func() { copy(dx, R); rope.Apply(rt, dx, batch, seq, heads, heads*hd, 0, true) }, ts
	}}
	checkGrads(t, c)
}

func attentionCase(name string, heads, kvHeads int, fused, rope bool) layerCase {
	return layerCase{name, func(r *rand.Rand) (func() float64, func(), []tensor) {
		rt := testRT()
		const batch, seq, hd = 2, 5, 4
		d := heads * hd
		a := &SelfAttention[float64]{Heads: heads, KVHeads: kvHeads, HeadDim: hd}
		kd := kvHeads * hd
		if fused {
			a.QKV = newLinear(r, d, d+2*kd, true, true, 2, 0)
			a.O = newLinear(r, d, d, true, true, 0, 0)
		} else {
			a.Q, a.K, a.V = newLinear(r, d, d, true, false, 0, 0), newLinear(r, d, kd, true, false, 2, 0), newLinear(r, d, kd, false, false, 0, 0)
			a.O = newLinear(r, d, d, false, false, 2, 0)
		}
		if rope {
			var err error
			if a.Rope, err = NewRoPE[float64](hd, seq, 10000, engine.RopeScaling{}); err != nil {
				panic(err)
			}
		}
		m := batch * seq
		x, dx, R, y := randn(r, m*d, 1), make([]float64, m*d), randn(r, m*d, 1), make([]float64, m*d)
		var ts []tensor
		for _, l := range []*Linear[float64]{a.Q, a.K, a.V, a.QKV, a.O} {
			if l != nil {
				for _, tn := range linearTensors(l) {
					tn.name = fmt.Sprintf("%p.%s", l, tn.name)
					ts = append(ts, tn)
				}
			}
		}
		ts = append(ts, tensor{"x", x, dx})
		return func() float64 { a.Forward(rt, x, batch, seq, y); return dot(y, R) },
			func() { zeroAll(ts); a.Forward(rt, x, batch, seq, y); a.Backward(rt, x, R, dx, false) }, ts
	}}
}

func TestAttentionGrad(t *testing.T) {
	for _, c := range []layerCase{
		attentionCase("gqa_rope", 4, 2, false, true),
		attentionCase("mha_rope", 2, 2, false, true),
		attentionCase("mqa", 3, 1, false, true),
		attentionCase("fused_learned_pos", 2, 2, true, false),
	} {
		t.Run(c.name, func(t *testing.T) { checkGrads(t, c) })
	}
}

func mlpCase(act Activation) layerCase {
	return layerCase{string(act), func(r *rand.Rand) (func() float64, func(), []tensor) {
		rt := testRT()
		const m, d, f = 4, 6, 10
		p := &MLP[float64]{Act: act, Up: newLinear(r, d, f, act != SiLU, act != SiLU, 2, 0), Down: newLinear(r, f, d, act != SiLU, act != SiLU, 0, 0)}
		if act == SiLU {
			p.Gate = newLinear(r, d, f, false, false, 2, 0)
		}
		x, dx, R, y := randn(r, m*d, 1), make([]float64, m*d), randn(r, m*d, 1), make([]float64, m*d)
		var ts []tensor
		for _, l := range []*Linear[float64]{p.Gate, p.Up, p.Down} {
			if l != nil {
				ts = append(ts, linearTensors(l)...)
			}
		}
		ts = append(ts, tensor{"x", x, dx})
		return func() float64 { p.Forward(rt, x, m, y); return dot(y, R) },
			func() { zeroAll(ts); p.Forward(rt, x, m, y); p.Backward(rt, x, R, dx, false) }, ts
	}}
}

func TestMLPGrad(t *testing.T) {
	for _, act := range []Activation{SiLU, GELUTanh, GELUErf} {
		c := mlpCase(act)
		t.Run(c.name, func(t *testing.T) { checkGrads(t, c) })
	}
}

func TestCrossEntropyGrad(t *testing.T) {
	c := layerCase{"ce", func(r *rand.Rand) (func() float64, func(), []tensor) {
		rt := testRT()
		const m, v = 6, 9
		logits, d := randn(r, m*v, 2), make([]float64, m*v)
		targets := []int32{3, -1, 0, 8, -1, 5}
		rl := make([]float64, m)
		ts := []tensor{{"logits", logits, d}}
		return func() float64 { l, _ := CrossEntropy(rt, logits, m, v, targets, nil, 1, rl); return l },
			func() { CrossEntropy(rt, logits, m, v, targets, d, 1, rl) }, ts
	}}
	checkGrads(t, c)
}

// TestCrossEntropyValues checks loss and count against a direct formula and
// that ignored rows get zero gradient.
func TestCrossEntropyValues(t *testing.T) {
	rt := testRT()
	logits := []float32{1, 2, 3, 0, 0, 0, 5, -5, 0}
	targets := []int32{2, -1, 0}
	d := make([]float32, 9)
	loss, n := CrossEntropy(rt, logits, 3, 3, targets, d, 1, make([]float64, 3))
	want := -math.Log(math.Exp(3)/(math.Exp(1)+math.Exp(2)+math.Exp(3))) - math.Log(math.Exp(5)/(math.Exp(5)+math.Exp(-5)+1))
	if n != 2 || math.Abs(loss-want) > 1e-5 {
		t.Fatalf("loss %g count %d, want %g 2", loss, n, want)
	}
	for _, v := range d[3:6] {
		if v != 0 {
			t.Fatalf("ignored row has gradient %v", d[3:6])
		}
	}
}
