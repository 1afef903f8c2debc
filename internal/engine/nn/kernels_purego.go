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
