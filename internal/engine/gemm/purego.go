//go:build purego || !cgo

package gemm

// New returns the build's default GEMM (gonum here; threads is ignored,
// gonum uses GOMAXPROCS goroutines with a fixed block partition).
func New(threads int) GEMM { return NewGonum() }

// Info describes the GEMM backend for the engine version string. Like the
// OpenBLAS build's, it names no thread or core count: gonum computes each
// output block in one goroutine, so the sums do not depend on them.
func Info() string {
	return "gonum(pure go) bf16=fp32 (pure go)"
}

// NewPrecision returns New(threads) and FP32: the pure-Go build has no
// bf16 matrix product, so every precision computes in fp32.
func NewPrecision(threads int, _ Precision) (GEMM, Precision) { return New(threads), FP32 }
