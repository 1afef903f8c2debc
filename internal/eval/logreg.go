package eval

import (
	"math"

	"github.com/tailor-ml/tailor/internal/errs"
)

// LogRegOptions configure the logistic regression. Zero fields take the
// defaults.
type LogRegOptions struct {
	// C is the inverse L2 strength, as in scikit-learn: the fit minimises
	// (1/n)·Σ cross-entropy + ‖W‖²/(2·C·n); intercepts are not penalised.
	// Default 1.
	C float64 `json:"c"`
	// MaxIter bounds the L-BFGS iterations. Default 1000.
	MaxIter int `json:"max_iter"`
	// Tol stops the fit once the largest absolute gradient entry is below
	// it. Default 1e-8.
	Tol float64 `json:"tol"`
	// Memory is the number of L-BFGS correction pairs kept. Default 10.
	Memory int `json:"memory"`
}

func (o LogRegOptions) withDefaults() LogRegOptions {
	if o.C == 0 {
		o.C = 1
	}
	if o.MaxIter == 0 {
		o.MaxIter = 1000
	}
	if o.Tol == 0 {
		o.Tol = 1e-8
	}
	if o.Memory == 0 {
		o.Memory = 10
	}
	return o
}

// LogReg is a fitted linear classifier over sparse features. With more than
// two classes it is multinomial (one weight row per class, softmax); with
// two it is scikit-learn's binary form, one row scoring Classes[1] against
// Classes[0].
type LogReg struct {
	Classes []string    // sorted
	W       [][]float64 // rows × dim
	B       []float64   // one intercept per row
}

// lrProblem is the objective over the flattened parameters
// θ = [W row 0, …, W row r−1, b_0, …, b_{r−1}].
type lrProblem struct {
	x    []SparseVec
	y    []int
	k    int // classes
	rows int // k, or 1 when binary
	dim  int
	c    float64
}

// FitLogReg fits a logistic regression to rows x of width dim and labels y
// with a deterministic L-BFGS (fixed start at zero, fixed summation order,
// backtracking Armijo line search).
func FitLogReg(x []SparseVec, y []string, dim int, opts LogRegOptions) (*LogReg, error) {
	opts = opts.withDefaults()
	switch {
	case len(x) == 0 || len(x) != len(y):
		return nil, errs.Invalid("logistic regression: %d rows and %d labels, want the same positive number", len(x), len(y))
	case !(opts.C > 0):
		return nil, errs.Invalid("logistic regression: C %v, want a positive number", opts.C)
	}
	set := map[string]bool{}
	for _, l := range y {
		set[l] = true
	}
	classes := sortedKeys(set)
	if len(classes) < 2 {
		return nil, errs.Invalid("logistic regression: training labels hold %d class, want at least 2", len(classes))
	}
	pos := map[string]int{}
	for i, c := range classes {
		pos[c] = i
	}
	p := &lrProblem{x: x, k: len(classes), rows: len(classes), dim: dim, c: opts.C}
	if p.k == 2 {
		p.rows = 1
	}
	for i, l := range y {
		p.y = append(p.y, pos[l])
		if n := len(x[i].Idx); n > 0 && x[i].Idx[n-1] >= dim {
			return nil, errs.Invalid("logistic regression: row %d has feature %d, beyond width %d", i, x[i].Idx[n-1], dim)
		}
	}
	theta := lbfgs(p.eval, make([]float64, p.rows*(dim+1)), opts)
	m := &LogReg{Classes: classes}
	for r := range p.rows {
		m.W = append(m.W, theta[r*dim:(r+1)*dim])
	}
	m.B = theta[p.rows*dim:]
	return m, nil
}

// logits fills z (length k) for row x under θ.
func (p *lrProblem) logits(theta []float64, x SparseVec, z []float64) {
	bias := theta[p.rows*p.dim:]
	for r := range p.rows {
		s := bias[r]
		w := theta[r*p.dim:]
		for j, i := range x.Idx {
			s += w[i] * x.Val[j]
		}
		if p.rows == 1 {
			z[0], z[1] = 0, s
		} else {
			z[r] = s
		}
	}
}

// softmax turns z into probabilities in place and returns log Σ exp z.
func softmax(z []float64) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = max(m, v)
	}
	s := 0.0
	for i, v := range z {
		z[i] = math.Exp(v - m)
		s += z[i]
	}
	for i := range z {
		z[i] /= s
	}
	return m + math.Log(s)
}

