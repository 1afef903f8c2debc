//go:build cgo && !purego

package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkDecodeShapes times the decode step's weight products for 8 rows
// (the benchmark model's ffn and attention projections) in both forms, x·Wᵀ
// (rows) and W·xᵀ (the weight as the tall operand), per precision.
func BenchmarkDecodeShapes(b *testing.B) {
	for _, sh := range []struct{ out, in int }{{1024, 256}, {256, 1024}, {256, 256}, {4096, 256}} {
		for _, form := range []string{"xWt", "Wxt"} {
			for _, p := range []Precision{FP32, BF16} {
				b.Run(fmt.Sprintf("%dx%d/%s/%s", sh.out, sh.in, form, p), func(b *testing.B) {
					g, got := NewPrecision(1, p)
					if got != p {
						b.Skip("no native bf16")
					}
					r := rand.New(rand.NewPCG(5, 6))
					w, x := to32(randSlice(r, sh.out*sh.in)), to32(randSlice(r, 8*sh.in))
					y := make([]float32, 8*sh.out)
					run := func() {
						if form == "xWt" {
							g.Sgemm(false, true, 8, sh.out, sh.in, 1, x, sh.in, w, sh.in, 0, y, sh.out)
						} else {
							g.Sgemm(false, true, sh.out, 8, sh.in, 1, w, sh.in, x, sh.in, 0, y, 8)
						}
					}
					run()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						run()
					}
					b.ReportMetric(2*8*float64(sh.out*sh.in)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
				})
			}
		}
	}
}
