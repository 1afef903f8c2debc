// Package eval owns model evaluation: classification and generation metrics,
// latency percentiles and cost/energy per 1k predictions, metrics per slice,
// the majority-class and TF-IDF + logistic-regression baselines, promotion
// gates (thresholds, ceilings, and a paired bootstrap against a champion),
// and the deterministic Report with its JSON and Markdown renderings.
//
// It is pure: it takes predictions and labels and returns numbers. It must
// not import internal/store, internal/blob, internal/engine or anything that
// does I/O beyond what a caller hands it; it imports only internal/errs and
// the standard library.
//
// The usual entry point is Evaluate; the pieces (Classify, Generate,
// LatencyOf, CostOf, Baselines, PairedBootstrap, Decide) are exported for
// callers that need only one of them.
package eval

import (
	"fmt"
	"slices"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Task says which family of metrics applies.
type Task string

// Tasks Evaluate understands.
const (
	TaskClassify Task = "classify" // Gold and Output are labels; Probs optional
	TaskGenerate Task = "generate" // Gold is the reference text, Output the generation
)

// Prediction is one model output on one eval example.
type Prediction struct {
	// ID names the example; Evaluate pairs candidate and champion by ID
	// (or by position when every ID is empty).
	ID string `json:"id,omitempty"`
	// Gold is the gold label (classify) or the reference text (generate).
	Gold string `json:"gold"`
	// Output is the predicted label (classify) or the generated text.
	Output string `json:"output"`
	// Probs holds class probabilities (classify only, optional: given for
	// every prediction or for none). They are normalised to sum to 1.
	Probs map[string]float64 `json:"probs,omitempty"`
	// Latency of this prediction (optional: all or none).
	Latency time.Duration `json:"latency_ns,omitempty"`
	// CPUSeconds spent on this prediction (optional: all or none).
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	// Fields are record fields (language, source, length bucket …) that a
	// Slicer may read.
	Fields map[string]string `json:"fields,omitempty"`
}

// Slicer groups predictions: Key gives the slice value of one prediction,
// and metrics are computed for every value as slice "Name=value". An empty
// key leaves the prediction out of that slicer's slices (it still counts in
// "all").
type Slicer struct {
	Name string
	Key  func(p Prediction) string
}

// ByField returns a Slicer on the record field name.
func ByField(name string) Slicer {
	return Slicer{Name: name, Key: func(p Prediction) string { return p.Fields[name] }}
}

// SliceAll is the slice holding every prediction.
const SliceAll = "all"

// Options configure Evaluate. The zero value evaluates a classification
// task with no slices, no baselines and no gates.
type Options struct {
	Task      Task
	Generate  GenOptions       // generate task: regex and schema checks
	Slicers   []Slicer         // extra slices besides "all"
	Gates     []Gate           // none: the report has no verdict
	Bootstrap BootstrapOptions // for not_worse gates
	Energy    EnergyModel      // for cost and energy per 1k predictions
	Baseline  BaselineOptions  // for baselines when Input.Train is given
}

// Input is what one evaluation looks at.
type Input struct {
	Inputs    Inputs       // identities recorded in the report
	Candidate []Prediction // the model under evaluation
	Champion  []Prediction // optional: the current champion on the same examples
	// Train and Test, when Train is non-empty, are the text/label splits the
	// baselines fit and score on (classify only).
	Train, Test []TextExample
	// Forgetting, when set, adds the forgetting gate of an incremental
	// run: the report gets a Forgetting section and its verdict the gate.
	Forgetting *ForgettingInput
}

// Evaluate computes every metric, slice, baseline and gate for one
// candidate and returns the report.
func Evaluate(in Input, opts Options) (*Report, error) {
	if opts.Task == "" {
		opts.Task = TaskClassify
	}
	cand, err := Score(opts.Task, in.Candidate, opts.Generate)
	if err != nil {
		return nil, fmt.Errorf("candidate: %w", err)
	}
	rep := &Report{Inputs: in.Inputs, Task: opts.Task}
	if rep.Slices, err = sliceMetrics(opts.Task, in.Candidate, opts.Slicers, opts.Generate); err != nil {
		return nil, err
	}
	if rep.Latency, err = latencyOfPredictions(in.Candidate); err != nil {
		return nil, err
	}
	if rep.Cost, err = costOfPredictions(in.Candidate, opts.Energy); err != nil {
		return nil, err
	}
	if len(in.Train) > 0 {
		if opts.Task != TaskClassify {
			return nil, errs.Invalid("baselines: only the classify task has baselines, not %q", opts.Task)
		}
		if rep.Baselines, err = Baselines(in.Train, in.Test, opts.Baseline); err != nil {
			return nil, err
		}
	}
	if err := decideGates(rep, cand, in, opts); err != nil {
		return nil, err
	}
	if f := in.Forgetting; f != nil {
		fg, err := ForgettingGate(*f)
		if err != nil {
			return nil, err
		}
		rep.Forgetting = &fg
		if rep.Verdict == nil {
			rep.Verdict = &Verdict{Pass: true}
		}
		rep.Verdict.Pass = rep.Verdict.Pass && fg.Gate.Pass
		rep.Verdict.Gates = append(rep.Verdict.Gates, fg.Gate)
	}
	return rep, nil
}

// decideGates sets rep.Verdict from opts.Gates (none: no verdict).
func decideGates(rep *Report, cand *Scores, in Input, opts Options) error {
	if len(opts.Gates) == 0 {
		return nil
	}
	gi := GateInput{Report: rep, Candidate: cand, Bootstrap: opts.Bootstrap}
	if len(in.Champion) > 0 {
		champ, err := alignChampion(in.Candidate, in.Champion)
		if err != nil {
			return err
		}
		if gi.Champion, err = Score(opts.Task, champ, opts.Generate); err != nil {
			return fmt.Errorf("champion: %w", err)
		}
		gi.SliceIndex = sliceIndex(in.Candidate, opts.Slicers)
	}
	v, err := Decide(opts.Gates, gi)
	if err != nil {
		return err
	}
	rep.Verdict = &v
	return nil
}

// alignChampion returns the champion predictions in candidate order: by ID
// when the candidate has IDs, else by position.
func alignChampion(cand, champ []Prediction) ([]Prediction, error) {
	if len(cand) != len(champ) {
		return nil, errs.Invalid("champion: %d predictions, candidate has %d; both must cover the same examples", len(champ), len(cand))
	}
	if !slices.ContainsFunc(cand, func(p Prediction) bool { return p.ID != "" }) {
		return champ, nil
	}
	byID := make(map[string]int, len(champ))
	for i, p := range champ {
		if _, dup := byID[p.ID]; dup {
			return nil, errs.Invalid("champion prediction %d: duplicate id %q", i, p.ID)
		}
		byID[p.ID] = i
	}
	out := make([]Prediction, len(cand))
	seen := make(map[string]bool, len(cand))
	for i, p := range cand {
		if seen[p.ID] {
			return nil, errs.Invalid("candidate prediction %d: duplicate id %q", i, p.ID)
		}
		seen[p.ID] = true
		j, ok := byID[p.ID]
		if !ok {
			return nil, errs.Invalid("candidate prediction %d: id %q has no champion prediction", i, p.ID)
		}
		if champ[j].Gold != p.Gold {
			return nil, errs.Invalid("example %q: candidate gold %q differs from champion gold %q", p.ID, p.Gold, champ[j].Gold)
		}
		out[i] = champ[j]
	}
	return out, nil
}
