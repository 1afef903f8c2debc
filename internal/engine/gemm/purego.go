//go:build purego || !cgo

package gemm

// New returns the build's default GEMM (gonum here; threads is ignored,
// gonum uses GOMAXPROCS goroutines with a fixed block partition).
func New(threads int) GEMM { return NewGonum() }

// Info describes the GEMM backend for the engine version string. Like the
// OpenBLAS build's, it names no thread or core count: gonum computes each
// output block in one goroutine, so the sums do not depend on them.
func Info() string {
	return "gonum(pure go)"
}
