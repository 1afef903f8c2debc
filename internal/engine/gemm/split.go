package gemm

import (
	"fmt"
	"sync"
)

// Split runs an inner (single-threaded) GEMM on Workers goroutines with a
// fixed partition: rows of C when m ≥ n, columns otherwise, in contiguous
// blocks whose bounds depend only on the shape. Each element of C is still
// summed by one call in the inner GEMM's order, so results do not depend on
// scheduling. Products below MinWork multiply-adds run on one goroutine.
type Split struct {
	Inner   GEMM
	Workers int
	MinWork int // default 1<<18
}

var _ GEMM = Split{}

// Name implements GEMM.
func (s Split) Name() string { return fmt.Sprintf("%s/split%d", s.Inner.Name(), s.Workers) }

func (s Split) parts(m, n, k int) int {
	w, min := s.Workers, s.MinWork
	if min == 0 {
		min = 1 << 18
	}
	if w < 1 || m*n*k < min {
		return 1
	}
	return w
}

// Sgemm implements GEMM.
func (s Split) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	check(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	split(s.parts(m, n, k), transA, transB, m, n, k, a, lda, b, ldb, c, ldc,
		func(m, n, k int, a, b, c []float32) {
			s.Inner.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		})
}

// Dgemm implements GEMM.
func (s Split) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	check(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	split(s.parts(m, n, k), transA, transB, m, n, k, a, lda, b, ldb, c, ldc,
		func(m, n, k int, a, b, c []float64) {
			s.Inner.Dgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		})
}

// split calls part on each block of C. For a row block [lo, hi) A is offset
// by rows (or columns when transposed); for a column block, B is.
func split[T float32 | float64](w int, transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int, part func(m, n, k int, a, b, c []T)) {
	if w <= 1 || (m < 2*w && n < 2*w) {
		part(m, n, k, a, b, c)
		return
	}
	byRows := m >= n
	total := n
	if byRows {
		total = m
	}
	var wg sync.WaitGroup
	run := func(lo, hi int) {
		if hi <= lo {
			return
		}
		if byRows {
			aOff := lo * lda
			if transA {
				aOff = lo
			}
			part(hi-lo, n, k, a[aOff:], b, c[lo*ldc:])
			return
		}
		bOff := lo
		if transB {
			bOff = lo * ldb
		}
		part(m, hi-lo, k, a, b[bOff:], c[lo:])
	}
	for i := 1; i < w; i++ {
		lo, hi := i*total/w, (i+1)*total/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(lo, hi)
		}()
	}
	run(0, total/w)
	wg.Wait()
}

// Serial returns a GEMM that runs each product on the calling goroutine:
// the inner GEMM of a Split, g itself otherwise. Callers that already
// spread independent products over workers use it to avoid nesting.
func Serial(g GEMM) GEMM {
	if s, ok := g.(Split); ok {
		return s.Inner
	}
	return g
}
