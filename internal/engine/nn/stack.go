package nn

import "github.com/tailor-ml/tailor/internal/errs"

// Stack computes several Linear layers over the same input as one product
// (Llama's q|k|v projections, SwiGLU's gate|up): their weights lie back to
// back in one array, so W is [Σ Out, In] and y[m, Σ Out] holds the parts'
// outputs side by side in part order. One product instead of one per part
// reads (and, in bf16, rounds) the input once and gives the GEMM a wider
// operand. Each part keeps its own LoRA, applied to its own columns.
//
// Build it with NewStack from parts whose W (and DW, B, DB when present)
// are adjacent sub-slices of one array; the parts stay usable on their own
// (the decoder and LoRA export use them).
type Stack[T Float] struct {
	Parts        []*Linear[T]
	In, Out      int // Out is the sum of the parts' Out
	W, B, DW, DB []T
}

// NewStack checks that the parts share In, are untransposed, agree on
// having a bias and gradients, and that each of W, DW, B, DB is one array
// laid out part after part; it returns the stack over those arrays.
func NewStack[T Float](parts ...*Linear[T]) (*Stack[T], error) {
	if len(parts) == 0 {
		return nil, errs.Invalid("stack: no parts")
	}
	s := &Stack[T]{Parts: parts, In: parts[0].In}
	for i, p := range parts {
		switch {
		case p.In != s.In:
			return nil, errs.Invalid("stack: part %d has %d inputs, part 0 has %d", i, p.In, s.In)
		case p.Transposed:
			return nil, errs.Invalid("stack: part %d is transposed", i)
		case (p.B == nil) != (parts[0].B == nil), (p.DW == nil) != (parts[0].DW == nil), (p.DB == nil) != (parts[0].DB == nil):
			return nil, errs.Invalid("stack: part %d differs from part 0 in bias or gradients", i)
		}
		s.Out += p.Out
	}
	var err error
	pick := func(get func(*Linear[T]) []T, per func(*Linear[T]) int) []T {
		if err != nil || get(parts[0]) == nil {
			return nil
		}
		all, off := get(parts[0]), 0
		total := 0
		for _, p := range parts {
			total += per(p)
		}
		if cap(all) < total {
			err = errs.Invalid("stack: part 0's array holds %d values, the stack needs %d", cap(all), total)
			return nil
		}
		all = all[:total]
		for i, p := range parts {
			n, got := per(p), get(p)
			if len(got) != n || n > 0 && &got[0] != &all[off] { // the same element: the same array, in place
				err = errs.Invalid("stack: part %d does not follow part %d in one array", i, i-1)
				return nil
			}
			off += n
		}
		return all
	}
	weights := func(p *Linear[T]) int { return p.Out * p.In }
	outs := func(p *Linear[T]) int { return p.Out }
	s.W = pick(func(p *Linear[T]) []T { return p.W }, weights)
	s.DW = pick(func(p *Linear[T]) []T { return p.DW }, weights)
	s.B = pick(func(p *Linear[T]) []T { return p.B }, outs)
	s.DB = pick(func(p *Linear[T]) []T { return p.DB }, outs)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Forward computes y[m, Out] (parts side by side) from x[m, In]; y is
// overwritten.
func (s *Stack[T]) Forward(rt *Runtime, x []T, m int, y []T) {
	MatMul(rt.GEMM, false, true, m, s.Out, s.In, 1, x, s.In, s.W, s.In, 0, y, s.Out)
	if s.B != nil {
		rt.Parallel(m, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row := y[i*s.Out : (i+1)*s.Out]
				for j, b := range s.B[:len(row)] {
					row[j] += b
				}
			}
		})
	}
	off := 0
	for _, p := range s.Parts {
		if p.LoRA != nil {
			p.LoRA.forward(rt, p.In, p.Out, x, m, y[off:], s.Out)
		}
		off += p.Out
	}
}

// Backward takes the same x as Forward and dy[m, Out]; it adds into the
// parts' weight, bias and LoRA gradients and writes dx[m, In] (adds into
// it when accumulate). dx may be nil.
func (s *Stack[T]) Backward(rt *Runtime, x []T, m int, dy, dx []T, accumulate bool) {
	g := rt.GEMM
	if s.DW != nil {
		MatMul(g, true, false, s.Out, s.In, m, 1, dy, s.Out, x, s.In, 1, s.DW, s.In)
	}
	if s.DB != nil {
		db := s.DB[:s.Out]
		rt.Parallel(s.Out, func(lo, hi int) {
			for i := 0; i < m; i++ {
				row := dy[i*s.Out+lo : i*s.Out+hi]
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
		MatMul(g, false, false, m, s.In, s.Out, 1, dy, s.Out, s.W, s.In, beta, dx, s.In)
	}
	off := 0
	for _, p := range s.Parts {
		if p.LoRA != nil {
			p.LoRA.backward(rt, p.In, p.Out, m, dy[off:], s.Out, dx)
		}
		off += p.Out
	}
}
