package nn

import "math/rand/v2"

// Linear is y = x·Wᵀ + b (+ LoRA). W is [Out, In] as in torch nn.Linear, or
// [In, Out] when Transposed (GPT-2 Conv1D). Nil DW / DB mean frozen: no
// gradient is computed for them.
type Linear[T Float] struct {
	In, Out    int
	W, B       []T
	DW, DB     []T
	Transposed bool
	LoRA       *LoRA[T]
}

// LoRA is the low-rank update y += Scale · dropout(x)·Aᵀ·Bᵀ with A [Rank, In]
// and B [Out, Rank] (PEFT layout). Dropout is active only while Train is set
// and draws its masks from RNG, which must be seeded by the caller.
type LoRA[T Float] struct {
	Rank    int
	Scale   T // alpha / rank
	Dropout float64
	Train   bool
	RNG     *rand.Rand
	A, B    []T
	DA, DB  []T

	xref                   []T // the input the last forward multiplied by A
	xbuf, mask, h, dh, tmp []T // caches, grown on demand
}

// Forward computes y[m, Out] from x[m, In]. y is overwritten.
func (l *Linear[T]) Forward(rt *Runtime, x []T, m int, y []T) {
	if l.Transposed {
		MatMul(rt.GEMM, false, false, m, l.Out, l.In, 1, x, l.In, l.W, l.Out, 0, y, l.Out)
	} else {
		MatMul(rt.GEMM, false, true, m, l.Out, l.In, 1, x, l.In, l.W, l.In, 0, y, l.Out)
	}
	if l.B != nil {
		rt.Parallel(m, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row := y[i*l.Out : (i+1)*l.Out]
				for j, b := range l.B[:len(row)] {
					row[j] += b
				}
			}
		})
	}
	if l.LoRA != nil {
		l.LoRA.forward(rt, l.In, l.Out, x, m, y, l.Out)
	}
}

// Backward takes the same x as Forward and dy[m, Out]; it adds into DW, DB
// and the LoRA gradients, and writes dx[m, In] (adds into it when
// accumulate). dx may be nil when no input gradient is needed.
func (l *Linear[T]) Backward(rt *Runtime, x []T, m int, dy, dx []T, accumulate bool) {
	g := rt.GEMM
	if l.DW != nil {
		if l.Transposed {
			MatMul(g, true, false, l.In, l.Out, m, 1, x, l.In, dy, l.Out, 1, l.DW, l.Out)
		} else {
			MatMul(g, true, false, l.Out, l.In, m, 1, dy, l.Out, x, l.In, 1, l.DW, l.In)
		}
	}
	if l.DB != nil {
		db := l.DB[:l.Out]
		rt.Parallel(l.Out, func(lo, hi int) {
			for i := 0; i < m; i++ {
				row := dy[i*l.Out+lo : i*l.Out+hi]
				part := db[lo:hi]
				for j, v := range row {
					part[j] += v
				}
			}
		})
	}
	if dx != nil {
		beta := T(0)
		if accumulate {
			beta = 1
		}
		if l.Transposed {
			MatMul(g, false, true, m, l.In, l.Out, 1, dy, l.Out, l.W, l.Out, beta, dx, l.In)
		} else {
			MatMul(g, false, false, m, l.In, l.Out, 1, dy, l.Out, l.W, l.In, beta, dx, l.In)
		}
	}
	if l.LoRA != nil {
		l.LoRA.backward(rt, l.In, l.Out, m, dy, l.Out, dx)
	}
}

// forward adds the update to y[m, out] of row stride ldy.
func (a *LoRA[T]) forward(rt *Runtime, in, out int, x []T, m int, y []T, ldy int) {
	r := a.Rank
	xd := x
	if a.Train && a.Dropout > 0 {
		a.xbuf, a.mask = grow(a.xbuf, m*in), grow(a.mask, m*in)
		keep := T(1 / (1 - a.Dropout))
		// The RNG is consumed sequentially: the mask depends only on the seed.
		for i := range a.mask[:m*in] {
			if a.RNG.Float64() < a.Dropout {
				a.mask[i] = 0
			} else {
				a.mask[i] = keep
			}
		}
		for i, v := range x[:m*in] {
			a.xbuf[i] = v * a.mask[i]
		}
		xd = a.xbuf
	} else {
		a.mask = a.mask[:0]
	}
	a.xref = xd[:m*in]
	a.h = grow(a.h, m*r)
	MatMul(rt.GEMM, false, true, m, r, in, 1, xd, in, a.A, in, 0, a.h, r)
	MatMul(rt.GEMM, false, true, m, out, r, a.Scale, a.h, r, a.B, r, 1, y, ldy)
}

// backward reads dy[m, out] of row stride ldy.
func (a *LoRA[T]) backward(rt *Runtime, in, out, m int, dy []T, ldy int, dx []T) {
	g, r := rt.GEMM, a.Rank
	if a.DB != nil {
		MatMul(g, true, false, out, r, m, a.Scale, dy, ldy, a.h, r, 1, a.DB, r)
	}
	if a.DA == nil && dx == nil {
		return
	}
	a.dh = grow(a.dh, m*r)
	MatMul(g, false, false, m, r, out, a.Scale, dy, ldy, a.B, r, 0, a.dh, r)
	if a.DA != nil {
		MatMul(g, true, false, r, in, m, 1, a.dh, r, a.xref, in, 1, a.DA, in)
	}
	if dx == nil {
		return
	}
	if len(a.mask) == 0 {
		MatMul(g, false, false, m, in, r, 1, a.dh, r, a.A, in, 1, dx, in)
		return
	}
	a.tmp = grow(a.tmp, m*in)
	MatMul(g, false, false, m, in, r, 1, a.dh, r, a.A, in, 0, a.tmp, in)
	for i, v := range a.tmp {
		dx[i] += v * a.mask[i]
	}
}
