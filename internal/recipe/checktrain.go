package recipe

import (
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/internal/ident"
)

func (r *Recipe) checkTrain() error {
	t := r.Train
	nonNeg := []struct {
		key string
		v   int
	}{
		{"epochs", t.Epochs}, {"max_steps", t.MaxSteps}, {"warmup_steps", t.WarmupSteps},
		{"checkpoint_every", t.CheckpointEvery},
	}
	for _, f := range nonNeg {
		if f.v < 0 {
			return r.errf("train."+f.key, "must be >= 0, got %d", f.v)
		}
	}
	switch {
	case t.Epochs == 0 && t.MaxSteps == 0:
		return r.errf("train", "set epochs or max_steps (or both) above 0")
	case t.BatchSize < 1:
		return r.errf("train.batch_size", "must be >= 1, got %d", t.BatchSize)
	case t.GradAccum < 1:
		return r.errf("train.grad_accum", "must be >= 1, got %d", t.GradAccum)
	case t.LearningRate <= 0 || t.LearningRate >= 1:
		return r.errf("train.learning_rate", "must be > 0 and < 1, got %v", t.LearningRate)
	case !slices.Contains(schedules, t.Schedule):
		return r.errf("train.schedule", "%s", oneOf("schedule", t.Schedule, schedules))
	case t.WarmupRatio < 0 || t.WarmupRatio >= 1:
		return r.errf("train.warmup_ratio", "must be >= 0 and < 1, got %v", t.WarmupRatio)
	case t.WarmupRatio > 0 && t.WarmupSteps > 0:
		return r.errf("train.warmup_ratio", "set warmup_steps or warmup_ratio, not both")
	case t.WeightDecay < 0 || t.WeightDecay > 1:
		return r.errf("train.weight_decay", "must be between 0 and 1, got %v", t.WeightDecay)
	case t.GradClip < 0:
		return r.errf("train.grad_clip", "must be >= 0 (0 turns clipping off), got %v", t.GradClip)
	case t.MaxSeqLen < 1 || t.MaxSeqLen > 1<<20:
		return r.errf("train.max_seq_len", "must be between 1 and %d, got %d", 1<<20, t.MaxSeqLen)
	case r.Model != nil && t.MaxSeqLen > r.Model.MaxPositionEmbeddings:
		return r.errf("train.max_seq_len", "%d exceeds model.max_position_embeddings (%d)", t.MaxSeqLen, r.Model.MaxPositionEmbeddings)
	case !slices.Contains(precisions, t.Precision):
		return r.errf("train.precision", "%s", oneOf("precision", t.Precision, precisions))
	case t.Packing && r.Task == TaskClassify:
		return r.errf("train.packing", "packing joins sequences for sft and pretrain; task classify keeps one example per row")
	}
	return nil
}

// metricTasks says which tasks each suite metric applies to.
var metricTasks = map[string][]Task{
	"accuracy":    {TaskClassify},
	"macro_f1":    {TaskClassify},
	"ece":         {TaskClassify},
	"exact_match": {TaskSFT, TaskPretrain},
	"json_valid":  {TaskSFT, TaskPretrain},
	"contains":    {TaskSFT, TaskPretrain},
	"regex":       {TaskSFT, TaskPretrain},
	"token_f1":    {TaskSFT, TaskPretrain},
}

func (r *Recipe) checkEval() error {
	names := make([]string, 0, len(r.Eval.Suite))
	for i, s := range r.Eval.Suite {
		p := index("eval.suite", i)
		switch {
		case s.Metric == "":
			return r.errf(p+".metric", "required (one of %s)", strings.Join(metrics, ", "))
		case !slices.Contains(metrics, s.Metric):
			return r.errf(p+".metric", "%s", oneOf("metric", s.Metric, metrics))
		case !slices.Contains(metricTasks[s.Metric], r.Task):
			return r.errf(p+".metric", "metric %s does not apply to task %s", s.Metric, r.Task)
		case !nameRE.MatchString(s.Name) || len(s.Name) > 100:
			return r.errf(p+".name", "invalid name %q: use lowercase letters, digits, '.', '_', '-'", s.Name)
		case s.Name == MetricLatencyP95 || s.Name == MetricCostPer1K:
			return r.errf(p+".name", "%q is reserved for the serving gate", s.Name)
		case slices.Contains(names, s.Name):
			return r.errf(p+".name", "duplicate suite name %q; give each entry a distinct name", s.Name)
		case !identRE.MatchString(s.Split):
			return r.errf(p+".split", "invalid split name %q", s.Split)
		}
		names = append(names, s.Name)
	}
	for i, g := range r.Eval.Gates {
		if err := r.checkGate(index("eval.gates", i), g, names); err != nil {
			return err
		}
	}
	return nil
}

func (r *Recipe) checkGate(p string, g Gate, suite []string) error {
	operational := g.Metric == MetricLatencyP95 || g.Metric == MetricCostPer1K
	if !operational && !slices.Contains(suite, g.Metric) {
		known := append(slices.Clone(suite), MetricLatencyP95, MetricCostPer1K)
		return r.errf(p+".metric", "unknown metric %q (gates may use the eval suite's names or serving metrics: %s)", g.Metric, strings.Join(known, ", "))
	}
	if g.NotWorseThan != "" {
		switch {
		case g.Op != "" || g.Value != 0:
			return r.errf(p, "use either op and value, or not_worse_than and epsilon, not both")
		case !ident.IsAlias(g.NotWorseThan):
			return r.errf(p+".not_worse_than", "invalid alias %q (a lowercase word like champion)", g.NotWorseThan)
		case g.Epsilon < 0:
			return r.errf(p+".epsilon", "must be >= 0, got %v", g.Epsilon)
		case g.Confidence != 0 && !(g.Confidence > 0 && g.Confidence < 1):
			return r.errf(p+".confidence", "must be > 0 and < 1, got %v", g.Confidence)
		}
		return nil
	}
	switch {
	case g.Epsilon != 0:
		return r.errf(p+".epsilon", "epsilon only applies with not_worse_than")
	case g.Confidence != 0:
		return r.errf(p+".confidence", "confidence only applies with not_worse_than")
	case !slices.Contains(ops, g.Op):
		return r.errf(p+".op", `unknown op %q (want ">=", "<=", ">" or "<", quoted)`, g.Op)
	case g.Metric == MetricLatencyP95 && g.Value <= 0:
		return r.errf(p+".value", "latency bound must be > 0 ms, got %v", g.Value)
	case g.Metric == MetricCostPer1K && g.Value < 0:
		return r.errf(p+".value", "cost bound must be >= 0, got %v", g.Value)
	case !operational && (g.Value < 0 || g.Value > 1):
		return r.errf(p+".value", "suite metrics are fractions; value must be between 0 and 1, got %v", g.Value)
	}
	return nil
}

func (r *Recipe) checkBudget() error {
	b := r.Budget
	switch {
	case b.MaxSteps < 0:
		return r.errf("budget.max_steps", "must be >= 0, got %d", b.MaxSteps)
	case b.MaxDuration < 0:
		return r.errf("budget.max_duration", "must be >= 0, got %s", b.MaxDuration)
	case b.MaxCostUSD < 0:
		return r.errf("budget.max_cost_usd", "must be >= 0, got %v", b.MaxCostUSD)
	case b.MaxEnergyKWh < 0:
		return r.errf("budget.max_energy_kwh", "must be >= 0, got %v", b.MaxEnergyKWh)
	}
	return nil
}
