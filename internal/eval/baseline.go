package eval

import (
	"fmt"

	"github.com/tailor-ml/tailor/internal/errs"
)

// TextExample is one labelled text of a classification split.
type TextExample struct {
	Text  string `json:"text"`
	Label string `json:"label"`
}

// BaselineOptions configure the TF-IDF + logistic-regression baseline.
type BaselineOptions struct {
	TFIDF  TFIDFOptions  `json:"tfidf"`
	LogReg LogRegOptions `json:"logreg"`
}

// Baseline is one reference model's metrics on the test split.
type Baseline struct {
	Name    string       `json:"name"` // "majority" or "tfidf_logreg"
	Metrics ClassMetrics `json:"metrics"`
}

// Baseline names.
const (
	BaselineMajority = "majority"
	BaselineTFIDF    = "tfidf_logreg"
)

// Baselines fits both baselines on train and scores them on test.
func Baselines(train, test []TextExample, opts BaselineOptions) ([]Baseline, error) {
	maj, err := MajorityBaseline(train, test)
	if err != nil {
		return nil, err
	}
	tf, err := TFIDFBaseline(train, test, opts)
	if err != nil {
		return nil, err
	}
	return []Baseline{maj, tf}, nil
}

func checkSplits(train, test []TextExample) error {
	if len(train) == 0 {
		return errs.Invalid("baseline: empty training split")
	}
	if len(test) == 0 {
		return errs.Invalid("baseline: empty test split")
	}
	for _, sp := range []struct {
		name string
		ex   []TextExample
	}{{"train", train}, {"test", test}} {
		for i, e := range sp.ex {
			if e.Label == "" {
				return errs.Invalid("baseline: %s example %d: empty label", sp.name, i)
			}
		}
	}
	return nil
}

// MajorityBaseline predicts the most frequent training label (ties: first
// in sorted order) for every test example, with the training label
// frequencies as its probabilities.
func MajorityBaseline(train, test []TextExample) (Baseline, error) {
	if err := checkSplits(train, test); err != nil {
		return Baseline{}, err
	}
	freq := map[string]int{}
	for _, e := range train {
		freq[e.Label]++
	}
	best := ""
	probs := map[string]float64{}
	for _, l := range sortedKeys(freq) {
		if best == "" || freq[l] > freq[best] {
			best = l
		}
		probs[l] = float64(freq[l]) / float64(len(train))
	}
	preds := make([]Prediction, len(test))
	for i, e := range test {
		preds[i] = Prediction{Gold: e.Label, Output: best, Probs: probs}
	}
	m, err := Classify(preds)
	if err != nil {
		return Baseline{}, fmt.Errorf("majority baseline: %w", err)
	}
	return Baseline{Name: BaselineMajority, Metrics: m}, nil
}

// TFIDFBaseline fits TF-IDF features and a logistic regression on train
// and scores them on test.
func TFIDFBaseline(train, test []TextExample, opts BaselineOptions) (Baseline, error) {
	if err := checkSplits(train, test); err != nil {
		return Baseline{}, err
	}
	preds, err := TFIDFPredict(train, test, opts)
	if err != nil {
		return Baseline{}, err
	}
	m, err := Classify(preds)
	if err != nil {
		return Baseline{}, fmt.Errorf("tfidf baseline: %w", err)
	}
	return Baseline{Name: BaselineTFIDF, Metrics: m}, nil
}

// TFIDFPredict fits the TF-IDF + logistic-regression baseline on train and
// returns its predictions (with probabilities) on test.
func TFIDFPredict(train, test []TextExample, opts BaselineOptions) ([]Prediction, error) {
	docs, labels := make([]string, len(train)), make([]string, len(train))
	for i, e := range train {
		docs[i], labels[i] = e.Text, e.Label
	}
	vec, err := FitTFIDF(docs, opts.TFIDF)
	if err != nil {
		return nil, fmt.Errorf("tfidf baseline: %w", err)
	}
	model, err := FitLogReg(vec.TransformAll(docs), labels, len(vec.Vocab), opts.LogReg)
	if err != nil {
		return nil, fmt.Errorf("tfidf baseline: %w", err)
	}
	preds := make([]Prediction, len(test))
	for i, e := range test {
		x := vec.Transform(e.Text)
		p := model.Probs(x)
		probs := make(map[string]float64, len(p))
		for k, c := range model.Classes {
			probs[c] = p[k]
		}
		preds[i] = Prediction{Gold: e.Label, Output: model.Predict(x), Probs: probs}
	}
	return preds, nil
}
