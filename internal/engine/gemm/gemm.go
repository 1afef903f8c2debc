// Package gemm owns the engine's matrix products: one GEMM interface with
// row-major BLAS semantics, an OpenBLAS implementation (cgo, the default), a
// pure-Go implementation on gonum (build tag purego, or cgo disabled) and a
// naive reference used by tests.
//
// Every matrix product in the engine goes through this seam, so a GPU
// backend can be added later behind the same interface. Implementations
// must be deterministic: the same inputs and the same thread count give the
// same bits. This package imports nothing from Tailor.
package gemm

import "fmt"

// GEMM computes C = alpha·op(A)·op(B) + beta·C on row-major matrices, where
// op(X) is X or Xᵀ. op(A) is m×k, op(B) is k×n and C is m×n; lda, ldb and
// ldc are the row strides of A, B and C as stored.
type GEMM interface {
	Name() string
	Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
}

// check panics when the slices are too short for the described matrices;
// a short slice is a programming error and must never reach C code.
// work checks a product's arguments (panicking as check does) and does
// the products with nothing to multiply: none when m or n is 0, C scaled by
// beta when k is 0. It reports whether the caller has the product left.
func work[T float32 | float64](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) bool {
	check(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return false
	}
	if k == 0 {
		scaleC(m, n, beta, c, ldc)
		return false
	}
	return true
}

func check(transA, transB bool, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	need := func(name string, rows, cols, ld, have int) {
		if rows == 0 || cols == 0 {
			return
		}
		if ld < cols {
			panic(fmt.Sprintf("gemm: %s stride %d < %d columns", name, ld, cols))
		}
		if want := (rows-1)*ld + cols; have < want {
			panic(fmt.Sprintf("gemm: %s has %d elements, needs %d (%dx%d, stride %d)", name, have, want, rows, cols, ld))
		}
	}
	need("A", ar, ac, lda, lenA)
	need("B", br, bc, ldb, lenB)
	need("C", m, n, ldc, lenC)
}

// scaleC applies C = beta·C, used when k == 0.
func scaleC[T float32 | float64](m, n int, beta T, c []T, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			if beta == 0 {
				row[j] = 0
			} else {
				row[j] *= beta
			}
		}
	}
}
