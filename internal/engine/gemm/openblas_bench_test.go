//go:build cgo && !purego

package gemm

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkShapes compares OpenBLAS's own threading with Split over
// single-threaded OpenBLAS on the benchmark model's shapes.
func BenchmarkShapes(b *testing.B) { benchmarkShapes(b) }

func benchmarkShapes(b *testing.B) {
	type sh struct {
		name    string
		tA, tB  bool
		m, n, k int
	}
	shapes := []sh{{"qkv_fwd", false, true, 1024, 256, 256}, {"ffn_fwd", false, true, 1024, 1024, 256},
		{"lmhead_fwd", false, true, 1024, 4096, 256}, {"dW_ffn", true, false, 1024, 256, 1024}, {"attn", false, true, 128, 128, 64}}
	for _, s := range shapes {
		for _, name := range []string{"threaded", "split"} {
			b.Run(s.name+"/"+name, func(b *testing.B) {
				var g GEMM = NewOpenBLAS(2) // OpenBLAS's own 2 threads
				if name == "split" {
					g = Split{Inner: NewOpenBLAS(1), Workers: 2}
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
