package monitor

import "math"

// KolmogorovSF is P(D_n ≥ x) for the two-sided one-sample Kolmogorov
// statistic D_n, as scipy.stats.kstwo.sf(x, n). It follows the regime
// split of Simard & L'Ecuyer (2011): Ruben–Gambino closed forms at the
// extremes, twice the one-sided Smirnov tail where that is exact or
// accurate, the Durbin matrix (Marsaglia–Tsang–Wang) or Pomeranz recursion
// for small n, and the Pelz–Good expansion for large n.
func KolmogorovSF(n int, x float64) float64 {
	if n <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x >= 1 {
		return 0
	}
	if x <= 0 {
		return 1
	}
	nf := float64(n)
	t := nf * x
	if t <= 1 {
		if t <= 0.5 {
			return 1
		}
		var cdf float64
		if n <= 140 {
			cdf = 1
			for i := 1; i <= n; i++ {
				cdf *= float64(i) * (1 / nf) * (2*t - 1)
			}
		} else {
			cdf = math.Exp(logFactorialOverPow(nf) + nf*math.Log(2*t-1))
		}
		return clamp01(1 - cdf)
	}
	if t >= nf-1 {
		return clamp01(2 * math.Pow(1-x, nf))
	}
	if x >= 0.5 {
		return clamp01(2 * smirnovSF(n, x))
	}
	nxx := t * x
	if n <= 140 {
		switch {
		case nxx <= 0.754693:
			return clamp01(1 - durbinCDF(n, x))
		case nxx <= 4:
			return clamp01(1 - pomeranzCDF(n, x))
		default:
			return clamp01(2 * smirnovSF(n, x))
		}
	}
	if nxx >= 370 {
		return 0
	}
	if nxx >= 2.2 {
		return clamp01(2 * smirnovSF(n, x))
	}
	var cdf float64
	switch {
	case nxx >= 18:
		cdf = 1
	case n <= 100000 && nf*math.Pow(x, 1.5) <= 1.4:
		cdf = durbinCDF(n, x)
	default:
		cdf = pelzGoodCDF(n, x)
	}
	return clamp01(1 - cdf)
}

// logFactorialOverPow is log(n!/n^n) by Stirling's series.
func logFactorialOverPow(n float64) float64 {
	coeffs := []float64{-2.955065359477124183e-2, 6.4102564102564102564e-3,
		-1.9175269175269175269e-3, 8.4175084175084175084e-4,
		-5.952380952380952381e-4, 7.9365079365079365079e-4,
		-2.7777777777777777778e-3, 8.3333333333333333333e-2}
	rn := 1 / n
	var poly float64
	for _, c := range coeffs {
		poly = poly*rn/n + c
	}
	return math.Log(n)/2 - n + math.Log(2*math.Pi)/2 + rn*poly
}

// smirnovSF is the exact one-sided Smirnov tail P(D_n^+ ≥ d) by the
// Birnbaum–Tingey sum
//
//	d · Σ_{j=0}^{⌊n(1−d)⌋} C(n,j) (d + j/n)^(j−1) (1 − d − j/n)^(n−j),
//
// whose terms are all positive; they are summed in log space.
func smirnovSF(n int, d float64) float64 {
	if d <= 0 {
		return 1
	}
	if d >= 1 {
		return 0
	}
	nf := float64(n)
	jmax := int(math.Floor(nf * (1 - d)))
	logs := make([]float64, 0, jmax+1)
	logC := 0.0
	top := math.Inf(-1)
	for j := 0; j <= jmax; j++ {
		if j > 0 {
			logC += math.Log(float64(n-j+1)) - math.Log(float64(j))
		}
		rest := 1 - d - float64(j)/nf
		if rest <= 0 && n-j > 0 {
			continue
		}
		l := logC + math.Log(d) + float64(j-1)*math.Log(d+float64(j)/nf)
		if n-j > 0 {
			l += float64(n-j) * math.Log(rest)
		}
		logs = append(logs, l)
		top = math.Max(top, l)
	}
	var s float64
	for _, l := range logs {
		s += math.Exp(l - top)
	}
	return math.Exp(top) * s
}

const (
	e128  = 128
	ep128 = 0x1p128
	em128 = 0x1p-128
)

