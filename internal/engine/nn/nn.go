// Package nn holds the engine's layers with explicit forward and backward
// passes: Linear (with optional bias and LoRA), Embedding, RMSNorm,
// LayerNorm, RoPE, causal self-attention with grouped-query heads, SwiGLU
// and GELU MLPs, and softmax cross-entropy.
//
// Layers are generic over float32 (training and serving) and float64
// (gradient checks). Every matrix product goes through gemm.GEMM; all other
// work is split over a fixed number of workers with a fixed partition, and
// every reduction runs in a fixed order, so results never depend on
// goroutine scheduling. Layers keep the small buffers their backward needs
// and grow them only when a larger batch arrives, so a steady training loop
// allocates nothing in the hot path.
//
// Conventions: activations are row-major [rows, features] with rows =
// batch × sequence; weights use Hugging Face layouts; Backward adds into
// parameter gradients (nil gradient = frozen, nothing computed) and either
// overwrites or adds into the input gradient as the caller asks.
//
// From Tailor it imports only engine, engine/gemm and errs. The cgo build
// adds a vectorised C exp kernel that gives the same bits as the Go one.
package nn

import (
	"sync"
	"unsafe"

	"github.com/tailor-ml/tailor/internal/engine/gemm"
)

// Float is the element type of a layer.
type Float interface{ ~float32 | ~float64 }

// Runtime carries what every layer call needs: the GEMM backend and the
// number of workers for element-wise work.
type Runtime struct {
	GEMM    gemm.GEMM
	Workers int // < 1 means 1
	// NoGrad marks forward passes that no backward pass follows
	// (inference): layers may then skip what only Backward reads (the
	// SwiGLU's sigmoids). Backward after a NoGrad forward is invalid.
	NoGrad bool
}

// Parallel runs fn over [0, n) split into Workers contiguous ranges of
// (nearly) equal size. The partition depends only on n and Workers; fn must
// write disjoint outputs for disjoint ranges.
func (rt *Runtime) Parallel(n int, fn func(lo, hi int)) {
	w := rt.Workers
	if w > n {
		w = n
	}
	if w <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for i := 1; i < w; i++ {
		lo, hi := i*n/w, (i+1)*n/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	fn(0, n/w)
	wg.Wait()
}

func is32[T Float]() bool {
	var z T
	return unsafe.Sizeof(z) == 4
}

func as32[T Float](s []T) []float32 {
	// #nosec G103 -- used only where T is float32 (is32 checks the size), so the layout is identical
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

func as64[T Float](s []T) []float64 {
	// #nosec G103 -- used only where T is float64, so the layout is identical
	return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// MatMul is the generic entry to the GEMM: C = alpha·op(A)·op(B) + beta·C,
// row-major.
func MatMul[T Float](g gemm.GEMM, tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if is32[T]() {
		g.Sgemm(tA, tB, m, n, k, float32(alpha), as32(a), lda, as32(b), ldb, float32(beta), as32(c), ldc)
		return
	}
	g.Dgemm(tA, tB, m, n, k, float64(alpha), as64(a), lda, as64(b), ldb, float64(beta), as64(c), ldc)
}

// grow returns s resized to n, reusing its storage when it is large enough.
// The contents are unspecified.
func grow[T Float](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

func zero[T Float](s []T) {
	for i := range s {
		s[i] = 0
	}
}
