package nn

import (
	"fmt"
	"math"
)

// exp32 is a float32 exp with about 1 ulp error (Cephes expf): range
// reduction by ln 2 and a degree-6 polynomial. It is several times faster
// than math.Exp and deterministic.
func exp32(x float32) float32 {
	// Clamp so 2^n stays a normal float32; exp(-87.3) underflows to ~1e-38.
	if x > 88.3762626647949 {
		x = 88.3762626647949
	}
	if x < -87.3365447504 {
		x = -87.3365447504
	}
	// n = round(x·log2 e) via the 1.5·2²³ rounding trick, branch-free.
	t := x*1.44269504088896341 + 12582912
	// #nosec G115 -- reinterprets the float bits (the 1.5·2²³ rounding trick); x is clamped above, so n is in [-126, 127]
	n := int32(math.Float32bits(t)) - 0x4B400000
	fn := t - 12582912
	r := x - fn*0.693359375 - fn*-2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	// #nosec G115 -- x is clamped above, so n+127 is in [1, 254], a valid float32 exponent
	return y * math.Float32frombits(uint32(n+127)<<23)
}

// expT is exp for either precision: exp32 for float32, math.Exp otherwise.
func expT[T Float](x T) T {
	if is32[T]() {
		return T(exp32(float32(x)))
	}
	return T(math.Exp(float64(x)))
}

// expInPlaceGo replaces every x[i] by exp32(x[i]); the body is written out
// so the loop runs without a call per element. The cgo build uses a
// vectorised C version of exactly these operations (same bits).
func expInPlaceGo(xs []float32) {
	for i, x := range xs {
		// Plain comparisons: the min/max builtins order NaN and ±0 and
		// compile to slower code.
		if x > 88.3762626647949 {
			x = 88.3762626647949
		}
		if x < -87.3365447504 {
			x = -87.3365447504
		}
		t := x*1.44269504088896341 + 12582912
		// #nosec G115 -- reinterprets the float bits (the 1.5·2²³ rounding trick); x is clamped above, so n is in [-126, 127]
		n := int32(math.Float32bits(t)) - 0x4B400000
		fn := t - 12582912
		r := x - fn*0.693359375 - fn*-2.12194440e-4
		p := float32(1.9875691500e-4)
		p = p*r + 1.3981999507e-3
		p = p*r + 8.3334519073e-3
		p = p*r + 4.1665795894e-2
		p = p*r + 1.6666665459e-1
		p = p*r + 5.0000001201e-1
		// #nosec G115 -- x is clamped above, so n+127 is in [1, 254], a valid float32 exponent
		xs[i] = (p*r*r + r + 1) * math.Float32frombits(uint32(n+127)<<23)
	}
}

// expInPlace is expInPlace32 for float32 and math.Exp otherwise.
func expInPlace[T Float](xs []T) {
	if is32[T]() {
		expInPlace32(as32(xs))
		return
	}
	for i, x := range xs {
		xs[i] = T(math.Exp(float64(x)))
	}
}

// siluGLUGo is SwiGLU over rows rows of cols values: gate and up have row
// stride ldin, sig and act ldout; s = 1/(1+exp32(−g)), act = g·s·up and,
// when sig is not nil, sig = s. The cgo build runs a vectorised C version
// of exactly these operations (same bits).
func siluGLUGo(gate, up []float32, ldin int, sig, act []float32, ldout, rows, cols int) {
	for r := 0; r < rows; r++ {
		g, u, a := gate[r*ldin:r*ldin+cols], up[r*ldin:r*ldin+cols], act[r*ldout:r*ldout+cols]
		var sg []float32
		if sig != nil {
			sg = sig[r*ldout : r*ldout+cols]
		}
		for i, x := range g {
			s := 1 / (1 + exp32(-x))
			if sg != nil {
				sg[i] = s
			}
			a[i] = x * s * u[i]
		}
	}
}

// checkGLU panics when a SwiGLU kernel's slices are too short for rows
// rows of cols values at their strides: a short slice is a programming
// error and must never reach C code.
func checkGLU(lenGate, lenUp, ldin, lenSig, lenAct, ldout, rows, cols int) {
	in, out := (rows-1)*ldin+cols, (rows-1)*ldout+cols
	if cols > ldin || cols > ldout || lenGate < in || lenUp < in || lenAct < out || (lenSig != 0 && lenSig < out) {
		panic(fmt.Sprintf("nn: swiglu over %d×%d (strides %d, %d) with slices of %d, %d, %d, %d",
			rows, cols, ldin, ldout, lenGate, lenUp, lenSig, lenAct))
	}
}

