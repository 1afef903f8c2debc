//go:build cgo && !purego

package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestDotRows checks the AVX-512 matrix-vector kernel against float64 sums
// on every tail length and row count around its blocks of 16 columns and
// 4 rows, with padded rows, a strided result, beta 0 over NaN and beta ≠ 0;
// and that a row's bits do not depend on which rows are computed with it.
func TestDotRows(t *testing.T) {
	if gemvKernel() != "gemv=avx512 dot rows" {
		t.Skip("no AVX-512F here: OpenBLAS's sgemv runs every product (TestAgainstNaive covers it)")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, cols := range []int{1, 7, 15, 16, 17, 31, 32, 33, 64, 100} {
		for _, rows := range []int{1, 3, 4, 5, 8, 9} {
			for _, beta := range []float32{0, 0.5} {
				t.Run(fmt.Sprintf("%dx%d/beta=%g", rows, cols, beta), func(t *testing.T) {
					lda, incy := cols+3, 2
					a, x := to32(randSlice(r, rows*lda)), to32(randSlice(r, cols))
					y := to32(randSlice(r, rows*incy))
					if beta == 0 {
						for i := range y {
							y[i] = float32(math.NaN())
						}
					}
					y0 := append([]float32(nil), y...)
					const alpha = 1.5
					if !dotRows(rows, cols, alpha, a, lda, x, beta, y, incy) {
						t.Fatal("dotRows refused on a CPU with AVX-512F")
					}
					for i := 0; i < rows; i++ {
						var want float64
						for j := 0; j < cols; j++ {
							want += float64(a[i*lda+j]) * float64(x[j])
						}
						want *= alpha
						if beta != 0 {
							want += float64(beta) * float64(y0[i*incy])
						}
						if d := math.Abs(float64(y[i*incy]) - want); d > 1e-5*float64(cols+1) {
							t.Fatalf("row %d: %g, want %g", i, y[i*incy], want)
						}
						// The same row alone gives the same bits.
						one := []float32{y0[i*incy]}
						dotRows(1, cols, alpha, a[i*lda:], lda, x, beta, one, 1)
						if math.Float32bits(one[0]) != math.Float32bits(y[i*incy]) {
							t.Fatalf("row %d alone: %g, with the others %g", i, one[0], y[i*incy])
						}
					}
					for i := range y {
						if i%incy != 0 && math.Float32bits(y[i]) != math.Float32bits(y0[i]) {
							t.Fatalf("y[%d] between the strided results changed", i)
						}
					}
				})
			}
		}
	}
}
