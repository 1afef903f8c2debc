package eval

import (
	"fmt"

	"github.com/tailor-ml/tailor/internal/errs"
)

// SliceMetrics are the metrics of one slice; exactly one of Classify and
// Generate is set, by task.
type SliceMetrics struct {
	Slice    string        `json:"slice"` // "all" or "name=value"
	N        int           `json:"n"`
	Classify *ClassMetrics `json:"classify,omitempty"`
	Generate *GenMetrics   `json:"generate,omitempty"`
}

// ScalarMetrics are the names Value knows, classify's then generate's.
var ScalarMetrics = []string{"accuracy", "macro_f1", "ece", "log_loss",
	"exact_match", "contains", "token_f1", "json_valid", "regex_match", "schema_valid"}

// Value returns a scalar metric by name: accuracy, macro_f1, ece, log_loss
// (classify); exact_match, contains, token_f1, json_valid, regex_match,
// schema_valid (generate). ok is false when the slice lacks it.
func (s SliceMetrics) Value(metric string) (v float64, ok bool) {
	if c := s.Classify; c != nil {
		switch metric {
		case "accuracy":
			return c.Accuracy, true
		case "macro_f1":
			return c.MacroF1, true
		case "ece":
			return deref(c.ECE)
		case "log_loss":
			return deref(c.LogLoss)
		}
	}
	if g := s.Generate; g != nil {
		switch metric {
		case "exact_match":
			return g.ExactMatch, true
		case "contains":
			return g.Contains, true
		case "token_f1":
			return g.TokenF1, true
		case "json_valid":
			return g.JSONValid, true
		case "regex_match":
			return deref(g.RegexMatch)
		case "schema_valid":
			return deref(g.SchemaValid)
		}
	}
	return 0, false
}

func deref(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
}

// sliceIndex maps every slice name to the indices of its predictions:
// "all" first in Slices order, then "name=value" slices, sorted.
func sliceIndex(preds []Prediction, slicers []Slicer) map[string][]int {
	out := map[string][]int{SliceAll: identity(len(preds))}
	for _, s := range slicers {
		for i, p := range preds {
			if k := s.Key(p); k != "" {
				name := s.Name + "=" + k
				out[name] = append(out[name], i)
			}
		}
	}
	return out
}

// SliceNames returns the slice names of idx: "all" first, then sorted.
func sliceNames(idx map[string][]int) []string {
	names := []string{SliceAll}
	for _, n := range sortedKeys(idx) {
		if n != SliceAll {
			names = append(names, n)
		}
	}
	return names
}

// sliceMetrics computes the metrics of "all" and of every slice.
func sliceMetrics(task Task, preds []Prediction, slicers []Slicer, gen GenOptions) ([]SliceMetrics, error) {
	for i, s := range slicers {
		if s.Name == "" || s.Key == nil {
			return nil, errs.Invalid("slicer %d: want a name and a key function", i)
		}
		if s.Name == SliceAll {
			return nil, errs.Invalid("slicer %d: the name %q is reserved", i, SliceAll)
		}
	}
	idx := sliceIndex(preds, slicers)
	var out []SliceMetrics
	for _, name := range sliceNames(idx) {
		sub := make([]Prediction, len(idx[name]))
		for j, i := range idx[name] {
			sub[j] = preds[i]
		}
		sm := SliceMetrics{Slice: name, N: len(sub)}
		switch task {
		case TaskClassify:
			m, err := Classify(sub)
			if err != nil {
				return nil, fmt.Errorf("slice %s: %w", name, err)
			}
			sm.Classify = &m
		case TaskGenerate:
			m, err := Generate(sub, gen)
			if err != nil {
				return nil, fmt.Errorf("slice %s: %w", name, err)
			}
			sm.Generate = &m
		default:
			return nil, errs.Invalid("task %q: want %q or %q", task, TaskClassify, TaskGenerate)
		}
		out = append(out, sm)
	}
	return out, nil
}
