package nn

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
)

// newStack builds parts (every part with in inputs, outs[i] outputs, LoRA of
// rank ranks[i]) whose weights, biases and gradients lie in shared arrays,
// and the Stack over them.
func newStack(r *rand.Rand, in int, outs, ranks []int, bias bool) (*Stack[float64], []*Linear[float64]) {
	total := 0
	for _, o := range outs {
		total += o
	}
	w, dw := randn(r, total*in, 0.3), make([]float64, total*in)
	b, db := randn(r, total, 0.3), make([]float64, total)
	var parts []*Linear[float64]
	off := 0
	for i, o := range outs {
		l := newLinear(r, in, o, false, false, ranks[i], 0)
		l.W, l.DW = w[off*in:(off+o)*in], dw[off*in:(off+o)*in]
		if bias {
			l.B, l.DB = b[off:off+o], db[off:off+o]
		}
		parts = append(parts, l)
		off += o
	}
	s, err := NewStack(parts...)
	if err != nil {
		panic(err)
	}
	return s, parts
}

func TestStackGrad(t *testing.T) {
	for _, c := range []struct {
		name  string
		outs  []int
		ranks []int
		bias  bool
	}{
		{"plain", []int{3, 5}, []int{0, 0}, false},
		{"bias_lora", []int{4, 2, 2}, []int{2, 0, 3}, true},
	} {
		lc := layerCase{c.name, func(r *rand.Rand) (func() float64, func(), []tensor) {
			rt := testRT()
			const m, in = 5, 6
			s, parts := newStack(r, in, c.outs, c.ranks, c.bias)
			x, dx, R, y := randn(r, m*in, 1), make([]float64, m*in), randn(r, m*s.Out, 1), make([]float64, m*s.Out)
			ts := []tensor{{"x", x, dx}}
			for _, p := range parts {
				ts = append(ts, linearTensors(p)...)
			}
			return func() float64 { s.Forward(rt, x, m, y); return dot(y, R) },
				func() { zeroAll(ts); s.Forward(rt, x, m, y); s.Backward(rt, x, m, R, dx, false) }, ts
		}}
		t.Run(c.name, func(t *testing.T) { checkGrads(t, lc) })
	}
}

// TestStackMatchesParts checks a stack's output columns against each part
// run on its own (float32, the engine's precision).
func TestStackMatchesParts(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s64, parts64 := newStack(r, 8, []int{6, 4, 4}, []int{2, 0, 2}, true)
	conv := func(x []float64) []float32 {
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = float32(v)
		}
		return out
	}
	w, b := conv(s64.W), conv(s64.B)
	var parts []*Linear[float32]
	off := 0
	for _, p := range parts64 {
		l := &Linear[float32]{In: p.In, Out: p.Out, W: w[off*p.In : (off+p.Out)*p.In], B: b[off : off+p.Out]}
		if p.LoRA != nil {
			l.LoRA = &LoRA[float32]{Rank: p.LoRA.Rank, Scale: 2, A: conv(p.LoRA.A), B: conv(p.LoRA.B)}
		}
		parts = append(parts, l)
		off += p.Out
	}
	s, err := NewStack(parts...)
	if err != nil {
		t.Fatal(err)
	}
	rt := testRT()
	const m = 7
	x := conv(randn(r, m*8, 1))
	y := make([]float32, m*s.Out)
	s.Forward(rt, x, m, y)
	off = 0
	for i, p := range parts {
		want := make([]float32, m*p.Out)
		p.Forward(rt, x, m, want)
		for row := 0; row < m; row++ {
			for j := 0; j < p.Out; j++ {
				if got, w := y[row*s.Out+off+j], want[row*p.Out+j]; math.Abs(float64(got-w)) > 1e-5 {
					t.Fatalf("part %d row %d column %d: stack %g, part alone %g", i, row, j, got, w)
				}
			}
		}
		off += p.Out
	}
}

func TestNewStackRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	adjacent := func() []*Linear[float64] {
		_, parts := newStack(r, 4, []int{2, 3}, []int{0, 0}, true)
		return parts
	}
	for _, c := range []struct {
		name  string
		parts func() []*Linear[float64]
		want  string
	}{
		{"none", func() []*Linear[float64] { return nil }, "no parts"},
		{"separate arrays", func() []*Linear[float64] {
			p := adjacent()
			p[1].W = append([]float64(nil), p[1].W...)
			return p
		}, "part 1 does not follow part 0"},
		{"other input width", func() []*Linear[float64] {
			p := adjacent()
			p[1].In = 5
			return p
		}, "part 1 has 5 inputs"},
		{"one bias", func() []*Linear[float64] {
			p := adjacent()
			p[1].B, p[1].DB = nil, nil
			return p
		}, "bias or gradients"},
		{"transposed", func() []*Linear[float64] {
			p := adjacent()
			p[0].Transposed = true
			return p
		}, "transposed"},
		{"swapped order", func() []*Linear[float64] {
			p := adjacent()
			return []*Linear[float64]{p[1], p[0]}
		}, "part 0's array holds"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewStack(c.parts()...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewStack: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestSiLUGLUKernelsAgree checks the build's SwiGLU kernel against the Go
// one bit for bit, strided, with and without the sigmoid output.
func TestSiLUGLUKernelsAgree(t *testing.T) {
	const rows, cols, ldin, ldout = 9, 37, 80, 40
	r := rand.New(rand.NewPCG(8, 9))
	gu := make([]float32, rows*ldin)
	for i := range gu {
		gu[i] = float32(r.NormFloat64() * 6)
	}
	gu[0], gu[1], gu[2] = 100, -100, float32(math.Inf(-1))
	for _, withSig := range []bool{true, false} {
		var s1, s2 []float32
		if withSig {
			s1, s2 = make([]float32, rows*ldout), make([]float32, rows*ldout)
		}
		a1, a2 := make([]float32, rows*ldout), make([]float32, rows*ldout)
		siluGLU32(gu, gu[cols:], ldin, s1, a1, ldout, rows, cols)
		siluGLUGo(gu, gu[cols:], ldin, s2, a2, ldout, rows, cols)
		for i := range a1 {
			if math.Float32bits(a1[i]) != math.Float32bits(a2[i]) || (withSig && math.Float32bits(s1[i]) != math.Float32bits(s2[i])) {
				t.Fatalf("sig=%v element %d: kernel %g (σ %v), Go %g (σ %v)", withSig, i, a1[i], s1, a2[i], s2)
			}
		}
		if a1[0] != 100*gu[cols] || math.Abs(float64(a1[1])) > 1e-30 {
			t.Fatalf("silu(100)·up and silu(-100)·up: %g, %g; want 100·up = %g and about 0", a1[0], a1[1], 100*gu[cols])
		}
	}
}

// TestStackedLayersGrad checks attention with q|k|v and SwiGLU with gate|up
// each computed as one Stack product.
func TestStackedLayersGrad(t *testing.T) {
	attn := layerCase{"attention", func(r *rand.Rand) (func() float64, func(), []tensor) {
		rt := testRT()
		const batch, seq, hd, heads, kvHeads = 2, 5, 4, 4, 2
		d, kd := heads*hd, kvHeads*hd
		a := &SelfAttention[float64]{Heads: heads, KVHeads: kvHeads, HeadDim: hd}
		var parts []*Linear[float64]
		a.Fused, parts = newStack(r, d, []int{d, kd, kd}, []int{2, 0, 3}, true)
		a.Q, a.K, a.V = parts[0], parts[1], parts[2]
		a.O = newLinear(r, d, d, false, false, 2, 0)
		var err error
		if a.Rope, err = NewRoPE[float64](hd, seq, 10000, engine.RopeScaling{}); err != nil {
			panic(err)
		}
		m := batch * seq
		x, dx, R, y := randn(r, m*d, 1), make([]float64, m*d), randn(r, m*d, 1), make([]float64, m*d)
		ts := []tensor{{"x", x, dx}}
		for _, l := range append(parts, a.O) {
			ts = append(ts, linearTensors(l)...)
		}
		return func() float64 { a.Forward(rt, x, batch, seq, y); return dot(y, R) },
			func() { zeroAll(ts); a.Forward(rt, x, batch, seq, y); a.Backward(rt, x, R, dx, false) }, ts
	}}
	mlp := layerCase{"swiglu", func(r *rand.Rand) (func() float64, func(), []tensor) {
		rt := testRT()
		const m, d, f = 4, 6, 10
		p := &MLP[float64]{Act: SiLU, Down: newLinear(r, f, d, false, false, 0, 0)}
		var parts []*Linear[float64]
		p.GateUp, parts = newStack(r, d, []int{f, f}, []int{2, 0}, false)
		p.Gate, p.Up = parts[0], parts[1]
		x, dx, R, y := randn(r, m*d, 1), make([]float64, m*d), randn(r, m*d, 1), make([]float64, m*d)
		ts := []tensor{{"x", x, dx}}
		for _, l := range []*Linear[float64]{p.Gate, p.Up, p.Down} {
			ts = append(ts, linearTensors(l)...)
		}
		return func() float64 { p.Forward(rt, x, m, y); return dot(y, R) },
			func() { zeroAll(ts); p.Forward(rt, x, m, y); p.Backward(rt, x, R, dx, false) }, ts
	}}
	for _, c := range []layerCase{attn, mlp} {
		t.Run(c.name, func(t *testing.T) { checkGrads(t, c) })
	}
}

// TestSoftmaxKernelsAgree checks the build's causal softmax kernel against
// the Go one bit for bit and both against a float64 softmax.
func TestSoftmaxKernelsAgree(t *testing.T) {
	for _, c := range []struct{ rows, n0, length int }{{1, 1, 1}, {5, 1, 5}, {64, 65, 128}, {3, 15, 40}, {2, 17, 33}} {
		r := rand.New(rand.NewPCG(uint64(c.rows), uint64(c.n0)))
		p := make([]float32, c.rows*c.length)
		for i := range p {
			p[i] = float32(r.NormFloat64() * 10)
		}
		a, b := append([]float32(nil), p...), append([]float32(nil), p...)
		softmaxRows32(a, c.length, c.rows, c.n0, c.length)
		softmaxRowsGo(b, c.length, c.rows, c.n0, c.length)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("%+v element %d: kernel %g, Go %g", c, i, a[i], b[i])
			}
		}
		for row := 0; row < c.rows; row++ {
			n, x := c.n0+row, p[row*c.length:(row+1)*c.length]
			mx := math.Inf(-1)
			for _, v := range x[:n] {
				mx = math.Max(mx, float64(v))
			}
			var sum float64
			for _, v := range x[:n] {
				sum += math.Exp(float64(v) - mx)
			}
			for j := range x {
				want := 0.0
				if j < n {
					want = math.Exp(float64(x[j])-mx) / sum
				}
				if got := float64(a[row*c.length+j]); math.Abs(got-want) > 1e-6 {
					t.Fatalf("%+v row %d column %d: %g, want %g", c, row, j, got, want)
				}
			}
		}
	}
}

// TestRMSNormKernelsAgree checks the build's RMSNorm kernel against the Go
// one bit for bit, with and without the residual sum, and against float64.
func TestRMSNormKernelsAgree(t *testing.T) {
	const eps = 1e-5
	for _, c := range []struct{ rows, d int }{{1, 1}, {3, 7}, {5, 64}, {4, 250}} {
		for _, withRes := range []bool{false, true} {
			r := rand.New(rand.NewPCG(uint64(c.rows), uint64(c.d)))
			n := c.rows * c.d
			rnd := func(k int) []float32 {
				s := make([]float32, k)
				for i := range s {
					s[i] = float32(r.NormFloat64())
				}
				return s
			}
			x, w := rnd(n), rnd(c.d)
			var res, s1, s2 []float32
			if withRes {
				res, s1, s2 = rnd(n), make([]float32, n), make([]float32, n)
			}
			y1, y2, r1, r2 := make([]float32, n), make([]float32, n), make([]float32, c.rows), make([]float32, c.rows)
			rmsNormRows32(x, res, s1, w, y1, r1, c.rows, c.d, eps)
			rmsNormRowsGo(x, res, s2, w, y2, r2, c.rows, c.d, eps)
			for i := range y1 {
				if math.Float32bits(y1[i]) != math.Float32bits(y2[i]) || withRes && s1[i] != s2[i] {
					t.Fatalf("%+v res=%v element %d: kernel %g, Go %g", c, withRes, i, y1[i], y2[i])
				}
			}
			for row := 0; row < c.rows; row++ {
				var ss float64
				v := func(j int) float64 {
					if withRes {
						return float64(x[row*c.d+j] + res[row*c.d+j])
					}
					return float64(x[row*c.d+j])
				}
				for j := 0; j < c.d; j++ {
					ss += v(j) * v(j)
				}
				rs := 1 / math.Sqrt(ss/float64(c.d)+eps)
				for j := 0; j < c.d; j++ {
					if want, got := v(j)*rs*float64(w[j]), float64(y1[row*c.d+j]); math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
						t.Fatalf("%+v res=%v row %d column %d: %g, want %g", c, withRes, row, j, got, want)
					}
				}
			}
		}
	}
}