// softmaxRowsGo is the causal softmax over rows: row r of p (stride ld) is
// normalised over its first n0+r entries and zeroed up to length. The sum
// runs in 16 lanes (lane j takes elements j, j+16, ...), then the lanes in
// order; the cgo build runs a vectorised C version of exactly these
// operations (same bits).
func softmaxRowsGo(p []float32, ld, rows, n0, length int) {
	for r := 0; r < rows; r++ {
		x := p[r*ld : r*ld+length]
		n := n0 + r
		mx := x[0]
		for _, v := range x[1:n] {
			if v > mx {
				mx = v
			}
		}
		var acc [16]float32
		for i, v := range x[:n] {
			e := exp32(v - mx)
			x[i] = e
			acc[i%16] += e
		}
		var sum float32
		for _, a := range acc {
			sum += a
		}
		inv := 1 / sum
		for i := range x[:n] {
			x[i] *= inv
		}
		clear(x[n:])
	}
}

// checkSoftmax panics when p is too short for a causal softmax over rows
// rows (see softmaxRowsGo) or a row would be empty or past length.
func checkSoftmax(lenP, ld, rows, n0, length int) {
	if n0 < 1 || n0+rows-1 > length || length > ld && rows > 1 || lenP < (rows-1)*ld+length {
		panic(fmt.Sprintf("nn: softmax over %d rows from %d of %d (stride %d) with %d values", rows, n0, length, ld, lenP))
	}
}

// rmsNormRowsGo is RMSNorm over rows of d values: with res not nil it
// first writes sum = x + res and normalises that. The sum of squares runs
// in 16 lanes as in softmaxRowsGo; r = 1/sqrt(ss/d + eps) in float64;
// y = v·r·w, rstd[row] = r. The cgo build runs a vectorised C version of
// exactly these operations (same bits).
func rmsNormRowsGo(x, res, sum, w, y, rstd []float32, rows, d int, eps float64) {
	for r := 0; r < rows; r++ {
		xr := x[r*d : (r+1)*d]
		if res != nil {
			rr, sr := res[r*d:(r+1)*d], sum[r*d:(r+1)*d]
			for i, v := range xr {
				sr[i] = v + rr[i]
			}
			xr = sr
		}
		var acc [16]float32
		for i, v := range xr {
			acc[i%16] += v * v
		}
		var ss float32
		for _, a := range acc {
			ss += a
		}
		rs := float32(1 / math.Sqrt(float64(ss)/float64(d)+eps))
		rstd[r] = rs
		yr := y[r*d : (r+1)*d]
		for i, v := range xr {
			yr[i] = v * rs * w[i]
		}
	}
}

// checkNorm panics when an RMSNorm kernel's slices are too short for rows
// rows of d values (res and sum may both be empty).
func checkNorm(lenX, lenRes, lenSum, lenW, lenY, lenRstd, rows, d int) {
	n := rows * d
	if lenX < n || lenY < n || lenW < d || lenRstd < rows || (lenRes != 0 || lenSum != 0) && (lenRes < n || lenSum < n) {
		panic(fmt.Sprintf("nn: rmsnorm over %d×%d with slices of %d, %d, %d, %d, %d, %d", rows, d, lenX, lenRes, lenSum, lenW, lenY, lenRstd))
	}
}

// ropeRowsGo rotates rows rows of x (stride ld), each holding heads heads
// of 2·half values at position pos[row], by that position's cos and sin
// ([positions, half]); inverse applies the transposed rotation. The cgo
// build runs a vectorised C version of exactly these operations (same
// bits).
func ropeRowsGo(x []float32, ld, rows, heads, half int, cos, sin []float32, pos []int32, inverse bool) {
	for r := 0; r < rows; r++ {
		p := int(pos[r])
		c, s := cos[p*half:(p+1)*half], sin[p*half:(p+1)*half]
		for h := 0; h < heads; h++ {
			v := x[r*ld+h*2*half : r*ld+(h+1)*2*half]
			x1, x2 := v[:half], v[half:]
			if inverse {
				for i, a := range x1 {
					b := x2[i]
					x1[i] = a*c[i] + b*s[i]
					x2[i] = b*c[i] - a*s[i]
				}
				continue
			}
			for i, a := range x1 {
				b := x2[i]
				x1[i] = a*c[i] - b*s[i]
				x2[i] = b*c[i] + a*s[i]
			}
		}
	}
}

// checkRope panics when a RoPE kernel's slices are too short or a
// position is outside the tables.
func checkRope(lenX, ld, rows, heads, half, lenCos, lenSin int, pos []int32) {
	bad := len(pos) < rows || heads*2*half > ld && rows > 1 || lenX < (rows-1)*ld+heads*2*half
	for _, p := range pos[:min(rows, len(pos))] {
		if p < 0 || (int(p)+1)*half > min(lenCos, lenSin) {
			bad = true
		}
	}
	if bad {
		panic(fmt.Sprintf("nn: rope over %d rows of %d heads × %d (stride %d) with %d values, tables of %d, %d, %d positions",
			rows, heads, 2*half, ld, lenX, lenCos, lenSin, len(pos)))
	}
}
