//go:build cgo && !purego

package nn

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
#pragma GCC optimize("fp-contract=off")
#include <math.h>
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

// Causal softmax over rows: row r of p (stride ld) is normalised over its
// first n0 + r entries and zeroed up to len. The maximum, exp and the sum
// in 16 lanes (lane j takes elements j, j+16, ...; the lanes are then
// added in order) are the same operations in the same order as
// softmaxRowsGo.
__attribute__((target_clones("avx512f", "avx2", "default")))
void tl_softmax_rows(float *p, long ld, long rows, long n0, long len) {
	for (long r = 0; r < rows; r++) {
		float *x = p + r * ld;
		long n = n0 + r;
		float mx = x[0];
		for (long i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
		float acc[16] = {0};
		long i = 0;
		for (; i + 16 <= n; i += 16) {
			for (int j = 0; j < 16; j++) {
				float e = tl_exp1(x[i + j] - mx);
				x[i + j] = e;
				acc[j] += e;
			}
		}
		for (int j = 0; i + j < n; j++) {
			float e = tl_exp1(x[i + j] - mx);
			x[i + j] = e;
			acc[j] += e;
		}
		float sum = 0;
		for (int j = 0; j < 16; j++) sum += acc[j];
		float inv = 1.0f / sum;
		for (long k = 0; k < n; k++) x[k] *= inv;
		for (long k = n; k < len; k++) x[k] = 0;
	}
}

// RMSNorm over rows of d values: with res not NULL, sum = x + res is
// written first and normalised; ss is summed in 16 lanes (as the softmax),
// r = 1/sqrt(ss/d + eps) in double, y = v·r·w. The same operations in the
// same order as rmsNormRowsGo.
__attribute__((target_clones("avx512f", "avx2", "default")))
void tl_rmsnorm_rows(const float *x, const float *res, float *sum, const float *w, float *y, float *rstd,
		long rows, long d, double eps) {
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * d;
		if (res) {
			const float *rr = res + r * d;
			float *sr = sum + r * d;
			for (long i = 0; i < d; i++) sr[i] = xr[i] + rr[i];
			xr = sr;
		}
		float acc[16] = {0};
		long i = 0;
		for (; i + 16 <= d; i += 16)
			for (int j = 0; j < 16; j++) acc[j] += xr[i + j] * xr[i + j];
		for (int j = 0; i + j < d; j++) acc[j] += xr[i + j] * xr[i + j];
		float ss = 0;
		for (int j = 0; j < 16; j++) ss += acc[j];
		float rs = (float)(1.0 / sqrt((double)ss / (double)d + eps));
		rstd[r] = rs;
		float *yr = y + r * d;
		for (long k = 0; k < d; k++) yr[k] = xr[k] * rs * w[k];
	}
}

// RoPE over rows: row r (stride ld) holds heads heads of 2·half values at
// position pos[r]; each head's (x1, x2) halves are rotated by that
// position's cos and sin, forward (x1·c − x2·s, x2·c + x1·s) or inverse.
// The same operations in the same order as ropeRowsGo.
__attribute__((target_clones("avx512f", "avx2", "default")))
void tl_rope_rows(float *x, long ld, long rows, long heads, long half, const float *cos, const float *sin,
		const int32_t *pos, int inverse) {
	for (long r = 0; r < rows; r++) {
		const float *c = cos + (long)pos[r] * half, *s = sin + (long)pos[r] * half;
		for (long h = 0; h < heads; h++) {
			float *x1 = x + r * ld + h * 2 * half, *x2 = x1 + half;
			if (inverse) {
				for (long i = 0; i < half; i++) {
					float a = x1[i], b = x2[i];
					x1[i] = a * c[i] + b * s[i];
					x2[i] = b * c[i] - a * s[i];
				}
			} else {
				for (long i = 0; i < half; i++) {
					float a = x1[i], b = x2[i];
					x1[i] = a * c[i] - b * s[i];
					x2[i] = b * c[i] + a * s[i];
				}
			}
		}
	}
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

// softmaxRows32 is the vectorised C version of softmaxRowsGo (identical bits).
func softmaxRows32(p []float32, ld, rows, n0, length int) {
	if rows == 0 {
		return
	}
	checkSoftmax(len(p), ld, rows, n0, length)
	C.tl_softmax_rows((*C.float)(unsafe.Pointer(&p[0])), C.long(ld), C.long(rows), C.long(n0), C.long(length))
}

// rmsNormRows32 is the vectorised C version of rmsNormRowsGo (identical bits).
func rmsNormRows32(x, res, sum, w, y, rstd []float32, rows, d int, eps float64) {
	if rows == 0 || d == 0 {
		return
	}
	checkNorm(len(x), len(res), len(sum), len(w), len(y), len(rstd), rows, d)
	var rp, sp *C.float
	if res != nil {
		rp, sp = (*C.float)(unsafe.Pointer(&res[0])), (*C.float)(unsafe.Pointer(&sum[0]))
	}
	C.tl_rmsnorm_rows((*C.float)(unsafe.Pointer(&x[0])), rp, sp, (*C.float)(unsafe.Pointer(&w[0])),
		(*C.float)(unsafe.Pointer(&y[0])), (*C.float)(unsafe.Pointer(&rstd[0])), C.long(rows), C.long(d), C.double(eps))
}

// ropeRows32 is the vectorised C version of ropeRowsGo (identical bits).
func ropeRows32(x []float32, ld, rows, heads, half int, cos, sin []float32, pos []int32, inverse bool) {
	if rows == 0 || heads == 0 || half == 0 {
		return
	}
	checkRope(len(x), ld, rows, heads, half, len(cos), len(sin), pos)
	inv := C.int(0)
	if inverse {
		inv = 1
	}
	C.tl_rope_rows((*C.float)(unsafe.Pointer(&x[0])), C.long(ld), C.long(rows), C.long(heads), C.long(half),
		(*C.float)(unsafe.Pointer(&cos[0])), (*C.float)(unsafe.Pointer(&sin[0])), (*C.int32_t)(unsafe.Pointer(&pos[0])), inv)
}