// durbinCDF is P(D_n ≤ d) by Durbin's matrix method in the form of
// Marsaglia, Tsang & Wang (2003): the (k,k) entry of H^n times n!/n^n,
// with exponent tracking against overflow.
func durbinCDF(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	nd := float64(n) * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1
	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] = (1 - math.Pow(h, float64(j))) * fac
	}
	tt := math.Pow(math.Max(2*h-1, 0), float64(m)) - 2*math.Pow(h, float64(m))
	v[m-1] = (1 + tt) * fac
	H := newMat(m)
	for i := 1; i < m; i++ {
		for r := i - 1; r < m; r++ {
			H[r*m+i] = w[r-(i-1)]
		}
	}
	for r := 0; r < m; r++ {
		H[r*m] = v[r]
	}
	for c := 0; c < m; c++ {
		H[(m-1)*m+c] = v[m-1-c]
	}
	P := newMat(m)
	for i := 0; i < m; i++ {
		P[i*m+i] = 1
	}
	expnt, hexpnt := 0, 0
	for nn := n; nn > 0; nn /= 2 {
		if nn%2 == 1 {
			P = matMul(P, H, m)
			expnt += hexpnt
		}
		H = matMul(H, H, m)
		hexpnt *= 2
		if math.Abs(H[(k-1)*m+k-1]) > ep128 {
			for i := range H {
				H[i] /= ep128
			}
			hexpnt += e128
		}
	}
	p := P[(k-1)*m+k-1]
	for i := 1; i <= n; i++ {
		p = float64(i) * p / float64(n)
		if math.Abs(p) < em128 {
			p *= ep128
			expnt -= e128
		}
	}
	if expnt != 0 {
		p = math.Ldexp(p, expnt)
	}
	return clamp01(p)
}

func newMat(m int) []float64 { return make([]float64, m*m) }

func matMul(a, b []float64, m int) []float64 {
	c := newMat(m)
	for i := 0; i < m; i++ {
		for k := 0; k < m; k++ {
			aik := a[i*m+k]
			if aik == 0 {
				continue
			}
			for j := 0; j < m; j++ {
				c[i*m+j] += aik * b[k*m+j]
			}
		}
	}
	return c
}

// pomeranzCDF is P(D_n ≤ x) by Pomeranz's (1974) recursion over 2n+2 rows
// of truncated convolutions with the powers (g/n)^m/m!, (2g/n)^m/m! and
// ((1−2g)/n)^m/m!, where g is the distance of n·x to the nearest integer.
func pomeranzCDF(n int, x float64) float64 {
	t := float64(n) * x
	ll := int(math.Floor(t))
	f := t - float64(ll)
	g := math.Min(f, 1-f)
	ceilf, roundf := 0, 0
	if f > 0 {
		ceilf = 1
	}
	if f > 0.5 {
		roundf = 1
	}
	npwrs := 2 * (ll + 1)
	gp, g2p, g12p := make([]float64, npwrs), make([]float64, npwrs), make([]float64, npwrs)
	gp[0], g2p[0], g12p[0] = 1, 1, 1
	nf := float64(n)
	for m := 1; m < npwrs; m++ {
		gp[m] = gp[m-1] * (g / nf) / float64(m)
		g2p[m] = g2p[m-1] * (2 * g / nf) / float64(m)
		g12p[m] = g12p[m-1] * ((1 - 2*g) / nf) / float64(m)
	}
	v0, v1 := make([]float64, npwrs), make([]float64, npwrs)
	v1[0] = 1
	v0s, v1s := 0, 0
	expnt := 0
	j1, _ := pomeranzJ(0, n, ll, ceilf, roundf) // row 0's band end is not needed
	for i := 1; i < 2*n+2; i++ {
		k1 := j1
		v0, v1 = v1, v0
		v0s, v1s = v1s, v0s
		clear(v1)
		var j2 int
		j1, j2 = pomeranzJ(i, n, ll, ceilf, roundf)
		pw := g12p
		switch {
		case i == 1 || i == 2*n+1:
			pw = gp
		case i%2 == 1:
			pw = g2p
		}
		ln2 := j2 - k1 + 1
		if ln2 <= 0 {
			continue
		}
		// conv[c] = Σ_a src[a]·pw[c−a], src = v0[k1−v0s : k1−v0s+ln2].
		src := v0[k1-v0s : k1-v0s+ln2]
		start, length := j1-k1, j2-j1+1
		big := 0.0
		for c := start; c < start+length; c++ {
			var s float64
			for a := max(0, c-(ln2-1)); a <= min(c, ln2-1); a++ {
				s += src[a] * pw[c-a]
			}
			v1[c-start] = s
			big = math.Max(big, s)
		}
		if big > 0 && big < em128 {
			for q := range v1 {
				v1[q] *= ep128
			}
			expnt -= e128
		}
		v1s = v0s + j1 - k1
	}
	ans := v1[n-v1s]
	for m := 1; m <= n; m++ {
		if math.Abs(ans) > ep128 {
			ans *= em128
			expnt += e128
		}
		ans *= float64(m)
	}
	if expnt != 0 {
		ans = math.Ldexp(ans, expnt)
	}
	return clamp01(ans)
}

