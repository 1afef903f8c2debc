package nn

import (
	"math"
	"testing"
)

func TestExp32(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x < 88; x += 0.0137 {
		want := math.Exp(float64(x))
		got := float64(exp32(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 3e-7 {
		t.Fatalf("exp32 worst relative error %.3g", worst)
	}
	for _, tc := range []struct{ x, want float32 }{{-1000, 0}, {0, 1}} {
		if got := exp32(tc.x); math.Abs(float64(got-tc.want)) > 1e-30 {
			t.Errorf("exp32(%g) = %g, want %g", tc.x, got, tc.want)
		}
	}
	if got := exp32(1000); got < 1e38 {
		t.Errorf("exp32(1000) = %g, want a huge value", got)
	}
}

func BenchmarkExp32(b *testing.B) {
	xs := make([]float32, 4096)
	for i := range xs {
		xs[i] = float32(i)/256 - 8
	}
	var s float32
	for i := 0; i < b.N; i++ {
		for _, x := range xs {
			s += exp32(x)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(xs)), "ns/exp")
	_ = s
}

func BenchmarkExpInPlace32(b *testing.B) {
	src := make([]float32, 4096)
	for i := range src {
		src[i] = float32(i)/256 - 8
	}
	xs := make([]float32, len(src))
	for i := 0; i < b.N; i++ {
		copy(xs, src)
		expInPlace32(xs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(xs)), "ns/exp")
}

// TestExpKernelsAgree checks the build's exp kernel against the Go one bit
// for bit (they must agree so results do not depend on the build).
func TestExpKernelsAgree(t *testing.T) {
	var xs []float32
	for x := float32(-100); x < 100; x += 0.00731 {
		xs = append(xs, x)
	}
	xs = append(xs, float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 1e-30)
	a, b := append([]float32(nil), xs...), append([]float32(nil), xs...)
	expInPlace32(a)
	expInPlaceGo(b)
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("exp(%g): kernel %g, Go %g", xs[i], a[i], b[i])
		}
		if e := float64(exp32(xs[i])); float32(e) != b[i] {
			t.Fatalf("exp(%g): exp32 %g, expInPlaceGo %g", xs[i], e, b[i])
		}
	}
}
