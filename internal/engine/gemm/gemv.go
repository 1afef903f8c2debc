//go:build cgo && !purego

package gemm

/*
#include <stdint.h>
#include <immintrin.h>

// tl_has_avx512 reports whether the CPU runs AVX-512F (read once).
static int tl_has_avx512(void) {
	static int has = -1;
	if (has < 0) {
		__builtin_cpu_init();
		has = __builtin_cpu_supports("avx512f") ? 1 : 0;
	}
	return has;
}

// tl_put stores alpha·(the sum of s's lanes) + beta·y into y; beta 0 never
// reads y (BLAS semantics: a NaN there does not propagate).
__attribute__((target("avx512f")))
static inline void tl_put(float *y, float alpha, float beta, __m512 s) {
	float d = _mm512_reduce_add_ps(s);
	*y = beta == 0 ? alpha * d : alpha * d + beta * *y;
}

// tl_sgemv_dot computes y[i·incy] = alpha·Σ_j a[i·lda + j]·x[j] +
// beta·y[i·incy] for i < rows, j < cols: each row's products go to 16
// lanes (lane l sums j ≡ l mod 16 in increasing j, the tail through a
// masked load), then the lanes are added in _mm512_reduce_add_ps's fixed
// tree. Rows are done four at a time (four loads of a per load of x), with
// the same arithmetic per row as one at a time, so a row's bits do not
// depend on rows or on how a caller splits them.
__attribute__((target("avx512f")))
static void tl_sgemv_dot(int64_t rows, int64_t cols, float alpha, const float *a, int64_t lda,
		const float *x, float beta, float *y, int64_t incy) {
	const int64_t full = cols & ~(int64_t)15;
	const __mmask16 tail = (__mmask16)((1u << (cols & 15)) - 1);
	int64_t i = 0;
	for (; i + 4 <= rows; i += 4) {
		const float *a0 = a + i * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
		__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		for (int64_t j = 0; j < full; j += 16) {
			__m512 xv = _mm512_loadu_ps(x + j);
			s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a0 + j), xv, s0);
			s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a1 + j), xv, s1);
			s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a2 + j), xv, s2);
			s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a3 + j), xv, s3);
		}
		if (tail) {
			__m512 xv = _mm512_maskz_loadu_ps(tail, x + full);
			s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a0 + full), xv, s0);
			s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a1 + full), xv, s1);
			s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a2 + full), xv, s2);
			s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a3 + full), xv, s3);
		}
		tl_put(y + i * incy, alpha, beta, s0);
		tl_put(y + (i + 1) * incy, alpha, beta, s1);
		tl_put(y + (i + 2) * incy, alpha, beta, s2);
		tl_put(y + (i + 3) * incy, alpha, beta, s3);
	}
	for (; i < rows; i++) {
		const float *a0 = a + i * lda;
		__m512 s0 = _mm512_setzero_ps();
		for (int64_t j = 0; j < full; j += 16)
			s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a0 + j), _mm512_loadu_ps(x + j), s0);
		if (tail)
			s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a0 + full), _mm512_maskz_loadu_ps(tail, x + full), s0);
		tl_put(y + i * incy, alpha, beta, s0);
	}
}
*/
import "C"

// gemvKernel names the matrix-vector kernel for Info: products with one
// row or column of C whose vector is contiguous and whose matrix is read
// by rows run on our AVX-512 dot kernel where the CPU has AVX-512F
// ("avx512 dot rows"), on OpenBLAS's sgemv otherwise.
func gemvKernel() string {
	if C.tl_has_avx512() == 1 {
		return "gemv=avx512 dot rows"
	}
	return "gemv=openblas"
}

// dotRows computes y[i·incy] = alpha·(row i of a)·x + beta·y[i·incy] for
// rows rows of cols values at stride lda, with x contiguous, on the AVX-512
// kernel. It reports false, touching nothing, where the CPU lacks AVX-512F.
// A decode step is all such products: the kernel reads the matrix at close
// to the memory's speed (OpenBLAS's Haswell sgemv, AVX2, about 1.2–1.5×
// slower on the decoder's shapes here).
func dotRows(rows, cols int, alpha float32, a []float32, lda int, x []float32, beta float32, y []float32, incy int) bool {
	if C.tl_has_avx512() != 1 {
		return false
	}
	C.tl_sgemv_dot(C.int64_t(rows), C.int64_t(cols), C.float(alpha), (*C.float)(&a[0]), C.int64_t(lda),
		(*C.float)(&x[0]), C.float(beta), (*C.float)(&y[0]), C.int64_t(incy))
	return true
}
