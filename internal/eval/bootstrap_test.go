package eval

import (
	"fmt"
	"testing"
)

func TestSplitMix64Reference(t *testing.T) {
	// The published SplitMix64 sequence for seed 0.
	want := []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}
	r := splitMix64{}
	for i, w := range want {
		if got := r.next(); got != w {
			t.Errorf("output %d: %#x, want %#x", i, got, w)
		}
	}
	counts := make([]int, 7)
	for range 7000 {
		counts[r.intn(7)]++
	}
	for v, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("intn(7) drew %d %d times in 7000, want about 1000", v, c)
		}
	}
}

// accuracyPreds returns n predictions of which the first ⌊acc·n⌋, spread
// by a stride so that they are not contiguous, are correct.
func accuracyPreds(n int, acc float64, stride int) []Prediction {
	out := make([]Prediction, n)
	correct := int(acc * float64(n))
	for i := range out {
		gold := fmt.Sprint("c", i%3)
		out[i] = Prediction{ID: fmt.Sprint(i), Gold: gold, Output: gold}
	}
	for k := correct; k < n; k++ {
		i := (k * stride) % n
		out[i].Output = fmt.Sprint("c", (i+1)%3)
	}
	return out
}

func mustScore(t *testing.T, preds []Prediction) *Scores {
	t.Helper()
	s, err := Score(TaskClassify, preds, GenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPairedBootstrapDeterministic(t *testing.T) {
	cand := mustScore(t, accuracyPreds(200, 0.82, 7))
	champ := mustScore(t, accuracyPreds(200, 0.80, 11))
	for _, metric := range []string{"accuracy", "macro_f1"} {
		t.Run(metric, func(t *testing.T) {
			opts := BootstrapOptions{Seed: 42}
			a, err := PairedBootstrap(metric, cand, champ, opts)
			if err != nil {
				t.Fatal(err)
			}
			b, err := PairedBootstrap(metric, cand, champ, opts)
			if err != nil {
				t.Fatal(err)
			}
			if a != b {
				t.Errorf("same seed, different results: %+v vs %+v", a, b)
			}
			c, err := PairedBootstrap(metric, cand, champ, BootstrapOptions{Seed: 43})
			if err != nil {
				t.Fatal(err)
			}
			if c.Lower == a.Lower {
				t.Errorf("seeds 42 and 43 gave the same lower bound %v; the seed is not used", a.Lower)
			}
			if a.Delta != c.Delta || a.Resamples != 1000 || a.Confidence != 0.95 {
				t.Errorf("delta %v/%v resamples %d confidence %v", a.Delta, c.Delta, a.Resamples, a.Confidence)
			}
			if a.Lower > a.Delta {
				t.Errorf("lower bound %v above the observed delta %v", a.Lower, a.Delta)
			}
		})
	}
}

func TestPairedBootstrapDecides(t *testing.T) {
	tests := []struct {
		name        string
		cand, champ float64
		metric      string
		epsilon     float64
		pass        bool
	}{
		{"clearly better", 0.90, 0.70, "accuracy", 0.01, true},
		{"clearly worse", 0.60, 0.80, "accuracy", 0.01, false},
		{"clearly worse macro-F1", 0.60, 0.80, "macro_f1", 0.01, false},
		{"same within generous epsilon", 0.80, 0.80, "accuracy", 0.10, true},
		{"slightly worse, tight epsilon", 0.78, 0.80, "accuracy", 0.0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cand := mustScore(t, accuracyPreds(300, tc.cand, 7))
			champ := mustScore(t, accuracyPreds(300, tc.champ, 13))
			r, err := PairedBootstrap(tc.metric, cand, champ, BootstrapOptions{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Lower >= -tc.epsilon; got != tc.pass {
				t.Errorf("delta %v lower %v epsilon %v: pass %v, want %v", r.Delta, r.Lower, tc.epsilon, got, tc.pass)
			}
		})
	}
}

func TestPairedBootstrapLowerIsBetter(t *testing.T) {
	mk := func(pGold float64) []Prediction {
		var out []Prediction
		for range 100 {
			out = append(out, Prediction{Gold: "a", Output: "a", Probs: map[string]float64{"a": pGold, "b": 1 - pGold}})
		}
		return out
	}
	good, bad := mustScore(t, mk(0.9)), mustScore(t, mk(0.6))
	r, err := PairedBootstrap("log_loss", good, bad, BootstrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Delta <= 0 || r.Lower <= 0 {
		t.Errorf("lower log loss must count as better: delta %v lower %v", r.Delta, r.Lower)
	}
}

func TestPairedBootstrapErrors(t *testing.T) {
	a := mustScore(t, accuracyPreds(10, 0.5, 3))
	b := mustScore(t, accuracyPreds(12, 0.5, 3))
	tests := []struct {
		name   string
		metric string
		champ  *Scores
		opts   BootstrapOptions
	}{
		{"different sizes", "accuracy", b, BootstrapOptions{}},
		{"unknown metric", "bleu", a, BootstrapOptions{}},
		{"no probabilities", "ece", a, BootstrapOptions{}},
		{"bad confidence", "accuracy", a, BootstrapOptions{Confidence: 1.5}},
		{"negative resamples", "accuracy", a, BootstrapOptions{Resamples: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := PairedBootstrap(tc.metric, a, tc.champ, tc.opts); err == nil {
				t.Error("want an error")
			}
		})
	}
}
