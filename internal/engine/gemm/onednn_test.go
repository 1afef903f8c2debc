//go:build cgo && !purego

package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// roundBF16 rounds to the nearest bfloat16, ties to even (finite inputs).
func roundBF16(x float32) float32 {
	b := math.Float32bits(x)
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

func needBF16(t testing.TB) OneDNN {
	o, err := NewOneDNN()
	if err != nil {
		t.Skipf("no native bf16 here: %v", err)
	}
	return o
}

// TestOneDNNAgainstNaive: the bf16 product equals the float64 product of
// the bf16-rounded inputs up to float32 accumulation error (products of two
// bf16 values are exact in float32), and differs from the float32 product
// of the unrounded inputs, so the inputs really were rounded; a
// matrix-vector product equals the fp32 one instead.
func TestOneDNNAgainstNaive(t *testing.T) {
	o := needBF16(t)
	r := rand.New(rand.NewPCG(11, 12))
	for _, g := range []GEMM{o, Split{Inner: o, Workers: 2, MinWork: 1}} {
		for _, s := range shapes() {
			t.Run(g.Name()+"/"+s.name, func(t *testing.T) {
				lda, ldb, ldc, la, lb, lc := dims(s)
				a, b, c := to32(randSlice(r, la)), to32(randSlice(r, lb)), to32(randSlice(r, lc))
				ar, br := make([]float64, la), make([]float64, lb)
				for i, v := range a {
					ar[i] = float64(roundBF16(v))
				}
				for i, v := range b {
					br[i] = float64(roundBF16(v))
				}
				want := make([]float64, lc)
				for i, v := range c {
					want[i] = float64(v)
				}
				Naive{}.Dgemm(s.tA, s.tB, s.m, s.n, s.k, s.alpha, ar, lda, br, ldb, s.beta, want, ldc)
				got := append([]float32(nil), c...)
				g.Sgemm(s.tA, s.tB, s.m, s.n, s.k, float32(s.alpha), a, lda, b, ldb, float32(s.beta), got, ldc)
				fp32 := append([]float32(nil), c...)
				Naive{}.Sgemm(s.tA, s.tB, s.m, s.n, s.k, float32(s.alpha), a, lda, b, ldb, float32(s.beta), fp32, ldc)
				maxFP32, vector := 0.0, s.m == 1 || s.n == 1
				for i := range want {
					if d := math.Abs(float64(got[i]) - want[i]); !vector && d > 2e-6*float64(s.k+1) {
						t.Fatalf("elem %d: got %g want %g (bf16 inputs, float64 sums)", i, got[i], want[i])
					}
					maxFP32 = max(maxFP32, math.Abs(float64(got[i]-fp32[i])))
				}
				if !vector && s.k >= 5 && s.m*s.n > 0 && maxFP32 < 1e-4 {
					t.Fatalf("bf16 result within %g of the fp32 product: inputs were not rounded", maxFP32)
				}
				if vector && maxFP32 > 1e-5*float64(s.k+1) {
					t.Fatalf("matrix-vector product %g from fp32: it should stay fp32", maxFP32)
				}
			})
		}
	}
}

func TestOneDNNDeterministic(t *testing.T) {
	o := needBF16(t)
	r := rand.New(rand.NewPCG(3, 4))
	m, n, k := 256, 192, 320
	a, b := to32(randSlice(r, m*k)), to32(randSlice(r, k*n))
	for _, g := range []GEMM{o, Split{Inner: o, Workers: 2}} {
		first := make([]float32, m*n)
		g.Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, first, n)
		for rep := 0; rep < 3; rep++ {
			c := make([]float32, m*n)
			g.Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
			for i := range c {
				if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
					t.Fatalf("%s rep %d elem %d differs: %g vs %g", g.Name(), rep, i, c[i], first[i])
				}
			}
		}
	}
}

func TestNewPrecision(t *testing.T) {
	_, native := NewOneDNN()
	for _, tc := range []struct {
		p, want Precision
	}{{FP32, FP32}, {BF16, BF16}} {
		want := tc.want
		if native != nil {
			want = FP32
		}
		g, got := NewPrecision(2, tc.p)
		if got != want {
			t.Errorf("NewPrecision(%s) computes in %s, want %s", tc.p, got, want)
		}
		if (got == BF16) != (Serial(g).Name() == "onednn-bf16") {
			t.Errorf("NewPrecision(%s) gave %s for precision %s", tc.p, g.Name(), got)
		}
	}
}

func BenchmarkBF16(b *testing.B) {
	type sh struct {
		name    string
		tA, tB  bool
		m, n, k int
	}
	for _, s := range []sh{{"sq1024", false, false, 1024, 1024, 1024}, {"ffn_fwd", false, true, 1024, 1024, 256},
		{"lmhead_fwd", false, true, 1024, 4096, 256}, {"dW_ffn", true, false, 1024, 256, 1024},
		{"qkv_fused_fwd", false, true, 1024, 768, 256}, {"gateup_fused_fwd", false, true, 1024, 2048, 256},
		{"attn_scores", false, true, 128, 128, 64}, {"attn_ctx", false, false, 128, 64, 128}} {
		for _, p := range []Precision{FP32, BF16} {
			b.Run(fmt.Sprintf("%s/%s", s.name, p), func(b *testing.B) {
				g, got := NewPrecision(1, p)
				if got != p {
					b.Skip("no native bf16")
				}
				r := rand.New(rand.NewPCG(5, 6))
				x, y := to32(randSlice(r, s.m*s.k)), to32(randSlice(r, s.k*s.n))
				c := make([]float32, s.m*s.n)
				lda, ldb := s.k, s.n
				if s.tA {
					lda = s.m
				}
				if s.tB {
					ldb = s.k
				}
				g.Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, c, s.n)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					g.Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, c, s.n)
				}
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
			})
		}
	}
}

// TestOneDNNConcurrent runs one shape from several goroutines at once (as
// Split does) and requires every result to match the serial one bit for
// bit: executions of one primitive must not share intermediate storage.
func TestOneDNNConcurrent(t *testing.T) {
	o := needBF16(t)
	r := rand.New(rand.NewPCG(7, 8))
	m, n, k := 65, 70, 257
	a, b := to32(randSlice(r, m*k)), to32(randSlice(r, k*n))
	want := make([]float32, m*n)
	o.Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, want, n)
	const workers, reps = 4, 25
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			c := make([]float32, m*n)
			for rep := 0; rep < reps; rep++ {
				o.Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
						errc <- fmt.Errorf("rep %d elem %d: %g, serial %g", rep, i, c[i], want[i])
						return
					}
				}
			}
			errc <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}
