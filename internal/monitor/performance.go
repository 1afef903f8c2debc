package monitor

import "math"

// Performance is the label-free estimate of a window's accuracy (CBPE)
// and, when true labels have arrived, the realised metrics.
type Performance struct {
	ExpectedAccuracy  float64   `json:"expected_accuracy"`
	ExpectedMacroF1   float64   `json:"expected_macro_f1"`
	ReferenceAccuracy float64   `json:"reference_accuracy"`
	Realised          *Realised `json:"realised,omitempty"`
}

// Realised is accuracy and macro-F1 over the window's labelled requests.
type Realised struct {
	Labelled int     `json:"labelled"`
	Accuracy float64 `json:"accuracy"`
	MacroF1  float64 `json:"macro_f1"`
}

// CBPE estimates performance without labels (confidence-based
// performance estimation, as NannyML): each request's class probabilities
// are calibrated one-vs-rest by the profile's calibrators and renormalized
// to sum 1, giving q_i. With ŷ_i the served prediction:
//
//	E[accuracy] = (1/n) Σ_i q_i[ŷ_i]
//	E[TP_k] = Σ_{ŷ_i = k} q_i[k]   E[FP_k] = Σ_{ŷ_i = k} (1 − q_i[k])
//	E[FN_k] = Σ_{ŷ_i ≠ k} q_i[k]   E[F1_k] ≈ 2E[TP_k] / (2E[TP_k] + E[FP_k] + E[FN_k])
//
// and the expected macro-F1 is the mean over classes of E[F1_k] (classes
// with a zero denominator count as F1 0, as sklearn's zero_division=0).
func CBPE(cal []Calibration, preds []int, probs [][]float64) (acc, macroF1 float64) {
	k := len(cal)
	if len(probs) == 0 || k == 0 {
		return math.NaN(), math.NaN()
	}
	tp, fp, fn := make([]float64, k), make([]float64, k), make([]float64, k)
	q := make([]float64, k)
	n := 0
	for i, p := range probs {
		if len(p) != k || preds[i] < 0 || preds[i] >= k {
			continue
		}
		n++
		var s float64
		for c := range q {
			q[c] = cal[c].Apply(p[c])
			s += q[c]
		}
		for c := range q {
			if s > 0 {
				q[c] /= s
			} else {
				q[c] = 1 / float64(k)
			}
		}
		acc += q[preds[i]]
		for c := range q {
			if c == preds[i] {
				tp[c] += q[c]
				fp[c] += 1 - q[c]
			} else {
				fn[c] += q[c]
			}
		}
	}
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	return acc / float64(n), macroF1From(tp, fp, fn)
}

func macroF1From(tp, fp, fn []float64) float64 {
	var s float64
	for c := range tp {
		if d := 2*tp[c] + fp[c] + fn[c]; d > 0 {
			s += 2 * tp[c] / d
		}
	}
	return s / float64(len(tp))
}

// Realise computes accuracy and macro-F1 over the pairs with truth ≥ 0
// and pred ≥ 0; macro-F1 averages over the k classes (zero_division=0).
// It returns nil when no request is labelled.
func Realise(preds, truth []int, k int) *Realised {
	tp, fp, fn := make([]float64, k), make([]float64, k), make([]float64, k)
	r := &Realised{}
	correct := 0
	for i, t := range truth {
		p := preds[i]
		if t < 0 || t >= k || p < 0 || p >= k {
			continue
		}
		r.Labelled++
		if p == t {
			correct++
			tp[p]++
		} else {
			fp[p]++
			fn[t]++
		}
	}
	if r.Labelled == 0 {
		return nil
	}
	r.Accuracy = float64(correct) / float64(r.Labelled)
	r.MacroF1 = macroF1From(tp, fp, fn)
	return r
}
