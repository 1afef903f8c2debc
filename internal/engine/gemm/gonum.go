package gemm

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Gonum is the pure-Go implementation on gonum's native BLAS. gonum splits
// large products into blocks of C, each summed by one goroutine in a fixed
// order, so results do not depend on scheduling.
type Gonum struct {
	impl gonum.Implementation
}

var _ GEMM = Gonum{}

// NewGonum returns the pure-Go GEMM.
func NewGonum() Gonum { return Gonum{} }

// Name implements GEMM.
func (Gonum) Name() string { return "gonum" }

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// Sgemm implements GEMM.
func (g Gonum) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !work(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	g.impl.Sgemm(trans(transA), trans(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dgemm implements GEMM.
func (g Gonum) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if !work(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	g.impl.Dgemm(trans(transA), trans(transB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
