//go:build purego || !cgo

package gemm

import (
	"fmt"
	"runtime"
)

// New returns the build's default GEMM (gonum here; threads is ignored,
// gonum uses GOMAXPROCS goroutines with a fixed block partition).
func New(threads int) GEMM { return NewGonum() }

// Info describes the GEMM backend for the engine version string.
func Info() string {
	return fmt.Sprintf("gonum(pure go; GOMAXPROCS=%d)", runtime.GOMAXPROCS(0))
}
