//go:build purego || !cgo

package nn

// expInPlace32 is the pure-Go kernel in this build.
func expInPlace32(xs []float32) { expInPlaceGo(xs) }
