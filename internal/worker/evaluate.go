package worker

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"syscall"
	"time"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/recipe"
)

// labeled is one evaluation example with what the report needs besides tokens.
type labeled struct {
	ex     engine.Example
	id     string
	text   string
	label  string
	fields map[string]string
}

// predictClassify runs the model over set in batches and returns one
// prediction per example, with per-example latency and CPU time measured
// per batch.
func predictClassify(m *model.Model, set []labeled, labels []string, batch int) ([]eval.Prediction, error) {
	if batch <= 0 {
		batch = 8
	}
	out := make([]eval.Prediction, 0, len(set))
	for lo := 0; lo < len(set); lo += batch {
		rows := set[lo:min(lo+batch, len(set))]
		exs := make([]engine.Example, len(rows))
		for i, r := range rows {
			exs[i] = r.ex
		}
		cpu0, t0 := cpuSeconds(), time.Now()
		probs, err := m.Forward(engine.Batch{Examples: exs})
		if err != nil {
			return nil, err
		}
		lat := time.Since(t0) / time.Duration(len(rows))
		cpu := (cpuSeconds() - cpu0) / float64(len(rows))
		k := probs.Shape[len(probs.Shape)-1]
		for i, r := range rows {
			out = append(out, classPrediction(r, probs.Data[i*k:(i+1)*k], labels, lat, cpu))
		}
	}
	return out, nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// evalSplit is the split the recipe's suite evaluates on.
func evalSplit(r *recipe.Recipe) string {
	for _, s := range r.Eval.Suite {
		if s.Split != "" {
			return s.Split
		}
	}
	return r.Data.EvalSplit
}

// evalMetric maps a recipe metric name to the eval package's.
func evalMetric(m string) string {
	if m == "regex" {
		return "regex_match"
	}
	return m
}

// gates turns the recipe's gates into eval gates. Gates against a champion
// are dropped (and named in skipped) when there is no champion yet.
func gates(r *recipe.Recipe, haveChampion bool) (out []eval.Gate, skipped []string) {
	suite := map[string]string{}
	for _, s := range r.Eval.Suite {
		suite[s.Name] = s.Metric
	}
	for _, g := range r.Eval.Gates {
		metric := g.Metric
		if m, ok := suite[metric]; ok {
			metric = m
		}
		switch {
		case g.Metric == "latency_p95_ms":
			out = append(out, eval.Gate{Kind: eval.GateLatency, Metric: "p95_ms", Op: "<=", Value: g.Value})
		case g.Metric == "cost_per_1k":
			out = append(out, eval.Gate{Kind: eval.GateCost, Metric: "cost_per_1k", Op: "<=", Value: g.Value})
		case g.NotWorseThan != "":
			if !haveChampion {
				skipped = append(skipped, fmt.Sprintf("%s not worse than %s: no %s yet", metric, g.NotWorseThan, g.NotWorseThan))
				continue
			}
			out = append(out, eval.Gate{Kind: eval.GateNotWorse, Metric: evalMetric(metric), Epsilon: g.Epsilon, Confidence: g.Confidence})
		default:
			out = append(out, eval.Gate{Kind: eval.GateThreshold, Metric: evalMetric(metric), Op: g.Op, Value: g.Value})
		}
	}
	return out, skipped
}

// sliceFields lists the metadata fields worth slicing by: present on every
// example with at most 20 distinct values, in name order.
func sliceFields(set []labeled) []string {
	values := map[string]map[string]bool{}
	counts := map[string]int{}
	for _, s := range set {
		for k, v := range s.fields {
			if values[k] == nil {
				values[k] = map[string]bool{}
			}
			values[k][v] = true
			counts[k]++
		}
	}
	var out []string
	for k, vs := range values {
		if counts[k] == len(set) && len(vs) > 1 && len(vs) <= 20 {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// report evaluates the candidate on the eval split with baselines on the
// train split, and the champion's predictions when given. It stores the
// report and returns its digest and verdict summary for the run metrics.
func (j *job) report(ctx context.Context, r *recipe.Recipe, split string, trainSet, evalSet []labeled, cand, champ []eval.Prediction,
	forget *eval.ForgettingInput) (map[string]any, error) {
	gs, skipped := gates(r, len(champ) > 0)
	task := eval.TaskClassify
	if r.Task != recipe.TaskClassify {
		task = eval.TaskGenerate
		trainSet = nil // baselines are for classification
	}
	// #nosec G115 -- recipe checks seed >= 0, so it converts exactly
	opts := eval.Options{Task: task, Gates: gs, Bootstrap: eval.BootstrapOptions{Seed: uint64(r.Seed)}}
	for _, f := range sliceFields(evalSet) {
		opts.Slicers = append(opts.Slicers, eval.ByField(f))
	}
	in := eval.Input{
		Inputs: eval.Inputs{ModelID: j.spec.Key, DatasetID: j.spec.Inputs.Dataset.ID, Split: split,
			ChampionID: j.spec.Inputs.Champion.ID, Hashes: map[string]string{"recipe": j.spec.Inputs.Recipe.ID, "base": j.spec.Inputs.Base.ID}},
		Candidate: cand, Champion: champ, Forgetting: forget,
	}
	for _, s := range trainSet {
		in.Train = append(in.Train, eval.TextExample{Text: s.text, Label: s.label})
	}
	for _, s := range evalSet {
		if len(in.Train) > 0 {
			in.Test = append(in.Test, eval.TextExample{Text: s.text, Label: s.label})
		}
	}
	rep, err := eval.Evaluate(in, opts)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	raw, err := rep.MarshalCanonical()
	if err != nil {
		return nil, err
	}
	digest, _, err := j.blobs.Put(ctx, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	out := map[string]any{"report": digest, "eval_split": split, "eval_dataset": j.spec.Inputs.Dataset.ID}
	if all, ok := rep.Slice(eval.SliceAll); ok && all.Classify != nil {
		out["eval_accuracy"], out["eval_macro_f1"], out["eval_examples"] = all.Classify.Accuracy, all.Classify.MacroF1, all.Classify.N
	} else if ok && all.Generate != nil {
		g := all.Generate
		out["eval_exact_match"], out["eval_json_valid"], out["eval_token_f1"], out["eval_examples"] = g.ExactMatch, g.JSONValid, g.TokenF1, g.N
	}
	if rep.Verdict != nil {
		verdict := "fail"
		if rep.Verdict.Pass {
			verdict = "pass"
		}
		var failed []string
		for _, g := range rep.Verdict.Gates {
			if !g.Pass {
				failed = append(failed, g.Reason)
			}
		}
		out["verdict"], out["failed_gates"] = verdict, failed
	}
	if len(skipped) > 0 {
		out["skipped_gates"] = skipped
	}
	if f := rep.Forgetting; f != nil {
		out["forgetting_candidate"], out["forgetting_champion"], out["forgetting_pass"] = f.Candidate, f.Champion, f.Gate.Pass
		if b := f.Gate.Bootstrap; b != nil {
			out["forgetting_delta"], out["forgetting_lower"] = b.Delta, b.Lower
		}
	}
	return out, nil
}
