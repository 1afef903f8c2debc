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
// and Down; with a GELU it uses Up (c_fc) and Down (c_proj) only.
type MLP[T Float] struct {
	Act            Activation
	Gate, Up, Down *Linear[T]

	m                   int
	gate, up, act, dact []T
	sig                 []T // sigmoid(gate), kept for backward
	dgate, dup          []T
}

// Forward computes y[m, Down.Out] from x[m, Up.In].
func (p *MLP[T]) Forward(rt *Runtime, x []T, m int, y []T) {
	f := p.Up.Out
	p.m = m
	p.up, p.act = grow(p.up, m*f), grow(p.act, m*f)
	p.Up.Forward(rt, x, m, p.up)
	if p.Act == SiLU {
		p.gate, p.sig = grow(p.gate, m*f), grow(p.sig, m*f)
		p.Gate.Forward(rt, x, m, p.gate)
	}
	rt.Parallel(m, func(lo, hi int) {
		a, b := lo*f, hi*f
		switch p.Act {
		case SiLU:
			siluGLU(p.gate[a:b], p.up[a:b], p.sig[a:b], p.act[a:b])
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
	p.dact, p.dup = grow(p.dact, m*f), grow(p.dup, m*f)
	p.Down.Backward(rt, p.act, m, dy, p.dact, false)
	if p.Act == SiLU {
		p.dgate = grow(p.dgate, m*f)
	}
	rt.Parallel(m, func(lo, hi int) {
		a, b := lo*f, hi*f
		dact, dup := p.dact[a:b], p.dup[a:b]
		switch p.Act {
		case SiLU:
			gate, up, sig, dgate := p.gate[a:b], p.up[a:b], p.sig[a:b], p.dgate[a:b]
			for i, d := range dact {
				g, s := gate[i], sig[i]
				dup[i] = d * g * s
				dgate[i] = d * up[i] * s * (1 + g*(1-s))
			}
		case GELUTanh:
			for i, x := range p.up[a:b] {
				_, dv := geluTanh(x)
				dup[i] = dact[i] * dv
			}
		default:
			for i, x := range p.up[a:b] {
				_, dv := geluErf(x)
				dup[i] = dact[i] * dv
			}
		}
	})
	p.Up.Backward(rt, x, m, p.dup, dx, accumulate)
	if p.Act == SiLU {
		p.Gate.Backward(rt, x, m, p.dgate, dx, dx != nil)
	}
}

// siluGLU writes sig = σ(gate) and act = gate·σ(gate)·up.
func siluGLU[T Float](gate, up, sig, act []T) {
	n := len(gate)
	up, sig, act = up[:n], sig[:n], act[:n]
	for i, g := range gate {
		sig[i] = -g
	}
	expInPlace(sig)
	for i, g := range gate {
		s := 1 / (1 + sig[i])
		sig[i] = s
		act[i] = g * s * up[i]
	}
}

// SiLUMul writes act = silu(gate)·up, SwiGLU's product, over len(gate),
// with the vectorised exp the layers use (the decoder calls it; training
// keeps the sigmoid for the backward pass in siluGLU). act must not alias
// gate or up.
func SiLUMul[T Float](gate, up, act []T) {
	n := len(gate)
	up, act = up[:n], act[:n]
	for i, g := range gate {
		act[i] = -g
	}
	expInPlace(act)
	for i, g := range gate {
		act[i] = g / (1 + act[i]) * up[i]
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
