package eval

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Hello, World!", []string{"hello", "world"}},
		{"a I x ok", []string{"ok"}},
		{"e-mail U.S. co_op 2024", []string{"mail", "co_op", "2024"}},
		{"Café naïve", []string{"café", "naïve"}},
		{"", nil},
	}
	for _, tc := range tests {
		if got := Tokenize(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Tokenize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTFIDFHandComputed(t *testing.T) {
	// Two documents: "red fish" and "blue fish fish". Unigrams and bigrams.
	v, err := FitTFIDF([]string{"red fish", "blue fish fish"}, TFIDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantVocab := []string{"blue", "blue fish", "fish", "fish fish", "red", "red fish"}
	if !slices.Equal(v.Vocab, wantVocab) {
		t.Fatalf("vocab %q, want %q", v.Vocab, wantVocab)
	}
	rare := math.Log(3.0/2) + 1 // df 1 of n 2
	common := 1.0               // df 2: ln(3/3) + 1
	for i, term := range v.Vocab {
		want := rare
		if term == "fish" {
			want = common
		}
		if math.Abs(v.IDF[i]-want) > 1e-15 {
			t.Errorf("idf(%q) = %v, want %v", term, v.IDF[i], want)
		}
	}
	for _, sub := range []bool{false, true} {
		v.opts.Sublinear = sub
		x := v.Transform("blue fish fish")
		tfFish := 2.0
		if sub {
			tfFish = 1 + math.Log(2)
		}
		// blue, blue fish, fish fish: tf 1 × rare; fish: tf × 1.
		raw := []float64{rare, rare, tfFish * common, rare}
		norm := math.Sqrt(3*rare*rare + tfFish*tfFish)
		if !slices.Equal(x.Idx, []int{0, 1, 2, 3}) {
			t.Fatalf("sublinear %v: indices %v", sub, x.Idx)
		}
		for k := range raw {
			if math.Abs(x.Val[k]-raw[k]/norm) > 1e-15 {
				t.Errorf("sublinear %v: value %d = %v, want %v", sub, k, x.Val[k], raw[k]/norm)
			}
		}
	}
	if x := v.Transform("green cat"); len(x.Idx) != 0 {
		t.Errorf("out-of-vocabulary document: %v", x)
	}
	if _, err := FitTFIDF([]string{"a b c", "!"}, TFIDFOptions{}); err == nil {
		t.Error("documents without tokens: want an error")
	}
}

func TestLogRegGradientAndOptimum(t *testing.T) {
	train := synthText(5, 80)
	for _, classes := range []int{2, 4} {
		t.Run(strings.Repeat("k", classes), func(t *testing.T) {
			var docs, labels []string
			for _, e := range train {
				if classes == 2 && e.Label != "sports" && e.Label != "tech" {
					continue
				}
				docs, labels = append(docs, e.Text), append(labels, e.Label)
			}
			vec, err := FitTFIDF(docs, TFIDFOptions{})
			if err != nil {
				t.Fatal(err)
			}
			x := vec.TransformAll(docs)
			m, err := FitLogReg(x, labels, len(vec.Vocab), LogRegOptions{C: 2})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Classes) != classes || (classes == 2) != (len(m.W) == 1) {
				t.Fatalf("%d classes, %d weight rows", len(m.Classes), len(m.W))
			}
			// Rebuild the problem and check the fitted θ is a stationary
			// point and the analytic gradient matches finite differences.
			p := &lrProblem{x: x, k: classes, rows: len(m.W), dim: len(vec.Vocab), c: 2}
			for _, l := range labels {
				p.y = append(p.y, slices.Index(m.Classes, l))
			}
			theta := slices.Concat(append(slices.Clone(m.W), m.B)...)
			g := make([]float64, len(theta))
			p.eval(theta, g)
			if maxAbs(g) > 1e-6 {
				t.Errorf("gradient at the fit: max |g| = %v", maxAbs(g))
			}
			probe := make([]float64, len(theta))
			for i := range probe {
				probe[i] = 0.01 * float64(i%7-3)
			}
			p.eval(probe, g)
			for _, i := range []int{0, 3, len(theta) / 2, len(theta) - 1} {
				h := 1e-6
				up, down := slices.Clone(probe), slices.Clone(probe)
				up[i] += h
				down[i] -= h
				scratch := make([]float64, len(theta))
				fd := (p.eval(up, scratch) - p.eval(down, scratch)) / (2 * h)
				if math.Abs(fd-g[i]) > 1e-6 {
					t.Errorf("∂f/∂θ[%d]: analytic %v, finite difference %v", i, g[i], fd)
				}
			}
			for _, xi := range x[:3] {
				s := 0.0
				for _, v := range m.Probs(xi) {
					s += v
				}
				if math.Abs(s-1) > 1e-12 {
					t.Errorf("probabilities sum to %v", s)
				}
			}
		})
	}
}

func TestMajorityBaseline(t *testing.T) {
	train := []TextExample{{"x", "b"}, {"y", "a"}, {"z", "b"}, {"w", "a"}, {"v", "c"}}
	test := []TextExample{{"x", "a"}, {"y", "b"}, {"z", "a"}}
	b, err := MajorityBaseline(train, test)
	if err != nil {
		t.Fatal(err)
	}
	// a and b tie at 2; a comes first. Predicting a: accuracy 2/3;
	// labels a, b: F1 a = 2·2/(2+3) = 0.8, F1 b = 0.
	if b.Name != BaselineMajority || !near(b.Metrics.Accuracy, 2.0/3) || !near(b.Metrics.MacroF1, 0.4) {
		t.Errorf("got %+v", b)
	}
	if _, err := MajorityBaseline(nil, test); err == nil || !strings.Contains(err.Error(), "empty training split") {
		t.Errorf("empty train: %v", err)
	}
	if _, err := TFIDFBaseline(train, []TextExample{{"x", ""}}, BaselineOptions{}); err == nil || !strings.Contains(err.Error(), "test example 0: empty label") {
		t.Errorf("empty label: %v", err)
	}
	if _, err := TFIDFBaseline([]TextExample{{"only one class", "a"}}, test, BaselineOptions{}); err == nil || !strings.Contains(err.Error(), "want at least 2") {
		t.Errorf("one class: %v", err)
	}
}
