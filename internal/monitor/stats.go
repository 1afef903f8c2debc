package monitor

import (
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// ChiSquareResult is Pearson's goodness-of-fit test.
type ChiSquareResult struct {
	Statistic float64 `json:"statistic"`
	PValue    float64 `json:"pvalue"`
	DF        int     `json:"df"`
}

// ChiSquare is Pearson's chi-square goodness of fit with the semantics of
// scipy.stats.chisquare(observed, expected):
//
//	X² = Σ_i (O_i − E_i)² / E_i,   p = Q(X²; k − 1)
//
// where Q is the chi-square survival function (regularized upper
// incomplete gamma Q(k−1)/2, X²/2)), k the number of categories. expected
// must have the same total as observed (callers scale proportions by the
// observed total). A category with E_i = 0 and O_i > 0 gives X² = +Inf and
// p = 0; fewer than two categories give NaN.
func ChiSquare(observed, expected []float64) ChiSquareResult {
	k := len(observed)
	if k < 2 || len(expected) != k {
		return ChiSquareResult{Statistic: math.NaN(), PValue: math.NaN()}
	}
	var x2 float64
	for i, o := range observed {
		e := expected[i]
		switch {
		case e == 0 && o == 0:
		case e == 0:
			x2 = math.Inf(1)
		default:
			x2 += (o - e) * (o - e) / e
		}
	}
	df := k - 1
	p := 0.0
	if !math.IsInf(x2, 1) {
		p = distuv.ChiSquared{K: float64(df)}.Survival(x2)
	}
	return ChiSquareResult{Statistic: x2, PValue: p, DF: df}
}

// Smooth turns bucket counts into proportions with a pseudo-count eps per
// bucket: p_i = (c_i + eps) / (Σc + K·eps). eps > 0 keeps every p_i > 0 so
// PSI's log ratio is finite for buckets empty on one side.
func Smooth(counts []float64, eps float64) []float64 {
	var total float64
	for _, c := range counts {
		total += c
	}
	den := total + float64(len(counts))*eps
	out := make([]float64, len(counts))
	for i, c := range counts {
		out[i] = (c + eps) / den
	}
	return out
}

// PSICounts is PSI on bucket counts: buckets empty in both histograms are
// dropped (they carry no information, and smoothing them would add a bias
// that grows with the bucket count), the rest are smoothed with Smooth(eps)
// and compared by PSI. Dropped buckets get a zero term.
func PSICounts(ref, cur []float64, eps float64) (float64, []float64, []float64, []float64) {
	var keep []int
	var r, c []float64
	for i := range ref {
		if ref[i] > 0 || cur[i] > 0 {
			keep = append(keep, i)
			r, c = append(r, ref[i]), append(c, cur[i])
		}
	}
	rp, cp := Smooth(r, eps), Smooth(c, eps)
	psi, t := PSI(rp, cp)
	terms, rfull, cfull := make([]float64, len(ref)), make([]float64, len(ref)), make([]float64, len(ref))
	for j, i := range keep {
		terms[i], rfull[i], cfull[i] = t[j], rp[j], cp[j]
	}
	return psi, terms, rfull, cfull
}

// PSI is the population stability index between a reference distribution
// ref and a current distribution cur (both proportions, both > 0):
//
//	PSI = Σ_i (cur_i − ref_i) · ln(cur_i / ref_i)
//
// It returns the total and each bucket's term (all terms are ≥ 0).
func PSI(ref, cur []float64) (float64, []float64) {
	terms := make([]float64, len(ref))
	var s float64
	for i := range ref {
		terms[i] = (cur[i] - ref[i]) * math.Log(cur[i]/ref[i])
		s += terms[i]
	}
	return s, terms
}

// JSDistance is the Jensen–Shannon distance in bits, as
// scipy.spatial.distance.jensenshannon(p, q, base=2): p and q are
// normalized to sum 1, m = (p+q)/2, and
//
//	JS = sqrt( (KL(p‖m) + KL(q‖m)) / 2 ),  KL in log base 2,
//
// with 0·log 0 = 0, so no smoothing is needed. It lies in [0, 1].
func JSDistance(p, q []float64) float64 {
	var sp, sq float64
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	if sp == 0 || sq == 0 {
		return math.NaN()
	}
	var kl float64
	for i := range p {
		a, b := p[i]/sp, q[i]/sq
		m := (a + b) / 2
		if a > 0 {
			kl += a * math.Log(a/m)
		}
		if b > 0 {
			kl += b * math.Log(b/m)
		}
	}
	return math.Sqrt(math.Max(kl/2, 0) / math.Ln2)
}

// RateResult is a two-proportion test of a window rate against the
// reference rate.
type RateResult struct {
	Reference float64 `json:"reference"` // x_r / n_r
	Window    float64 `json:"window"`    // x_w / n_w
	Z         float64 `json:"z"`
	PValue    float64 `json:"pvalue"`
}

// RateTest is the pooled two-proportion z-test, two-sided, with a
// quasi-binomial dispersion φ ≥ 1:
//
//	p̂ = (x_r + x_w)/(n_r + n_w)
//	z = (x_w/n_w − x_r/n_r) / sqrt(φ · p̂(1 − p̂) · (1/n_r + 1/n_w))
//	p = 2·(1 − Φ(|z|))
//
// φ accounts for units (bytes, tokens) that cluster within a request;
// φ = 1 is the textbook test. Equal rates of 0 or 1 give z = 0, p = 1.
func RateTest(xr, nr, xw, nw, phi float64) RateResult {
	r := RateResult{Z: 0, PValue: 1}
	if nr <= 0 || nw <= 0 {
		return RateResult{Reference: math.NaN(), Window: math.NaN(), Z: math.NaN(), PValue: math.NaN()}
	}
	r.Reference, r.Window = xr/nr, xw/nw
	phi = math.Max(phi, 1)
	pool := (xr + xw) / (nr + nw)
	v := phi * pool * (1 - pool) * (1/nr + 1/nw)
	if v <= 0 {
		return r
	}
	r.Z = (r.Window - r.Reference) / math.Sqrt(v)
	r.PValue = math.Min(1, 2*distuv.UnitNormal.Survival(math.Abs(r.Z)))
	return r
}

// Dispersion is the Pearson estimate of quasi-binomial over-dispersion of
// per-request counts x_i out of n_i around their pooled rate p:
//
//	φ = Σ_i (x_i − n_i·p)² / (n_i·p·(1 − p)) / (R − 1)
//
// over the R requests with n_i > 0; it is floored at 1 (and 1 when R < 2
// or p is 0 or 1).
func Dispersion(x, n []float64) float64 {
	var sx, sn float64
	r := 0
	for i := range x {
		if n[i] > 0 {
			sx += x[i]
			sn += n[i]
			r++
		}
	}
	if r < 2 || sn == 0 {
		return 1
	}
	p := sx / sn
	if p <= 0 || p >= 1 {
		return 1
	}
	var chi float64
	for i := range x {
		if n[i] > 0 {
			d := x[i] - n[i]*p
			chi += d * d / (n[i] * p * (1 - p))
		}
	}
	return math.Max(1, chi/float64(r-1))
}

// Adjusted is one p-value's multiple-testing decision.
type Adjusted struct {
	Adjusted float64 // the adjusted p-value
	Reject   bool
}

// BenjaminiHochberg adjusts p-values for the false discovery rate q:
// sort p ascending, reject the k smallest where k is the largest i with
// p_(i) ≤ i·q/m; the adjusted p-value is min_{j ≥ i} min(1, m·p_(j)/j).
// NaN p-values are not tested (never rejected, adjusted NaN) and do not
// count in m.
func BenjaminiHochberg(p []float64, q float64) []Adjusted {
	idx := finiteOrder(p)
	m := len(idx)
	out := make([]Adjusted, len(p))
	for i := range out {
		out[i].Adjusted = math.NaN()
	}
	k := 0
	for r, i := range idx {
		if p[i] <= float64(r+1)*q/float64(m) {
			k = r + 1
		}
	}
	run := 1.0
	for r := m - 1; r >= 0; r-- {
		i := idx[r]
		run = math.Min(run, float64(m)*p[i]/float64(r+1))
		out[i] = Adjusted{Adjusted: run, Reject: r < k}
	}
	return out
}

// Holm adjusts p-values for the family-wise error rate alpha by Holm's
// step-down rule: reject p_(1) ≤ α/m, p_(2) ≤ α/(m−1), … until the first
// failure; the adjusted p-value is max_{j ≤ i} min(1, (m − j + 1)·p_(j)).
func Holm(p []float64, alpha float64) []Adjusted {
	idx := finiteOrder(p)
	m := len(idx)
	out := make([]Adjusted, len(p))
	for i := range out {
		out[i].Adjusted = math.NaN()
	}
	run, stop := 0.0, false
	for r, i := range idx {
		run = math.Max(run, math.Min(1, float64(m-r)*p[i]))
		if p[i] > alpha/float64(m-r) {
			stop = true
		}
		out[i] = Adjusted{Adjusted: run, Reject: !stop}
	}
	return out
}

// finiteOrder returns the indices of the non-NaN p-values, ascending by
// value, ties by index.
func finiteOrder(p []float64) []int {
	var idx []int
	for i, v := range p {
		if !math.IsNaN(v) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	return idx
}

// HistDispersion is the Pearson estimate of the over-dispersion of per-text
// n-gram bucket counts x_ib (n_i n-grams in text i) around the pooled
// bucket proportions p_b = hist_b / Σ hist:
//
//	φ = Σ_i Σ_b (x_ib − n_i·p_b)² / (n_i·p_b) / ((R − 1)(K − 1))
//
// over the R texts with n-grams and the K non-empty buckets; per text the
// inner sum is Σ_b x_ib²/(n_i·p_b) − n_i. Under a multinomial φ is 1;
// clustering makes it larger. It is floored at 1 (and 1 when R < 2 or
// K < 2). grams turns a text's tokens into the n-grams hist counts.
func HistDispersion(texts []string, hist []int64, buckets int, grams func([]string) []string) float64 {
	var total float64
	k := 0
	for _, c := range hist {
		total += float64(c)
		if c > 0 {
			k++
		}
	}
	if total == 0 || k < 2 {
		return 1
	}
	var chi float64
	r := 0
	counts := map[int]float64{}
	for _, t := range texts {
		gs := grams(Tokenize(t))
		if len(gs) == 0 {
			continue
		}
		r++
		clear(counts)
		for _, g := range gs {
			counts[Bucket(g, buckets)]++
		}
		n := float64(len(gs))
		keys := make([]int, 0, len(counts))
		for b := range counts {
			keys = append(keys, b)
		}
		slices.Sort(keys) // a fixed summation order
		for _, b := range keys {
			x := counts[b]
			chi += x * x / (n * float64(hist[b]) / total)
		}
		chi -= n
	}
	if r < 2 {
		return 1
	}
	return math.Max(1, chi/float64((r-1)*(k-1)))
}

// FisherExact is the two-sided Fisher exact test of a share: x of n in the
// window against xr of nr in the reference, as scipy.stats.fisher_exact on
// [[x, n−x], [xr, nr−xr]]: the hypergeometric probability of every table
// with the same margins that is no more likely than the observed one
// (with scipy's relative tolerance 1e-7). Exact where a z-test is not: the
// shares it serves (requests with an unknown byte) are rare.
func FisherExact(x, n, xr, nr int64) float64 {
	total, k := n+nr, x+xr
	if n <= 0 || nr <= 0 || k == 0 || k == total {
		return 1
	}
	lg := func(v int64) float64 { r, _ := math.Lgamma(float64(v) + 1); return r }
	logC := func(a, b int64) float64 { return lg(a) - lg(b) - lg(a-b) }
	den := logC(total, n)
	pmf := func(i int64) float64 { return math.Exp(logC(k, i) + logC(total-k, n-i) - den) }
	obs := pmf(x)
	var p float64
	for i := max(0, n+k-total); i <= min(n, k); i++ {
		if q := pmf(i); q <= obs*(1+1e-7) {
			p += q
		}
	}
	return math.Min(1, p)
}
