package nn

import "math"

// exp32 is a float32 exp with about 1 ulp error (Cephes expf): range
// reduction by ln 2 and a degree-6 polynomial. It is several times faster
// than math.Exp and deterministic.
func exp32(x float32) float32 {
	// Clamp so 2^n stays a normal float32; exp(-87.3) underflows to ~1e-38.
	x = max(min(x, 88.3762626647949), -87.3365447504)
	// n = round(x·log2 e) via the 1.5·2²³ rounding trick, branch-free.
	t := x*1.44269504088896341 + 12582912
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
	return y * math.Float32frombits(uint32(n+127)<<23)
}

// expT is exp for either precision: exp32 for float32, math.Exp otherwise.
func expT[T Float](x T) T {
	if is32[T]() {
		return T(exp32(float32(x)))
	}
	return T(math.Exp(float64(x)))
}
