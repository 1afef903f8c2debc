package eval

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

const tol = 1e-12

func near(a, b float64) bool { return math.Abs(a-b) <= tol }

// labelled builds predictions from parallel gold and predicted labels.
func labelled(gold, pred []string) []Prediction {
	out := make([]Prediction, len(gold))
	for i := range gold {
		out[i] = Prediction{Gold: gold[i], Output: pred[i]}
	}
	return out
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		gold      []string
		pred      []string
		acc, mf1  float64
		labels    []string
		classes   []ClassStats
		confusion [][]int
	}{
		{
			name: "three classes, one never predicted",
			gold: []string{"a", "a", "b", "b", "c"},
			pred: []string{"a", "b", "b", "b", "a"},
			acc:  0.6, mf1: (0.5 + 0.8 + 0) / 3,
			labels: []string{"a", "b", "c"},
			classes: []ClassStats{
				{Label: "a", Precision: 0.5, Recall: 0.5, F1: 0.5, Support: 2, Predicted: 2},
				{Label: "b", Precision: 2.0 / 3, Recall: 1, F1: 0.8, Support: 2, Predicted: 3},
				{Label: "c", Precision: 0, Recall: 0, F1: 0, Support: 1, Predicted: 0},
			},
			confusion: [][]int{{1, 1, 0}, {0, 2, 0}, {1, 0, 0}},
		},
		{
			name: "single class",
			gold: []string{"x", "x", "x"},
			pred: []string{"x", "x", "x"},
			acc:  1, mf1: 1,
			labels:    []string{"x"},
			classes:   []ClassStats{{Label: "x", Precision: 1, Recall: 1, F1: 1, Support: 3, Predicted: 3}},
			confusion: [][]int{{3}},
		},
		{
			name: "predicted label never gold",
			gold: []string{"a", "a"},
			pred: []string{"a", "z"},
			acc:  0.5, mf1: (2.0 / 3) / 2,
			labels: []string{"a", "z"},
			classes: []ClassStats{
				{Label: "a", Precision: 1, Recall: 0.5, F1: 2.0 / 3, Support: 2, Predicted: 1},
				{Label: "z", Precision: 0, Recall: 0, F1: 0, Support: 0, Predicted: 1},
			},
			confusion: [][]int{{1, 1}, {0, 0}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Classify(labelled(tc.gold, tc.pred))
			if err != nil {
				t.Fatal(err)
			}
			if m.N != len(tc.gold) || !near(m.Accuracy, tc.acc) || !near(m.MacroF1, tc.mf1) {
				t.Errorf("n %d accuracy %v macro-F1 %v, want %d %v %v", m.N, m.Accuracy, m.MacroF1, len(tc.gold), tc.acc, tc.mf1)
			}
			if !slices.Equal(m.Labels, tc.labels) {
				t.Errorf("labels %v, want %v", m.Labels, tc.labels)
			}
			for i, c := range m.Classes {
				w := tc.classes[i]
				if c.Label != w.Label || c.Support != w.Support || c.Predicted != w.Predicted ||
					!near(c.Precision, w.Precision) || !near(c.Recall, w.Recall) || !near(c.F1, w.F1) {
					t.Errorf("class %d: %+v, want %+v", i, c, w)
				}
			}
			if !slices.EqualFunc(m.Confusion, tc.confusion, slices.Equal) {
				t.Errorf("confusion %v, want %v", m.Confusion, tc.confusion)
			}
			if m.ECE != nil || m.LogLoss != nil {
				t.Error("ECE or log loss set without probabilities")
			}
		})
	}
}

func TestClassifyCalibration(t *testing.T) {
	p := func(gold string, pa, pb float64) Prediction {
		out := "a"
		if pb > pa {
			out = "b"
		}
		return Prediction{Gold: gold, Output: out, Probs: map[string]float64{"a": pa, "b": pb}}
	}
	preds := []Prediction{
		p("a", 0.9, 0.1),   // conf 0.9, bin 13, correct
		p("b", 0.7, 0.3),   // conf 0.7, bin 10, wrong
		p("b", 0.1, 0.9),   // conf 0.9, bin 13, correct
		p("a", 0.62, 0.38), // conf 0.62, bin 9, correct
	}
	m, err := Classify(preds)
	if err != nil {
		t.Fatal(err)
	}
	// Bin 13: 2 examples, accuracy 1, confidence 0.9; bin 10: 1, 0, 0.7;
	// bin 9: 1, 1, 0.62.
	wantECE := 2.0/4*0.1 + 1.0/4*0.7 + 1.0/4*0.38
	wantLL := -(math.Log(0.9) + math.Log(0.3) + math.Log(0.9) + math.Log(0.62)) / 4
	if m.ECE == nil || math.Abs(*m.ECE-wantECE) > 1e-12 {
		t.Errorf("ECE %v, want %v", m.ECE, wantECE)
	}
	if m.LogLoss == nil || math.Abs(*m.LogLoss-wantLL) > 1e-12 {
		t.Errorf("log loss %v, want %v", m.LogLoss, wantLL)
	}
}

func TestECEBin(t *testing.T) {
	tests := []struct {
		conf float64
		bin  int
	}{{0, 0}, {0.01, 0}, {1.0 / 15, 0}, {0.07, 1}, {0.5, 7}, {0.99, 14}, {1, 14}}
	for _, tc := range tests {
		if got := eceBin(tc.conf); got != tc.bin {
			t.Errorf("eceBin(%v) = %d, want %d", tc.conf, got, tc.bin)
		}
	}
}

func TestLogLossClipsZeroProbability(t *testing.T) {
	m, err := Classify([]Prediction{{Gold: "a", Output: "b", Probs: map[string]float64{"b": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := -math.Log(probEps); math.Abs(*m.LogLoss-want) > 1e-9 {
		t.Errorf("log loss %v, want %v", *m.LogLoss, want)
	}
}

func TestClassifyErrors(t *testing.T) {
	tests := []struct {
		name  string
		preds []Prediction
		want  string
	}{
		{"empty", nil, "no predictions"},
		{"empty gold", []Prediction{{Gold: "a", Output: "a"}, {ID: "x7", Output: "a"}}, `prediction 1 (id "x7"): empty gold label`},
		{"empty output", []Prediction{{Gold: "a"}}, "prediction 0: empty predicted label"},
		{"probs on some", []Prediction{{Gold: "a", Output: "a", Probs: map[string]float64{"a": 1}}, {Gold: "a", Output: "a"}}, "prediction 1: probs must be given for every prediction or for none"},
		{"probs sum", []Prediction{{Gold: "a", Output: "a", Probs: map[string]float64{"a": 0.5, "b": 0.2}}}, "sum to 0.700000"},
		{"negative prob", []Prediction{{Gold: "a", Output: "a", Probs: map[string]float64{"a": 1.1, "b": -0.1}}}, `class "a" is 1.1`},
		{"nan prob", []Prediction{{Gold: "a", Output: "a", Probs: map[string]float64{"a": math.NaN()}}}, "NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Classify(tc.preds)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("error kind %s, want invalid", errs.Kind(err))
			}
		})
	}
}
