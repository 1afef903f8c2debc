package monitor

import (
	"math"
	"slices"
)

// KSResult is a two-sample Kolmogorov–Smirnov test.
type KSResult struct {
	D      float64 `json:"d"`      // sup |F1 − F2|
	PValue float64 `json:"pvalue"` // two-sided
	Method string  `json:"method"` // "exact" or "asymp"
}

// ksMaxExact is the largest sample size for which the exact p-value is
// tried, as scipy.stats.ks_2samp's method="auto" (MAX_AUTO_N).
const ksMaxExact = 10000

// KS2Samp is the two-sided two-sample Kolmogorov–Smirnov test with the
// semantics of scipy.stats.ks_2samp(a, b, method="auto"):
//
//	D = max_x |F_a(x) − F_b(x)|   (empirical CDFs, right-continuous)
//
// When max(n_a, n_b) ≤ 10000 the p-value is exact: the share of lattice
// paths from (0,0) to (n_a,n_b) leaving the band |x/n_a − y/n_b| < D
// (Hodges 1958; Viehmann 2021's recursion for 1 − p), and D is reported
// rounded to a multiple of 1/lcm(n_a,n_b) as scipy does. Otherwise, or when
// the exact computation fails numerically, p = P(D_n ≥ D) for the
// one-sample two-sided Kolmogorov distribution with n = round(n_a·n_b/(n_a+n_b))
// (Simard & L'Ecuyer 2011), as scipy.stats.kstwo.sf. Empty input gives NaN.
func KS2Samp(a, b []float64) KSResult {
	n1, n2 := len(a), len(b)
	if n1 == 0 || n2 == 0 {
		return KSResult{D: math.NaN(), PValue: math.NaN()}
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	d := ksStatistic(x, y)
	g := gcd(n1, n2)
	if max(n1, n2) <= ksMaxExact {
		if dd, p, ok := ksExact(n1, n2, g, d); ok {
			return KSResult{D: dd, PValue: clamp01(p), Method: "exact"}
		}
	}
	m, n := float64(max(n1, n2)), float64(min(n1, n2))
	en := math.RoundToEven(m * n / (m + n))
	return KSResult{D: d, PValue: clamp01(KolmogorovSF(int(en), d)), Method: "asymp"}
}

// ksStatistic computes D over sorted samples, evaluating both ECDFs at
// every pooled point (ties step together).
func ksStatistic(x, y []float64) float64 {
	n1, n2 := float64(len(x)), float64(len(y))
	var d float64
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		var v float64
		switch {
		case j >= len(y) || (i < len(x) && x[i] <= y[j]):
			v = x[i]
		default:
			v = y[j]
		}
		for i < len(x) && x[i] <= v {
			i++
		}
		for j < len(y) && y[j] <= v {
			j++
		}
		d = max(d, math.Abs(float64(i)/n1-float64(j)/n2))
	}
	return d
}

// ksExact returns the lattice-rounded D and the exact two-sided p-value;
// ok is false when the computation is out of floating-point range.
func ksExact(n1, n2, g int, d float64) (float64, float64, bool) {
	lcm := (n1 / g) * n2
	h := int(math.RoundToEven(d * float64(lcm)))
	d = float64(h) / float64(lcm)
	if h == 0 {
		return d, 1, true
	}
	var p float64
	if n1 == n2 {
		p = ksOutsideSquare(n1, h)
	} else {
		p = ksOuterInside(n1, n2, g, h)
	}
	if math.IsNaN(p) || math.IsInf(p, 0) || p < 0 || p > 1 {
		return d, p, false
	}
	return d, p, true
}

// ksOutsideSquare is P(D_{n,n} ≥ h/n) by the alternating reflection sum
// 2·Σ_k (−1)^(k−1) C(2n, n−kh)/C(2n, n), evaluated Horner-style.
func ksOutsideSquare(n, h int) float64 {
	var p float64
	for k := n / h; k >= 0; k-- {
		p1 := 1.0
		for j := 0; j < h; j++ {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		p = p1 * (1 - p)
	}
	return 2 * p
}

// ksOuterInside is the share of lattice paths (0,0)→(m,n) that leave the
// band |n·x/g − m·y/g| < h, by a column recursion that carries the outside
// share directly (Viehmann 2021), so no large binomial is ever formed.
func ksOuterInside(m, n, g, h int) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	minj, maxj := 0, min(ceilDiv(h, mg), n+1)
	curlen := maxj - minj
	a := make([]float64, min(2*maxj+2, n+1))
	for i := range a {
		a[i] = 1
	}
	for i := minj; i < maxj; i++ {
		a[i] = 0
	}
	for i := 1; i <= m; i++ {
		lastminj, lastlen := minj, curlen
		minj = max(floorDiv(ng*i-h, mg)+1, 0)
		minj = min(minj, n)
		maxj = min(ceilDiv(ng*i+h, mg), n+1)
		if maxj <= minj {
			return 1
		}
		val := 1.0
		if minj == 0 {
			val = 0
		}
		for jj := 0; jj < maxj-minj; jj++ {
			j := jj + minj
			val = (a[jj+minj-lastminj]*float64(i) + val*float64(j)) / float64(i+j)
			a[jj] = val
		}
		curlen = maxj - minj
		for k := curlen; k < curlen+(lastlen-curlen) && k < len(a); k++ {
			a[k] = 1
		}
	}
	return a[maxj-minj-1]
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int) int { return -floorDiv(-a, b) }

func clamp01(p float64) float64 {
	if math.IsNaN(p) {
		return p
	}
	return math.Min(1, math.Max(0, p))
}
