//go:build purego || !cgo

package nn

// expInPlace32 is the pure-Go kernel in this build.
func expInPlace32(xs []float32) { expInPlaceGo(xs) }

// siluGLU32 is the pure-Go kernel in this build.
func siluGLU32(gate, up []float32, ldin int, sig, act []float32, ldout, rows, cols int) {
	if rows == 0 || cols == 0 {
		return
	}
	checkGLU(len(gate), len(up), ldin, len(sig), len(act), ldout, rows, cols)
	siluGLUGo(gate, up, ldin, sig, act, ldout, rows, cols)
}

// softmaxRows32 is the pure-Go kernel in this build.
func softmaxRows32(p []float32, ld, rows, n0, length int) {
	if rows == 0 {
		return
	}
	checkSoftmax(len(p), ld, rows, n0, length)
	softmaxRowsGo(p, ld, rows, n0, length)
}

// rmsNormRows32 is the pure-Go kernel in this build.
func rmsNormRows32(x, res, sum, w, y, rstd []float32, rows, d int, eps float64) {
	if rows == 0 || d == 0 {
		return
	}
	checkNorm(len(x), len(res), len(sum), len(w), len(y), len(rstd), rows, d)
	rmsNormRowsGo(x, res, sum, w, y, rstd, rows, d, eps)
}

// ropeRows32 is the pure-Go kernel in this build.
func ropeRows32(x []float32, ld, rows, heads, half int, cos, sin []float32, pos []int32, inverse bool) {
	if rows == 0 || heads == 0 || half == 0 {
		return
	}
	checkRope(len(x), ld, rows, heads, half, len(cos), len(sin), pos)
	ropeRowsGo(x, ld, rows, heads, half, cos, sin, pos, inverse)
}