// eval returns the objective and writes its gradient into g.
func (p *lrProblem) eval(theta, g []float64) float64 {
	clear(g)
	n := float64(len(p.x))
	z := make([]float64, p.k)
	loss := 0.0
	gb := g[p.rows*p.dim:]
	for i, x := range p.x {
		p.logits(theta, x, z)
		gold := z[p.y[i]]
		loss += softmax(z) - gold
		z[p.y[i]] -= 1 // residual p − onehot
		for r := range p.rows {
			res := z[r]
			if p.rows == 1 {
				res = z[1]
			}
			gw := g[r*p.dim:]
			for j, f := range x.Idx {
				gw[f] += res * x.Val[j] / n
			}
			gb[r] += res / n
		}
	}
	reg := 1 / (p.c * n)
	sq := 0.0
	for i, w := range theta[:p.rows*p.dim] {
		sq += w * w
		g[i] += reg * w
	}
	return loss/n + reg*sq/2
}

// Probs returns the class probabilities of x, in Classes order.
func (m *LogReg) Probs(x SparseVec) []float64 {
	z := make([]float64, len(m.Classes))
	for r, w := range m.W {
		s := m.B[r]
		for j, i := range x.Idx {
			if i < len(w) {
				s += w[i] * x.Val[j]
			}
		}
		if len(m.W) == 1 {
			z[1] = s
		} else {
			z[r] = s
		}
	}
	softmax(z)
	return z
}

// Predict returns the most probable class of x (ties: first in Classes).
func (m *LogReg) Predict(x SparseVec) string {
	p := m.Probs(x)
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return m.Classes[best]
}

// lbfgs minimises f from x0 and returns the minimiser it reached.
func lbfgs(f func(x, g []float64) float64, x []float64, o LogRegOptions) []float64 {
	n := len(x)
	g, gNew, xNew, d := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	fx := f(x, g)
	var ss, ys [][]float64
	var rhos []float64
	alpha := make([]float64, o.Memory)
	for iter := 0; iter < o.MaxIter && maxAbs(g) > o.Tol; iter++ {
		// Two-loop recursion: d = −H·g.
		copy(d, g)
		for i := len(ss) - 1; i >= 0; i-- {
			alpha[i] = rhos[i] * dot(ss[i], d)
			axpy(-alpha[i], ys[i], d)
		}
		gamma := 1 / math.Max(1, math.Sqrt(dot(g, g)))
		if k := len(ss) - 1; k >= 0 {
			gamma = dot(ss[k], ys[k]) / dot(ys[k], ys[k])
		}
		for i := range d {
			d[i] *= -gamma
		}
		for i := range ss {
			beta := rhos[i] * dot(ys[i], d)
			axpy(-(alpha[i] + beta), ss[i], d) // d = −r: r += (α−β)s, and beta here is −β
		}
		slope := dot(g, d)
		if slope >= 0 { // not a descent direction: restart from steepest descent
			ss, ys, rhos = nil, nil, nil
			continue
		}
		step, fNew := 1.0, 0.0
		for ; step > 1e-20; step /= 2 {
			for i := range x {
				xNew[i] = x[i] + step*d[i]
			}
			if fNew = f(xNew, gNew); fNew <= fx+1e-4*step*slope {
				break
			}
		}
		if step <= 1e-20 {
			break
		}
		s, y := make([]float64, n), make([]float64, n)
		for i := range x {
			s[i], y[i] = xNew[i]-x[i], gNew[i]-g[i]
		}
		if sy := dot(s, y); sy > 1e-12*math.Sqrt(dot(s, s)*dot(y, y)) {
			if len(ss) == o.Memory {
				ss, ys, rhos = ss[1:], ys[1:], rhos[1:]
			}
			ss, ys, rhos = append(ss, s), append(ys, y), append(rhos, 1/sy)
		}
		x, xNew = xNew, x
		g, gNew = gNew, g
		converged := fx-fNew <= 1e-15*math.Max(1, math.Abs(fx))
		fx = fNew
		if converged {
			break
		}
	}
	return x
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func axpy(a float64, x, y []float64) {
	for i, v := range x {
		y[i] += a * v
	}
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(x))
	}
	return m
}
