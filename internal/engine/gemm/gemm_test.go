package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

func backends() []GEMM { return []GEMM{New(2), NewGonum()} }

func randSlice(r *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = r.Float64()*2 - 1
	}
	return s
}

func to32(s []float64) []float32 {
	o := make([]float32, len(s))
	for i, v := range s {
		o[i] = float32(v)
	}
	return o
}

type shape struct {
	name           string
	tA, tB         bool
	m, n, k        int
	padA, padB, pc int // extra stride beyond the minimum
	alpha, beta    float64
}

func shapes() []shape {
	return []shape{
		{"nn_small", false, false, 3, 4, 5, 0, 0, 0, 1, 0},
		{"tn", true, false, 7, 5, 9, 1, 2, 3, 0.5, 1},
		{"nt", false, true, 17, 33, 8, 0, 1, 0, 2, -0.5},
		{"tt", true, true, 9, 11, 13, 2, 0, 1, 1, 0.25},
		{"big_nn", false, false, 130, 70, 257, 0, 0, 0, 1, 1},
		{"k0", false, false, 4, 4, 0, 0, 0, 0, 1, 0.5},
		{"row_nt", false, true, 1, 37, 16, 0, 3, 0, 0.5, 0},
		{"row_nn", false, false, 1, 16, 37, 0, 2, 1, 1, 1},
		{"row_tt", true, true, 1, 9, 12, 2, 1, 0, 1, 0.5},
		{"col_nn", false, false, 23, 1, 11, 1, 2, 3, 2, 0},
		{"col_tn", true, false, 23, 1, 11, 0, 0, 2, 1, 1},
		{"col_nt", false, true, 5, 1, 7, 2, 1, 0, 1, -1},
		{"empty", false, false, 0, 4, 3, 0, 0, 0, 1, 0},
	}
}

func dims(s shape) (lda, ldb, ldc, la, lb, lc int) {
	ac, ar := s.k, s.m
	if s.tA {
		ac, ar = s.m, s.k
	}
	bc, br := s.n, s.k
	if s.tB {
		bc, br = s.k, s.n
	}
	lda, ldb, ldc = ac+s.padA, bc+s.padB, s.n+s.pc
	return lda, ldb, ldc, max(ar*lda, 1), max(br*ldb, 1), max(s.m*ldc, 1)
}

func TestAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, g := range backends() {
		for _, s := range shapes() {
			t.Run(g.Name()+"/"+s.name, func(t *testing.T) {
				lda, ldb, ldc, la, lb, lc := dims(s)
				a, b, c := randSlice(r, la), randSlice(r, lb), randSlice(r, lc)
				want := append([]float64(nil), c...)
				Naive{}.Dgemm(s.tA, s.tB, s.m, s.n, s.k, s.alpha, a, lda, b, ldb, s.beta, want, ldc)
				got := append([]float64(nil), c...)
				g.Dgemm(s.tA, s.tB, s.m, s.n, s.k, s.alpha, a, lda, b, ldb, s.beta, got, ldc)
				for i := range want {
					if math.Abs(got[i]-want[i]) > 1e-12*float64(s.k+1) {
						t.Fatalf("dgemm elem %d: got %g want %g", i, got[i], want[i])
					}
				}
				want32, got32 := to32(c), to32(c)
				Naive{}.Sgemm(s.tA, s.tB, s.m, s.n, s.k, float32(s.alpha), to32(a), lda, to32(b), ldb, float32(s.beta), want32, ldc)
				g.Sgemm(s.tA, s.tB, s.m, s.n, s.k, float32(s.alpha), to32(a), lda, to32(b), ldb, float32(s.beta), got32, ldc)
				for i := range want32 {
					if d := math.Abs(float64(got32[i] - want32[i])); d > 1e-5*float64(s.k+1) {
						t.Fatalf("sgemm elem %d: got %g want %g", i, got32[i], want32[i])
					}
				}
			})
		}
	}
}

// TestDeterministic checks that repeated products give identical bits.
func TestDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m, n, k := 256, 192, 320
	a, b := to32(randSlice(r, m*k)), to32(randSlice(r, k*n))
	for _, g := range backends() {
		t.Run(g.Name(), func(t *testing.T) {
			first := make([]float32, m*n)
			g.Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, first, n)
			for rep := 0; rep < 5; rep++ {
				c := make([]float32, m*n)
				g.Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(first[i]) {
						t.Fatalf("rep %d elem %d differs: %g vs %g", rep, i, c[i], first[i])
					}
				}
			}
		})
	}
}

func TestShortSlicePanics(t *testing.T) {
	for _, g := range backends() {
		t.Run(g.Name(), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("expected panic for short A")
				}
			}()
			g.Sgemm(false, false, 4, 4, 4, 1, make([]float32, 15), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4)
		})
	}
}

// TestInfo: the engine version names the library and kernel but no
// thread count, which would change run keys across machines (and before or
// after the pool is pinned) for the same arithmetic.
func TestInfo(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	before := Info()
	New(4)
	runtime.GOMAXPROCS(3)
	after := Info()
	if before == "" || before != after || strings.Contains(before, "threads") {
		t.Fatalf("Info before pinning %q, after %q: want one non-empty string without a thread count", before, after)
	}
	t.Log(before)
}

func BenchmarkSgemm(b *testing.B) {
	for _, size := range []int{256, 512, 1024} {
		for _, g := range backends() {
			b.Run(fmt.Sprintf("%s/%d", g.Name(), size), func(b *testing.B) {
				r := rand.New(rand.NewPCG(5, 6))
				x, y := to32(randSlice(r, size*size)), to32(randSlice(r, size*size))
				c := make([]float32, size*size)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					g.Sgemm(false, false, size, size, size, 1, x, size, y, size, 0, c, size)
				}
				flops := 2 * float64(size) * float64(size) * float64(size) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
			})
		}
	}
}

func TestSplitMatchesInner(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, s := range shapes() {
		t.Run(s.name, func(t *testing.T) {
			lda, ldb, ldc, la, lb, lc := dims(s)
			a, b, c := to32(randSlice(r, la)), to32(randSlice(r, lb)), to32(randSlice(r, lc))
			for _, w := range []int{2, 3, 5} {
				sp := Split{Inner: Naive{}, Workers: w, MinWork: 1}
				want, got := append([]float32(nil), c...), append([]float32(nil), c...)
				Naive{}.Sgemm(s.tA, s.tB, s.m, s.n, s.k, float32(s.alpha), a, lda, b, ldb, float32(s.beta), want, ldc)
				sp.Sgemm(s.tA, s.tB, s.m, s.n, s.k, float32(s.alpha), a, lda, b, ldb, float32(s.beta), got, ldc)
				for i := range want {
					if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
						t.Fatalf("workers %d elem %d: %g vs %g", w, i, got[i], want[i])
					}
				}
			}
		})
	}
}
