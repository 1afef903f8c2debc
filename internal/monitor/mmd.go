package monitor

import (
	"math"
	"math/rand/v2"
	"slices"
)

// MMDResult is a kernel two-sample test on embedding vectors.
type MMDResult struct {
	MMD2         float64 `json:"mmd2"`         // unbiased estimate
	Bandwidth    float64 `json:"bandwidth"`    // σ of the RBF kernel
	PValue       float64 `json:"pvalue"`       // permutation p-value
	Permutations int     `json:"permutations"` // B
}

// MMD2 is the unbiased squared maximum mean discrepancy (Gretton et al.
// 2012) between samples x (m vectors) and y (n vectors) under the RBF
// kernel k(a,b) = exp(−‖a−b‖² / (2σ²)):
//
//	MMD²_u = Σ_{i≠j} k(x_i,x_j)/(m(m−1)) + Σ_{i≠j} k(y_i,y_j)/(n(n−1))
//	         − 2·Σ_{i,j} k(x_i,y_j)/(m·n)
//
// σ ≤ 0 selects the median heuristic: σ = the median Euclidean distance
// over all distinct pairs of the pooled sample (the mean of the two middle
// values when their number is even); σ = 1 if that median is 0.
func MMD2(x, y [][]float64, sigma float64) (mmd2, bandwidth float64) {
	pooled := append(slices.Clone(x), y...)
	d2 := sqDistances(pooled)
	if sigma <= 0 {
		sigma = medianBandwidth(d2, len(pooled))
	}
	k := rbf(d2, sigma)
	lab := make([]bool, len(pooled))
	for i := range x {
		lab[i] = true
	}
	return mmdFromKernel(k, len(pooled), lab, len(x)), sigma
}

// MMDTest is MMD2 with a permutation p-value: the pooled sample's labels
// are shuffled B times (Fisher–Yates, PCG seeded with seed), and
//
//	p = (1 + #{b : MMD²_b ≥ MMD²_observed}) / (1 + B).
//
// The bandwidth is fixed from the pooled sample, so it is the same for
// every permutation. Either sample having fewer than 2 vectors gives NaN.
func MMDTest(x, y [][]float64, permutations int, seed uint64) MMDResult {
	if len(x) < 2 || len(y) < 2 {
		return MMDResult{MMD2: math.NaN(), PValue: math.NaN()}
	}
	pooled := append(slices.Clone(x), y...)
	n := len(pooled)
	d2 := sqDistances(pooled)
	sigma := medianBandwidth(d2, n)
	k := rbf(d2, sigma)
	lab := make([]bool, n)
	for i := range x {
		lab[i] = true
	}
	obs := mmdFromKernel(k, n, lab, len(x))
	// #nosec G404 -- seeded permutation test, reproducible by design; not a secret
	rng := rand.New(rand.NewPCG(seed, 0x6d6d64)) // "mmd"
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	plab := make([]bool, n)
	ge := 0
	for b := 0; b < permutations; b++ {
		for i := n - 1; i > 0; i-- {
			j := rng.IntN(i + 1)
			perm[i], perm[j] = perm[j], perm[i]
		}
		clear(plab)
		for i := range x {
			plab[perm[i]] = true
		}
		if mmdFromKernel(k, n, plab, len(x)) >= obs {
			ge++
		}
	}
	return MMDResult{MMD2: obs, Bandwidth: sigma, PValue: float64(1+ge) / float64(1+permutations), Permutations: permutations}
}

func sqDistances(v [][]float64) []float64 {
	n := len(v)
	d := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			var s float64
			for t := range v[i] {
				e := v[i][t] - v[j][t]
				s += e * e
			}
			d[i*n+j], d[j*n+i] = s, s
		}
	}
	return d
}

func medianBandwidth(d2 []float64, n int) float64 {
	var ds []float64
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			ds = append(ds, math.Sqrt(d2[i*n+j]))
		}
	}
	if len(ds) == 0 {
		return 1
	}
	slices.Sort(ds)
	var med float64
	if h := len(ds) / 2; len(ds)%2 == 1 {
		med = ds[h]
	} else {
		med = (ds[h-1] + ds[h]) / 2
	}
	if med == 0 {
		return 1
	}
	return med
}

func rbf(d2 []float64, sigma float64) []float64 {
	k := make([]float64, len(d2))
	c := -1 / (2 * sigma * sigma)
	for i, v := range d2 {
		k[i] = math.Exp(c * v)
	}
	return k
}

// mmdFromKernel evaluates MMD²_u for the split given by lab (true: x),
// summing the upper triangle in a fixed order.
func mmdFromKernel(k []float64, n int, lab []bool, m int) float64 {
	var sxx, syy, sxy float64
	for i := 0; i < n; i++ {
		row := k[i*n:]
		for j := i + 1; j < n; j++ {
			switch {
			case lab[i] && lab[j]:
				sxx += row[j]
			case !lab[i] && !lab[j]:
				syy += row[j]
			default:
				sxy += row[j]
			}
		}
	}
	mf, nf := float64(m), float64(n-m)
	return 2*sxx/(mf*(mf-1)) + 2*syy/(nf*(nf-1)) - 2*sxy/(mf*nf)
}
