//go:build cgo && !purego

package nn

/*
#cgo CFLAGS: -O3
#pragma GCC optimize("fp-contract=off")
#include <stdint.h>
#include <string.h>

// The same operations, in the same order, as exp32 in mathx.go; no FMA
// contraction, so every clone (and the Go version) gives the same bits.
static inline float tl_exp1(float x) {
	if (x > 88.3762626647949f) x = 88.3762626647949f;
	if (x < -87.3365447504f) x = -87.3365447504f;
	float t = x * 1.44269504088896341f + 12582912.0f;
	int32_t n;
	memcpy(&n, &t, 4);
	n -= 0x4B400000;
	float fn = t - 12582912.0f;
	float r = x - fn * 0.693359375f - fn * -2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	uint32_t b = (uint32_t)(n + 127) << 23;
	float s;
	memcpy(&s, &b, 4);
	return (p * r * r + r + 1.0f) * s;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void tl_exp_inplace(float *x, long n) {
	for (long i = 0; i < n; i++) x[i] = tl_exp1(x[i]);
}

// SwiGLU over rows: s = 1/(1+exp(-g)), act = g·s·up, sig = s (when not
// NULL); the same operations in the same order as siluGLUGo.
__attribute__((target_clones("avx512f", "avx2", "default")))
void tl_silu_glu(const float *g, const float *u, long ldin, float *sig, float *act, long ldout, long rows, long cols) {
	for (long r = 0; r < rows; r++) {
		const float *gr = g + r * ldin, *ur = u + r * ldin;
		float *ar = act + r * ldout;
		if (sig) {
			float *sr = sig + r * ldout;
			for (long i = 0; i < cols; i++) {
				float s = 1.0f / (1.0f + tl_exp1(-gr[i]));
				sr[i] = s;
				ar[i] = gr[i] * s * ur[i];
			}
		} else {
			for (long i = 0; i < cols; i++) {
				float s = 1.0f / (1.0f + tl_exp1(-gr[i]));
				ar[i] = gr[i] * s * ur[i];
			}
		}
	}
}
*/
import "C"

import "unsafe"

// expInPlace32 is the vectorised C version of expInPlaceGo (identical bits).
func expInPlace32(xs []float32) {
	if len(xs) == 0 {
		return
	}
	C.tl_exp_inplace((*C.float)(unsafe.Pointer(&xs[0])), C.long(len(xs)))
}

// siluGLU32 is the vectorised C version of siluGLUGo (identical bits).
func siluGLU32(gate, up []float32, ldin int, sig, act []float32, ldout, rows, cols int) {
	if rows == 0 || cols == 0 {
		return
	}
	checkGLU(len(gate), len(up), ldin, len(sig), len(act), ldout, rows, cols)
	var sp *C.float
	if sig != nil {
		sp = (*C.float)(unsafe.Pointer(&sig[0]))
	}
	C.tl_silu_glu((*C.float)(unsafe.Pointer(&gate[0])), (*C.float)(unsafe.Pointer(&up[0])), C.long(ldin), sp,
		(*C.float)(unsafe.Pointer(&act[0])), C.long(ldout), C.long(rows), C.long(cols))
}
