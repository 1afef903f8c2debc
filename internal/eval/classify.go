package eval

import (
	"math"
	"slices"

	"github.com/tailor-ml/tailor/internal/errs"
)

// ECEBins is the number of equal-width confidence bins of the expected
// calibration error.
const ECEBins = 15

// probEps clips probabilities in the log loss to [probEps, 1-probEps], as
// scikit-learn's log_loss does.
const probEps = 1e-15

// probSumTol is how far the class probabilities of one prediction may sum
// from 1 before they are rejected (they are normalised either way).
const probSumTol = 1e-3

// ClassStats are one class's counts and scores. A class never predicted has
// precision 0; a class never gold has recall 0 (scikit-learn's
// zero_division=0).
type ClassStats struct {
	Label     string  `json:"label"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"`   // gold count
	Predicted int     `json:"predicted"` // predicted count
}

// ClassMetrics are the classification metrics of a set of predictions.
//
// Labels are the sorted union of gold and predicted labels; Classes and the
// rows and columns of Confusion follow that order, and MacroF1 is the
// unweighted mean F1 over them. Confusion[i][j] counts gold Labels[i]
// predicted as Labels[j].
//
// ECE and LogLoss are present only when the predictions carry Probs. ECE is
// the expected calibration error over ECEBins equal-width bins of the
// confidence c = the maximum class probability: bin b (0-based) holds
// c in (b/15, (b+1)/15], with c = 0 in bin 0; a prediction is correct when
// the class of maximum probability (ties: first in sorted label order) is
// the gold label; ECE = Σ_b (n_b/N)·|accuracy_b − mean confidence_b|.
// LogLoss is the mean of −ln p(gold), p clipped to [1e-15, 1−1e-15].
type ClassMetrics struct {
	N         int          `json:"n"`
	Accuracy  float64      `json:"accuracy"`
	MacroF1   float64      `json:"macro_f1"`
	Labels    []string     `json:"labels"`
	Classes   []ClassStats `json:"classes"`
	Confusion [][]int      `json:"confusion"`
	ECE       *float64     `json:"ece,omitempty"`
	LogLoss   *float64     `json:"log_loss,omitempty"`
}

// goldClasses counts the labels with gold records.
func (c *ClassMetrics) goldClasses() int {
	n := 0
	for _, cl := range c.Classes {
		if cl.Support > 0 {
			n++
		}
	}
	return n
}

// Classify computes the classification metrics of preds.
func Classify(preds []Prediction) (ClassMetrics, error) {
	d, err := newClassData(preds)
	if err != nil {
		return ClassMetrics{}, err
	}
	return d.metrics(), nil
}

// classData holds per-example values from which any classification metric
// can be computed on any multiset of example indices (for the bootstrap).
type classData struct {
	labels   []string
	gold     []int
	pred     []int
	hasProbs bool
	conf     []float64 // max probability
	topOK    []bool    // argmax class == gold
	pGold    []float64 // clipped normalised probability of gold
}

func newClassData(preds []Prediction) (*classData, error) {
	if len(preds) == 0 {
		return nil, errs.Invalid("classification metrics: no predictions")
	}
	set := map[string]bool{}
	for i, p := range preds {
		if p.Gold == "" {
			return nil, errs.Invalid("prediction %d%s: empty gold label", i, idNote(p.ID))
		}
		if p.Output == "" {
			return nil, errs.Invalid("prediction %d%s: empty predicted label", i, idNote(p.ID))
		}
		set[p.Gold], set[p.Output] = true, true
	}
	d := &classData{labels: sortedKeys(set), hasProbs: len(preds[0].Probs) > 0}
	pos := make(map[string]int, len(d.labels))
	for i, l := range d.labels {
		pos[l] = i
	}
	for i, p := range preds {
		d.gold = append(d.gold, pos[p.Gold])
		d.pred = append(d.pred, pos[p.Output])
		if (len(p.Probs) > 0) != d.hasProbs {
			return nil, errs.Invalid("prediction %d%s: probs must be given for every prediction or for none", i, idNote(p.ID))
		}
		if d.hasProbs {
			conf, top, pg, err := probStats(p)
			if err != nil {
				return nil, errs.Invalid("prediction %d%s: %v", i, idNote(p.ID), err)
			}
			d.conf = append(d.conf, conf)
			d.topOK = append(d.topOK, top == p.Gold)
			d.pGold = append(d.pGold, pg)
		}
	}
	return d, nil
}