// TestRoPEKernelsAgree checks the build's RoPE kernel against the Go one
// bit for bit, both directions, and against the generic float64 rotation.
func TestRoPEKernelsAgree(t *testing.T) {
	const rows, heads, hd, ld, maxPos = 6, 3, 8, 30, 10
	r64, err := NewRoPE[float64](hd, maxPos, 10000, engine.RopeScaling{})
	if err != nil {
		t.Fatal(err)
	}
	r32, err := NewRoPE[float32](hd, maxPos, 10000, engine.RopeScaling{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 2))
	pos := []int32{0, 3, 9, 1, 1, 7}
	for _, inverse := range []bool{false, true} {
		x := make([]float32, rows*ld)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		a, b := append([]float32(nil), x...), append([]float32(nil), x...)
		ropeRows32(a, ld, rows, heads, hd/2, r32.cos, r32.sin, pos, inverse)
		ropeRowsGo(b, ld, rows, heads, hd/2, r32.cos, r32.sin, pos, inverse)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("inverse=%v element %d: kernel %g, Go %g", inverse, i, a[i], b[i])
			}
		}
		for row, p := range pos { // the float64 layer, one row at a time
			want := make([]float64, ld)
			for j := range want {
				want[j] = float64(x[row*ld+j])
			}
			r64.Apply(testRT(), want, 1, 1, heads, ld, int(p), inverse)
			for j := range want {
				if got := float64(a[row*ld+j]); math.Abs(got-want[j]) > 1e-5 {
					t.Fatalf("inverse=%v row %d column %d: %g, want %g", inverse, row, j, got, want[j])
				}
			}
		}
	}
}
