package train

import (
	"math"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Optimizer updates parameters from their gradients. Its per-parameter state
// lives in named slots so checkpoints can save and restore it exactly.
type Optimizer interface {
	// Name is "adamw" or "sgd"; it is recorded in checkpoints.
	Name() string
	// Step applies one update with learning rate lr. t is the 1-based
	// optimizer step number (AdamW's bias correction uses it).
	Step(params []*engine.Param, lr float64, t int)
	// Slots returns the state arrays, one entry per (slot, parameter), in a
	// fixed order. The returned slices alias the optimizer's memory, so
	// copying into them restores state.
	Slots() []Slot
}

// Slot is one state array of an optimizer for one parameter.
type Slot struct {
	Name  string // slot name, e.g. "exp_avg"
	Param int    // index into the params the optimizer was built for
	Data  []float32
}

// AdamWConfig holds AdamW's hyper-parameters (learning rate comes per step).
type AdamWConfig struct {
	Beta1, Beta2, Eps, WeightDecay float64
}

// AdamW is torch.optim.AdamW (amsgrad=False, maximize=False, the
// single-tensor path of PyTorch 1.13), element for element:
//
//	p   ← p·(1 − lr·wd)
//	m   ← β1·m + (1 − β1)·g
//	v   ← β2·v + (1 − β2)·g²
//	p   ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
//
// Scalars are computed in float64 and elements in float32, as PyTorch does
// for float32 tensors.
type AdamW struct {
	cfg    AdamWConfig
	expAvg [][]float32
	expSq  [][]float32
}

// NewAdamW allocates zeroed moments for params.
func NewAdamW(params []*engine.Param, cfg AdamWConfig) *AdamW {
	a := &AdamW{cfg: cfg}
	for _, p := range params {
		a.expAvg = append(a.expAvg, make([]float32, len(p.Data)))
		a.expSq = append(a.expSq, make([]float32, len(p.Data)))
	}
	return a
}

// Name implements Optimizer.
func (a *AdamW) Name() string { return "adamw" }

// Slots implements Optimizer: exp_avg then exp_avg_sq for each parameter.
func (a *AdamW) Slots() []Slot {
	var out []Slot
	for i := range a.expAvg {
		out = append(out, Slot{Name: "exp_avg", Param: i, Data: a.expAvg[i]},
			Slot{Name: "exp_avg_sq", Param: i, Data: a.expSq[i]})
	}
	return out
}

// Step implements Optimizer.
func (a *AdamW) Step(params []*engine.Param, lr float64, t int) {
	c := a.cfg
	decay := float32(1 - lr*c.WeightDecay)
	b1, ob1 := float32(c.Beta1), float32(1-c.Beta1)
	b2, ob2 := float32(c.Beta2), float32(1-c.Beta2)
	bc1 := 1 - math.Pow(c.Beta1, float64(t))
	bc2 := 1 - math.Pow(c.Beta2, float64(t))
	negStep := float32(-(lr / bc1))
	bc2Sqrt := float32(math.Sqrt(bc2))
	eps := float32(c.Eps)
	for k, p := range params {
		m, v := a.expAvg[k], a.expSq[k]
		for i, g := range p.Grad {
			w := float32(p.Data[i] * decay)
			mi := float32(m[i]*b1) + float32(ob1*g)
			vi := float32(v[i]*b2) + float32(float32(ob2*g)*g)
			denom := float32(float32(math.Sqrt(float64(vi)))/bc2Sqrt) + eps
			m[i], v[i] = mi, vi
			p.Data[i] = w + float32(negStep*float32(mi/denom))
		}
	}
}

// SGDConfig holds SGD's hyper-parameters.
type SGDConfig struct {
	Momentum, WeightDecay float64
}

// SGD is torch.optim.SGD without dampening or Nesterov:
//
//	d ← g + wd·p;  b ← μ·b + d (b = d on the first step);  p ← p − lr·b
//
// With Momentum 0 it keeps no state.
type SGD struct {
	cfg SGDConfig
	buf [][]float32
}

// NewSGD allocates momentum buffers when cfg.Momentum is non-zero.
func NewSGD(params []*engine.Param, cfg SGDConfig) *SGD {
	s := &SGD{cfg: cfg}
	if cfg.Momentum != 0 {
		for _, p := range params {
			s.buf = append(s.buf, make([]float32, len(p.Data)))
		}
	}
	return s
}

// Name implements Optimizer.
func (s *SGD) Name() string { return "sgd" }

// Slots implements Optimizer: momentum_buffer per parameter, if any.
func (s *SGD) Slots() []Slot {
	var out []Slot
	for i, b := range s.buf {
		out = append(out, Slot{Name: "momentum_buffer", Param: i, Data: b})
	}
	return out
}

// Step implements Optimizer.
func (s *SGD) Step(params []*engine.Param, lr float64, t int) {
	wd, mu := float32(s.cfg.WeightDecay), float32(s.cfg.Momentum)
	neg := float32(-lr)
	for k, p := range params {
		for i, g := range p.Grad {
			d := g
			if wd != 0 {
				d = g + float32(wd*p.Data[i])
			}
			if s.buf != nil {
				if t == 1 {
					s.buf[k][i] = d
				} else {
					s.buf[k][i] = float32(mu*s.buf[k][i]) + d
				}
				d = s.buf[k][i]
			}
			p.Data[i] += float32(neg * d)
		}
	}
}

// newOptimizer builds the optimizer Options names.
func newOptimizer(params []*engine.Param, o Options) (Optimizer, error) {
	switch o.Optimizer {
	case "adamw":
		return NewAdamW(params, AdamWConfig{Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: o.WeightDecay}), nil
	case "sgd":
		return NewSGD(params, SGDConfig{Momentum: o.Momentum, WeightDecay: o.WeightDecay}), nil
	}
	return nil, errs.Invalid("option optimizer: unknown %q (use adamw or sgd)", o.Optimizer)
}

// GradNorm returns the global L2 norm of all gradients: squares summed in
// float64, parameter by parameter in order, element by element.
func GradNorm(params []*engine.Param) float64 {
	var sum float64
	for _, p := range params {
		for _, g := range p.Grad {
			sum += float64(g) * float64(g)
		}
	}
	return math.Sqrt(sum)
}

// ClipGradNorm scales all gradients so their global L2 norm is at most
// maxNorm, like torch.nn.utils.clip_grad_norm_ (coefficient
// maxNorm/(norm+1e-6), applied only when below 1). It returns the norm
// before clipping. maxNorm <= 0 only measures.
func ClipGradNorm(params []*engine.Param, maxNorm float64) float64 {
	norm := GradNorm(params)
	if maxNorm <= 0 {
		return norm
	}
	coef := maxNorm / (norm + 1e-6)
	if coef >= 1 {
		return norm
	}
	scaleGrads(params, coef)
	return norm
}

// scaleGrads multiplies every gradient by s.
func scaleGrads(params []*engine.Param, s float64) {
	f := float32(s)
	for _, p := range params {
		for i := range p.Grad {
			p.Grad[i] *= f
		}
	}
}

// zeroGrads sets every gradient to zero.
func zeroGrads(params []*engine.Param) {
	for _, p := range params {
		clear(p.Grad)
	}
}