func pomeranzJ(i, n, ll, ceilf, roundf int) (int, int) {
	var j1, j2 int
	if i == 0 {
		j1, j2 = -ll-ceilf-1, ll+ceilf-1
	} else {
		half, odd := (i+1)/2, (i+1)%2
		if odd == 0 { // i is odd
			if half == n+1 {
				j1, j2 = n-ll-ceilf-1, n+ll+ceilf-1
			} else {
				j1, j2 = half-1-ll-roundf-1, half+ll-1+ceilf-1
			}
		} else {
			j1, j2 = half-1-ll-1, half+ll+roundf-1
		}
	}
	return max(j1+2, 0), min(j2, n)
}

// pelzGoodCDF is the Pelz–Good (1976) expansion of P(D_n ≤ x) in powers of
// n^(−1/2), with each term rewritten through Jacobi theta functions so it
// converges for small z = x·√n.
func pelzGoodCDF(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	pi2, pi4, pi6 := math.Pi*math.Pi, math.Pow(math.Pi, 4), math.Pow(math.Pi, 6)
	z := math.Sqrt(float64(n)) * x
	z2, z3, z4, z6 := z*z, z*z*z, math.Pow(z, 4), math.Pow(z, 6)
	qlog := -pi2 / 8 / z2
	if qlog < -708 {
		return 0
	}
	q := math.Exp(qlog)
	k1a, k1b := -z2, pi2/4
	k2a := 6*z6 + 2*z4
	k2b := (2*z4 - 5*z2) * pi2 / 4
	k2c := pi4 * (1 - 2*z2) / 16
	k3d := pi6 * (5 - 30*z2) / 64
	k3c := pi4 * (-60*z2 + 212*z4) / 16
	k3b := pi2 * (135*z4 - 96*z6) / 4
	k3a := -30*z6 - 90*math.Pow(z, 8)
	var K [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k >= 1; k-- {
		m := float64(2*k - 1)
		m2, m4, m6 := m*m, m*m*m*m, math.Pow(m, 6)
		qp := math.Pow(q, float64(8*k))
		c := [4]float64{1, k1a + k1b*m2, k2a + k2b*m2 + k2c*m4, k3a + k3b*m2 + k3c*m4 + k3d*m6}
		for i := range K {
			K[i] = K[i]*qp + c[i]
		}
	}
	sqrt2pi := math.Sqrt(2 * math.Pi)
	div := [4]float64{z, 6 * z4, 72 * math.Pow(z, 7), 6480 * math.Pow(z, 10)}
	for i := range K {
		K[i] = K[i] * q * sqrt2pi / div[i]
	}
	q = math.Exp(-pi2 / 2 / z2)
	var k2extra, k3extra float64
	sqrt3z := math.Sqrt(3) * z
	for k := maxk; k >= 1; k-- {
		kf := float64(k)
		qk := math.Pow(q, kf*kf)
		k2extra += kf * kf * qk
		kspi := math.Pi * kf
		k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * kf * kf * qk
	}
	K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3)
	K[3] += k3extra * pi2 * sqrt2pi / (216 * z6)
	var sum float64
	for i := range K {
		sum += K[i] / math.Pow(float64(n), float64(i)/2)
	}
	return sum
}
