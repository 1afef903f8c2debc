package nn

import (
	"math"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Activation names an MLP's non-linearity as config.json spells it.
type Activation string

// Supported activations.
const (
	SiLU     Activation = "silu"     // SwiGLU: down(silu(gate(x)) · up(x))
	GELUTanh Activation = "gelu_new" // down(gelu_tanh(up(x)))
	GELUErf  Activation = "gelu"     // down(gelu_erf(up(x)))
)

// ParseActivation validates a config.json activation name.
func ParseActivation(s string) (Activation, error) {
	switch Activation(s) {
	case SiLU, GELUTanh, GELUErf:
		return Activation(s), nil
	case "gelu_pytorch_tanh", "gelu_fast":
		return GELUTanh, nil
	}
	return "", errs.Invalid("activation %q not supported (use silu, gelu_new or gelu)", s)
}

// MLP is the feed-forward block. With SiLU it is SwiGLU and uses Gate, Up
// and Down; with a GELU it uses Up (c_fc) and Down (c_proj) only. GateUp,
// when set, is a Stack over Gate and Up (which stay set) that computes both
// in one product: each row then holds gate | up.
type MLP[T Float] struct {
	Act            Activation
	Gate, Up, Down *Linear[T]
	GateUp         *Stack[T]

	m                   int
	gate, up, act, dact []T // gate and up are views into gu when GateUp is set
	gu, dgu             []T
	ld                  int // row stride of gate, up, dgate and dup
	sig                 []T // sigmoid(gate), kept for backward
	dgate, dup          []T
}

// Forward computes y[m, Down.Out] from x[m, Up.In].
func (p *MLP[T]) Forward(rt *Runtime, x []T, m int, y []T) {
	f := p.Up.Out
	p.m, p.ld = m, f
	p.act = grow(p.act, m*f)
	switch {
	case p.Act == SiLU && p.GateUp != nil:
		p.ld = 2 * f
		p.gu, p.sig = grow(p.gu, m*2*f), grow(p.sig, m*f)
		p.GateUp.Forward(rt, x, m, p.gu)
		p.gate, p.up = p.gu, p.gu[f:]
	case p.Act == SiLU:
		p.up, p.gate, p.sig = grow(p.up, m*f), grow(p.gate, m*f), grow(p.sig, m*f)
		p.Up.Forward(rt, x, m, p.up)
		p.Gate.Forward(rt, x, m, p.gate)
	default:
		p.up = grow(p.up, m*f)
		p.Up.Forward(rt, x, m, p.up)
	}
	rt.Parallel(m, func(lo, hi int) {
		a, b := lo*f, hi*f
		switch p.Act {
		case SiLU:
			var sig []T
			if !rt.NoGrad {
				sig = p.sig[a:b]
			}
			siluGLU(p.gate[lo*p.ld:], p.up[lo*p.ld:], p.ld, sig, p.act[a:b], f, hi-lo, f)
		case GELUTanh:
			for i, x := range p.up[a:b] {
				p.act[a+i], _ = geluTanh(x)
			}
		default:
			for i, x := range p.up[a:b] {
				p.act[a+i], _ = geluErf(x)
			}
		}
	})
	p.Down.Forward(rt, p.act, m, y)
}

// Backward takes the same x as Forward and dy; it writes (or adds into, when
// accumulate) dx and adds parameter gradients.
func (p *MLP[T]) Backward(rt *Runtime, x []T, dy, dx []T, accumulate bool) {
	m, f := p.m, p.Up.Out
	p.dact = grow(p.dact, m*f)
	p.Down.Backward(rt, p.act, m, dy, p.dact, false)
	switch {
	case p.Act == SiLU && p.GateUp != nil:
		p.dgu = grow(p.dgu, m*2*f)
		p.dgate, p.dup = p.dgu, p.dgu[f:]
	case p.Act == SiLU:
		p.dgate, p.dup = grow(p.dgate, m*f), grow(p.dup, m*f)
	default:
		p.dup = grow(p.dup, m*f)
	}
	rt.Parallel(m, func(lo, hi int) {
		a, b := lo*f, hi*f
		dact := p.dact[a:b]
		switch p.Act {
		case SiLU:
			for r := lo; r < hi; r++ {
				o := r * p.ld
				gate, up, dgate, dup := p.gate[o:o+f], p.up[o:o+f], p.dgate[o:o+f], p.dup[o:o+f]
				sig, da := p.sig[r*f:(r+1)*f], p.dact[r*f:(r+1)*f]
				for i, d := range da {
					g, s := gate[i], sig[i]
					dup[i] = d * g * s
					dgate[i] = d * up[i] * s * (1 + g*(1-s))
				}
			}
		case GELUTanh:
			dup := p.dup[a:b]
			for i, x := range p.up[a:b] {
				_, dv := geluTanh(x)
				dup[i] = dact[i] * dv
			}
		default:
			dup := p.dup[a:b]
			for i, x := range p.up[a:b] {
				_, dv := geluErf(x)
				dup[i] = dact[i] * dv
			}
		}
	})
	if p.Act == SiLU && p.GateUp != nil {
		p.GateUp.Backward(rt, x, m, p.dgu, dx, accumulate)
		return
	}
	p.Up.Backward(rt, x, m, p.dup, dx, accumulate)
	if p.Act == SiLU {
		p.Gate.Backward(rt, x, m, p.dgate, dx, dx != nil)
	}
}

// siluGLU writes sig = σ(gate) (unless sig is nil) and act =
// gate·σ(gate)·up over rows rows of cols values; gate and up have row
// stride ldin, sig and act ldout.
func siluGLU[T Float](gate, up []T, ldin int, sig, act []T, ldout, rows, cols int) {
	if is32[T]() {
		siluGLU32(as32(gate), as32(up), ldin, as32(sig), as32(act), ldout, rows, cols)
		return
	}
	for r := 0; r < rows; r++ {
		g, u, a := gate[r*ldin:r*ldin+cols], up[r*ldin:r*ldin+cols], act[r*ldout:r*ldout+cols]
		var s []T
		if sig != nil {
			s = sig[r*ldout : r*ldout+cols]
		}
		for i, x := range g {
			e := 1 / (1 + T(math.Exp(-float64(x))))
			if sig != nil {
				s[i] = e
			}
			a[i] = x * e * u[i]
		}
	}
}

// SiLUMul writes act = silu(gate)·up, SwiGLU's product, over len(gate),
// with the vectorised exp the layers use (the decoder calls it; training
// keeps the sigmoid for the backward pass in siluGLU). act must not alias
// gate or up.
func SiLUMul[T Float](gate, up, act []T) {
	n := len(gate)
	if is32[T]() {
		siluGLU32(as32(gate), as32(up), n, nil, as32(act), n, 1, n)
		return
	}
	up, act = up[:n], act[:n]
	for i, g := range gate {
		act[i] = g / (1 + T(math.Exp(-float64(g)))) * up[i]
	}
}

// geluTanh returns gelu_new(x) and its derivative.
func geluTanh[T Float](x T) (T, T) {
	const c = 0.7978845608028654 // sqrt(2/pi)
	u := T(c) * (x + T(0.044715)*x*x*x)
	t := 1 - 2/(expT(2*u)+1) // tanh(u)
	y := T(0.5) * x * (1 + t)
	d := T(0.5)*(1+t) + T(0.5)*x*(1-t*t)*T(c)*(1+3*T(0.044715)*x*x)
	return y, d
}

// geluErf returns gelu(x) = x·Φ(x) and its derivative.
func geluErf[T Float](x T) (T, T) {
	xf := float64(x)
	cdf := 0.5 * (1 + math.Erf(xf/math.Sqrt2))
	pdf := math.Exp(-0.5*xf*xf) / math.Sqrt(2*math.Pi)
	return T(xf * cdf), T(cdf + xf*pdf)
}