// probStats validates one probability map and returns the confidence, the
// argmax label and the clipped normalised probability of the gold label.
func probStats(p Prediction) (conf float64, top string, pGold float64, err error) {
	keys := sortedKeys(p.Probs)
	sum := 0.0
	for _, k := range keys {
		v := p.Probs[k]
		if math.IsNaN(v) || v < 0 || v > 1 {
			return 0, "", 0, errs.Invalid("probability of class %q is %v, want a number in [0, 1]", k, v)
		}
		sum += v
	}
	if math.Abs(sum-1) > probSumTol {
		return 0, "", 0, errs.Invalid("class probabilities sum to %.6f, want 1", sum)
	}
	conf = -1
	for _, k := range keys {
		if v := p.Probs[k] / sum; v > conf {
			conf, top = v, k
		}
	}
	pGold = min(max(p.Probs[p.Gold]/sum, probEps), 1-probEps)
	return conf, top, pGold, nil
}

func idNote(id string) string {
	if id == "" {
		return ""
	}
	return " (id " + quote(id) + ")"
}

// eceBin returns the calibration bin of confidence c.
func eceBin(c float64) int {
	b := int(math.Ceil(c*ECEBins)) - 1
	return min(max(b, 0), ECEBins-1)
}

// counts returns per-label true positives, gold counts and predicted
// counts over idx, and the number of correct predictions.
func (d *classData) counts(idx []int) (tp, gold, pred []int, correct int) {
	tp, gold, pred = make([]int, len(d.labels)), make([]int, len(d.labels)), make([]int, len(d.labels))
	for _, i := range idx {
		g, p := d.gold[i], d.pred[i]
		gold[g]++
		pred[p]++
		if g == p {
			tp[g]++
			correct++
		}
	}
	return tp, gold, pred, correct
}

// macroF1 averages F1 = 2tp/(support+predicted) over the labels that occur
// as gold or prediction in the counted examples.
func macroF1(tp, gold, pred []int) float64 {
	sum, n := 0.0, 0
	for k := range tp {
		if gold[k]+pred[k] == 0 {
			continue
		}
		sum += 2 * float64(tp[k]) / float64(gold[k]+pred[k])
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func (d *classData) ece(idx []int) float64 {
	var n, ok [ECEBins]int
	var conf [ECEBins]float64
	for _, i := range idx {
		b := eceBin(d.conf[i])
		n[b]++
		conf[b] += d.conf[i]
		if d.topOK[i] {
			ok[b]++
		}
	}
	e := 0.0
	for b := range ECEBins {
		if n[b] == 0 {
			continue
		}
		e += math.Abs(float64(ok[b])-conf[b]) / float64(len(idx))
	}
	return e
}

func (d *classData) logLoss(idx []int) float64 {
	s := 0.0
	for _, i := range idx {
		s -= math.Log(d.pGold[i])
	}
	return s / float64(len(idx))
}

// metric computes one named metric over idx; ok is false for a name this
// task does not have (or ece/log_loss without probabilities).
func (d *classData) metric(name string, idx []int) (float64, bool) {
	switch name {
	case "accuracy":
		_, _, _, c := d.counts(idx)
		return float64(c) / float64(len(idx)), true
	case "macro_f1":
		tp, g, p, _ := d.counts(idx)
		return macroF1(tp, g, p), true
	case "ece":
		if d.hasProbs {
			return d.ece(idx), true
		}
	case "log_loss":
		if d.hasProbs {
			return d.logLoss(idx), true
		}
	}
	return 0, false
}

func (d *classData) metrics() ClassMetrics {
	idx := identity(len(d.gold))
	tp, gold, pred, correct := d.counts(idx)
	m := ClassMetrics{
		N:         len(idx),
		Accuracy:  float64(correct) / float64(len(idx)),
		MacroF1:   macroF1(tp, gold, pred),
		Labels:    slices.Clone(d.labels),
		Confusion: make([][]int, len(d.labels)),
	}
	for k, l := range d.labels {
		c := ClassStats{Label: l, Support: gold[k], Predicted: pred[k]}
		if pred[k] > 0 {
			c.Precision = float64(tp[k]) / float64(pred[k])
		}
		if gold[k] > 0 {
			c.Recall = float64(tp[k]) / float64(gold[k])
		}
		c.F1 = 2 * float64(tp[k]) / float64(gold[k]+pred[k])
		m.Classes = append(m.Classes, c)
		m.Confusion[k] = make([]int, len(d.labels))
	}
	for i := range d.gold {
		m.Confusion[d.gold[i]][d.pred[i]]++
	}
	if d.hasProbs {
		e, ll := d.ece(idx), d.logLoss(idx)
		m.ECE, m.LogLoss = &e, &ll
	}
	return m
}

func identity(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
