package monitor

import (
	"math"
	"testing"
)

func TestCBPEThresholdShrinksWithTheWindow(t *testing.T) {
	o := Options{}.withDefaults()
	if z := -normQuantile(0.005); math.Abs(z-2.5758293035489004) > 1e-12 {
		t.Fatalf("Φ⁻¹(0.995) = %v, scipy.stats.norm.ppf gives 2.5758293035489004", z)
	}
	for _, tc := range []struct {
		spread float64
		n      int
		want   float64
	}{
		{0.3, 30, 0.05 + 2.5758293035489004*0.3/math.Sqrt(30)},
		{0.3, 3000, 0.05 + 2.5758293035489004*0.3/math.Sqrt(3000)},
		{0, 30, 0.05},
	} {
		if got := cbpeThreshold(tc.spread, tc.n, o); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("cbpeThreshold(%v, %d) = %v, want %v", tc.spread, tc.n, got, tc.want)
		}
	}
	if !math.IsNaN(cbpeThreshold(0.9, 0, o)) {
		t.Error("an empty window has a threshold")
	}
}

func TestProfileExpectedFallsBackToAccuracy(t *testing.T) {
	for _, tc := range []struct {
		p             Profile
		level, spread float64
	}{
		{Profile{Accuracy: 0.9, ExpectedAccuracy: 0.85, ExpectedSpread: 0.2}, 0.85, 0.2},
		{Profile{Accuracy: 0.9}, 0.9, 0.3},
		{Profile{Accuracy: 1}, 1, 0},
	} {
		level, spread := tc.p.expected()
		if math.Abs(level-tc.level) > 1e-12 || math.Abs(spread-tc.spread) > 1e-12 {
			t.Errorf("%+v: expected() = %v, %v; want %v, %v", tc.p, level, spread, tc.level, tc.spread)
		}
	}
}
