//go:build cgo && !purego

package gemm

import "testing"

// BenchmarkShapes compares OpenBLAS's own threading with Split over
// single-threaded OpenBLAS on the benchmark model's shapes.
func BenchmarkShapes(b *testing.B) { benchmarkShapes(b) }
