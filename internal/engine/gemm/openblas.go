//go:build cgo && !purego

package gemm

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import (
	"fmt"
	"math"
	"strings"
)

// OpenBLAS is the default implementation: cblas_sgemm / cblas_dgemm from the
// system OpenBLAS. OpenBLAS splits a product over rows and columns of C, never
// over k, so each element is summed in the same order whatever the thread
// count; the count is still fixed explicitly and reported by Info.
type OpenBLAS struct{}

var _ GEMM = OpenBLAS{}

// NewOpenBLAS sets OpenBLAS's (process-wide) thread count and returns the
// GEMM. threads < 1 means 1.
func NewOpenBLAS(threads int) OpenBLAS {
	if threads < 1 {
		threads = 1
	}
	C.openblas_set_num_threads(C.int(threads))
	return OpenBLAS{}
}

// New returns the build's default GEMM using threads threads: OpenBLAS
// pinned to one thread per call, split over threads goroutines by Split.
// On a shared machine this beats OpenBLAS's own thread pool, whose idle
// workers spin while the Go side runs element-wise work.
func New(threads int) GEMM {
	ob := NewOpenBLAS(1)
	if threads <= 1 {
		return ob
	}
	return Split{Inner: ob, Workers: threads}
}

// Info describes the GEMM library for the engine version string that run
// keys hash: library configuration and kernel (core) name, and what the bf16
// precision computes on this machine (oneDNN's bf16 matmul, or fp32 where
// the CPU lacks AVX512_BF16). It leaves out
// OpenBLAS's own thread count: the engine pins it to one per call (New), and
// a count read before that pinning named the machine's cores, not the
// arithmetic, so keys differed across machines for the same sums.
func Info() string {
	cfg := strings.TrimSpace(C.GoString(C.openblas_get_config()))
	core := C.GoString(C.openblas_get_corename())
	return fmt.Sprintf("openblas(%s; core=%s) %s %s", cfg, core, gemvKernel(), bf16Info())
}

// NewPrecision returns the GEMM for precision p on threads threads and the
// precision it really computes in: BF16 is oneDNN's bf16 matmul split like
// New where the CPU has AVX512_BF16, and New's FP32 elsewhere (Info says
// which, so the engine version differs where the arithmetic does).
func NewPrecision(threads int, p Precision) (GEMM, Precision) {
	if p != BF16 {
		return New(threads), FP32
	}
	bf, err := NewOneDNN()
	if err != nil {
		return New(threads), FP32
	}
	if threads <= 1 {
		return bf, BF16
	}
	return Split{Inner: bf, Workers: threads}, BF16
}

// Name implements GEMM.
func (OpenBLAS) Name() string { return "openblas" }

func ctrans(t bool) C.enum_CBLAS_TRANSPOSE {
	if t {
		return C.CblasTrans
	}
	return C.CblasNoTrans
}

// fitBLAS panics when a dimension or stride does not fit OpenBLAS's 32-bit
// blasint, which the C.blasint conversions would otherwise silently wrap.
func fitBLAS(m, n, k, lda, ldb, ldc int) {
	if max(m, n, k, lda, ldb, ldc) > math.MaxInt32 {
		panic(fmt.Sprintf("gemm: OpenBLAS takes 32-bit sizes; m=%d n=%d k=%d lda=%d ldb=%d ldc=%d", m, n, k, lda, ldb, ldc))
	}
}

// Sgemm implements GEMM.
func (OpenBLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !work(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	fitBLAS(m, n, k, lda, ldb, ldc)
	if m == 1 || n == 1 {
		sgemv(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	C.cblas_sgemm(C.CblasRowMajor, ctrans(transA), ctrans(transB), C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(&a[0]), C.blasint(lda), (*C.float)(&b[0]), C.blasint(ldb),
		C.float(beta), (*C.float)(&c[0]), C.blasint(ldc))
}

// sgemv computes a product with one row (m == 1) or one column (n == 1)
// of C as a matrix-vector product: OpenBLAS's sgemm packs both operands
// first, which for the decoder's one-token attention products (1×T·T×hd)
// costs more than the product; sgemv reads the matrix once, in an order
// fixed by the shape like sgemm's.
//
// Where the matrix is read by rows (each element of C one dot product of a
// stored row) and the vector is contiguous, dotRows computes it instead.
func sgemv(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 1 { // cᵀ = alpha·op(B)ᵀ·aᵀ + beta·cᵀ, x = the row of op(A)
		incx := 1
		if transA {
			incx = lda
		}
		if transB && (incx == 1 || k == 1) && dotRows(n, k, alpha, b, ldb, a, beta, c, 1) {
			return
		}
		rows, cols, tr := k, n, C.enum_CBLAS_TRANSPOSE(C.CblasTrans) // B stored k×n
		if transB {
			rows, cols, tr = n, k, C.CblasNoTrans // B stored n×k
		}
		C.cblas_sgemv(C.CblasRowMajor, tr, C.blasint(rows), C.blasint(cols), C.float(alpha), (*C.float)(&b[0]), C.blasint(ldb),
			(*C.float)(&a[0]), C.blasint(incx), C.float(beta), (*C.float)(&c[0]), 1)
		return
	}
	// n == 1: c = alpha·op(A)·x + beta·c, x = the column of op(B), c at stride ldc.
	incx := ldb
	if transB {
		incx = 1
	}
	if !transA && (incx == 1 || k == 1) && dotRows(m, k, alpha, a, lda, b, beta, c, ldc) {
		return
	}
	rows, cols, tr := m, k, C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans) // A stored m×k
	if transA {
		rows, cols, tr = k, m, C.CblasTrans // A stored k×m
	}
	C.cblas_sgemv(C.CblasRowMajor, tr, C.blasint(rows), C.blasint(cols), C.float(alpha), (*C.float)(&a[0]), C.blasint(lda),
		(*C.float)(&b[0]), C.blasint(incx), C.float(beta), (*C.float)(&c[0]), C.blasint(ldc))
}

// Dgemm implements GEMM.
func (OpenBLAS) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if !work(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	fitBLAS(m, n, k, lda, ldb, ldc)
	C.cblas_dgemm(C.CblasRowMajor, ctrans(transA), ctrans(transB), C.blasint(m), C.blasint(n), C.blasint(k),
		C.double(alpha), (*C.double)(&a[0]), C.blasint(lda), (*C.double)(&b[0]), C.blasint(ldb),
		C.double(beta), (*C.double)(&c[0]), C.blasint(ldc))
}
