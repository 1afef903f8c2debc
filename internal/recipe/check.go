package recipe

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/internal/ident"
)

// Enumerations a recipe may use.
var (
	tasks     = []string{string(TaskClassify), string(TaskSFT), string(TaskPretrain)}
	kinds     = []string{"lora", "head", "full"}
	poolings  = []string{"last", "mean"}
	schedules = []string{"constant", "linear", "cosine"}
	// precisions are the engine's (engine/gemm.Precision), named here
	// because this package must not import the engine.
	precisions = []string{"fp32", "bf16"}
	metrics    = []string{"accuracy", "macro_f1", "ece", "exact_match", "json_valid", "contains", "regex", "token_f1"}
	ops        = []string{">=", "<=", ">", "<"}
)

// Operational gate metrics, measured by serving rather than by the suite.
const (
	MetricLatencyP95 = "latency_p95_ms"
	MetricCostPer1K  = "cost_per_1k"
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	identRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// Validate checks every rule Parse checks, and that the region is one of
// opts.Regions (default ["local"]). It works on recipes built in code too;
// their errors carry no line and column.
func (r *Recipe) Validate(opts ValidateOptions) error {
	if err := r.check(); err != nil {
		return err
	}
	regions := opts.Regions
	if len(regions) == 0 {
		regions = []string{"local"}
	}
	if !slices.Contains(regions, r.Region) {
		sorted := slices.Sorted(slices.Values(regions))
		return r.errf("region", "unknown region %q (allowed: %s)", r.Region, strings.Join(sorted, ", "))
	}
	return nil
}

// errf reports a problem at path, located at the nearest recorded position.
func (r *Recipe) errf(path, format string, args ...any) error {
	file := r.file
	if file == "" {
		file = "recipe"
	}
	return errAt(file, r.at(path), path, format, args...)
}

// at finds the position of path, or of its nearest recorded parent.
func (r *Recipe) at(path string) pos {
	for {
		if p, ok := r.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return r.pos[""]
		}
		path = path[:i]
	}
}

// oneOf is the message for a value outside an enumeration.
func oneOf(noun, v string, allowed []string) string {
	if near := nearest(v, allowed); near != "" {
		return fmt.Sprintf("unknown %s %q (did you mean %q?)", noun, v, near)
	}
	return fmt.Sprintf("unknown %s %q (want %s)", noun, v, strings.Join(allowed, ", "))
}

// check enforces ranges and cross-field rules. It never changes r.
func (r *Recipe) check() error {
	for _, f := range []func() error{
		r.checkFinite, r.checkHeader, r.checkModel, r.checkData, r.checkMethod,
		r.checkTrain, r.checkEval, r.checkBudget, r.checkIncremental, r.checkResources,
	} {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

func (r *Recipe) checkHeader() error {
	switch {
	case r.Name == "":
		return r.errf("name", "required (lowercase letters, digits, '.', '_', '-')")
	case !ident.IsName(r.Name):
		return r.errf("name", "invalid name %q: use %s", r.Name, ident.NameRule)
	case len(r.Description) > 4096:
		return r.errf("description", "longer than 4096 characters")
	case r.Task == "":
		return r.errf("task", "required (one of %s)", strings.Join(tasks, ", "))
	case !slices.Contains(tasks, string(r.Task)):
		return r.errf("task", "%s", oneOf("task", string(r.Task), tasks))
	case r.Seed < 0:
		return r.errf("seed", "must be >= 0, got %d", r.Seed)
	case r.Region == "":
		return r.errf("region", "required (where data, compute and artifacts may live, e.g. local)")
	case !regionRE.MatchString(r.Region):
		return r.errf("region", "invalid region %q: use lowercase letters, digits and '-'", r.Region)
	}
	if r.Base != nil {
		if err := checkSelector(*r.Base); err != nil {
			return r.errf("base", "%s", err.Error())
		}
	}
	return nil
}

// checkSelector rejects selectors built in code that ParseSelector would not
// produce.
func checkSelector(s Selector) error {
	p, err := ParseSelector(s.String())
	if err != nil {
		return err
	}
	if p != s {
		return fmt.Errorf("selector %q has kind %q, want %q", s.String(), s.Kind, p.Kind)
	}
	return nil
}

func (r *Recipe) checkModel() error {
	fromScratch := r.Task == TaskPretrain && r.Base == nil
	switch {
	case r.Task != TaskPretrain && r.Base == nil:
		return r.errf("base", "required for task %s (a base model selector like tailor-tiny@champion)", r.Task)
	case r.Task != TaskPretrain && r.Model != nil:
		return r.errf("model", "only task pretrain may define a model from scratch; use base")
	case r.Task == TaskPretrain && r.Base != nil && r.Model != nil:
		return r.errf("model", "set either base (continue pretraining) or model (train from scratch), not both")
	case fromScratch && r.Model == nil:
		return r.errf("model", "task pretrain needs base (continue pretraining) or model (an architecture to train from scratch)")
	case !fromScratch && r.Tokenizer != nil:
		return r.errf("tokenizer", "only a model trained from scratch takes a tokenizer; the base brings its own")
	case fromScratch && r.Tokenizer == nil:
		return r.errf("tokenizer", "required with model: set tokenizer.train or tokenizer.base")
	}
	if !fromScratch {
		return nil
	}
	if err := r.checkArch(r.Model); err != nil {
		return err
	}
	t := r.Tokenizer
	if (t.Train == nil) == (t.Base == nil) {
		return r.errf("tokenizer", "set exactly one of train or base")
	}
	if t.Base != nil {
		if err := checkSelector(*t.Base); err != nil {
			return r.errf("tokenizer.base", "%s", err.Error())
		}
		return nil
	}
	switch {
	case t.Train.VocabSize < 256 || t.Train.VocabSize > r.Model.VocabSize:
		return r.errf("tokenizer.train.vocab_size", "must be between 256 and model.vocab_size (%d), got %d", r.Model.VocabSize, t.Train.VocabSize)
	case t.Train.MinFrequency < 1:
		return r.errf("tokenizer.train.min_frequency", "must be >= 1, got %d", t.Train.MinFrequency)
	}
	return nil
}

func (r *Recipe) checkArch(m *ModelConfig) error {
	positive := []struct {
		key string
		v   int
	}{
		{"vocab_size", m.VocabSize}, {"hidden_size", m.HiddenSize},
		{"intermediate_size", m.IntermediateSize}, {"num_hidden_layers", m.NumHiddenLayers},
		{"num_attention_heads", m.NumAttentionHeads}, {"num_key_value_heads", m.NumKeyValueHeads},
		{"max_position_embeddings", m.MaxPositionEmbeddings},
	}
	if m.Arch != DefaultArch {
		return r.errf("model.arch", "unknown arch %q (want %s)", m.Arch, DefaultArch)
	}
	for _, p := range positive {
		if p.v < 1 {
			return r.errf("model."+p.key, "required, must be >= 1 (got %d)", p.v)
		}
	}
	switch {
	case m.HiddenSize%m.NumAttentionHeads != 0:
		return r.errf("model.num_attention_heads", "hidden_size %d is not divisible by num_attention_heads %d", m.HiddenSize, m.NumAttentionHeads)
	case (m.HiddenSize/m.NumAttentionHeads)%2 != 0:
		return r.errf("model.num_attention_heads", "head dimension %d (hidden_size / num_attention_heads) must be even for RoPE", m.HiddenSize/m.NumAttentionHeads)
	case m.NumAttentionHeads%m.NumKeyValueHeads != 0:
		return r.errf("model.num_key_value_heads", "num_attention_heads %d is not divisible by num_key_value_heads %d", m.NumAttentionHeads, m.NumKeyValueHeads)
	case m.RopeTheta <= 0:
		return r.errf("model.rope_theta", "must be > 0, got %v", m.RopeTheta)
	case m.RMSNormEps <= 0 || m.RMSNormEps >= 1:
		return r.errf("model.rms_norm_eps", "must be > 0 and < 1, got %v", m.RMSNormEps)
	}
	return nil
}

func (r *Recipe) checkData() error {
	x := r.Data
	switch {
	case x.Dataset == "":
		return r.errf("data.dataset", "required (the name of an imported dataset)")
	case !ident.IsName(x.Dataset):
		return r.errf("data.dataset", "invalid dataset name %q: use %s", x.Dataset, ident.NameRule)
	case !datasetVersion(x.Version):
		return r.errf("data.version", "invalid version %q (want latest, v3 or an id prefix of 7+ hex digits)", x.Version)
	case !identRE.MatchString(x.Split):
		return r.errf("data.split", "invalid split name %q", x.Split)
	case !identRE.MatchString(x.EvalSplit):
		return r.errf("data.eval_split", "invalid split name %q", x.EvalSplit)
	case x.Split == x.EvalSplit:
		return r.errf("data.eval_split", "must differ from split (%q); evaluating on training data hides overfitting", x.Split)
	}
	used := map[Task][]string{
		TaskClassify: {"text_field", "label_field"},
		TaskSFT:      {"prompt_field", "completion_field"},
		TaskPretrain: {"text_field"},
	}[r.Task]
	for _, f := range []struct{ key, v string }{
		{"text_field", x.TextField}, {"label_field", x.LabelField},
		{"prompt_field", x.PromptField}, {"completion_field", x.CompletionField},
	} {
		switch in := slices.Contains(used, f.key); {
		case in && f.v == "":
			return r.errf("data."+f.key, "must not be empty")
		case in && (len(f.v) > 200 || strings.ContainsFunc(f.v, isControl)):
			return r.errf("data."+f.key, "invalid column name %q", f.v)
		case !in && f.v != "":
			return r.errf("data."+f.key, "not used by task %s (it reads %s)", r.Task, strings.Join(used, " and "))
		}
	}
	return nil
}

func isControl(c rune) bool { return c < 0x20 || c == 0x7f }

func (r *Recipe) checkMethod() error {
	m := r.Method
	switch {
	case !slices.Contains(kinds, m.Kind):
		return r.errf("method.kind", "%s", oneOf("method kind", m.Kind, kinds))
	case m.Kind == "head" && r.Task != TaskClassify:
		return r.errf("method.kind", "head trains only a classification head; task %s needs lora", r.Task)
	case m.Kind == "full" && r.Task == TaskClassify:
		// A full fine-tune is stored as a whole model (a base of its own);
		// a classifier's head is not part of a causal-LM checkpoint.
		return r.errf("method.kind", "kind full trains every weight of a causal language model (task pretrain or sft); a classifier needs lora or head, which keep its head beside the base")
	case r.Model != nil && m.Kind != "full":
		return r.errf("method.kind", "a model trained from scratch needs kind full, got %s", m.Kind)
	case m.Kind == "lora" && m.LoRA == nil:
		return r.errf("method.lora", "required with kind lora")
	case m.Kind != "lora" && m.LoRA != nil:
		return r.errf("method.lora", "only applies to kind lora (kind is %s)", m.Kind)
	case r.Task == TaskClassify && m.Head == nil:
		return r.errf("method.head", "required for task classify")
	case r.Task != TaskClassify && m.Head != nil:
		return r.errf("method.head", "only applies to task classify")
	}
	if h := m.Head; h != nil && !slices.Contains(poolings, h.Pooling) {
		return r.errf("method.head.pooling", "%s", oneOf("pooling", h.Pooling, poolings))
	}
	if m.LoRA != nil {
		return r.checkLoRA(m.LoRA)
	}
	return nil
}

func (r *Recipe) checkLoRA(l *LoRA) error {
	switch {
	case l.Rank < 1 || l.Rank > 1024:
		return r.errf("method.lora.rank", "must be between 1 and 1024, got %d", l.Rank)
	case l.Alpha <= 0:
		return r.errf("method.lora.alpha", "must be > 0, got %v", l.Alpha)
	case l.Dropout < 0 || l.Dropout >= 1:
		return r.errf("method.lora.dropout", "must be >= 0 and < 1, got %v", l.Dropout)
	case len(l.Targets) == 0:
		return r.errf("method.lora.targets", "needs at least one module (known: %s)", strings.Join(knownModules, ", "))
	}
	for i, t := range l.Targets {
		p := index("method.lora.targets", i)
		if !slices.Contains(knownModules, t) {
			hint := ""
			if near := nearest(t, knownModules); near != "" {
				hint = fmt.Sprintf("did you mean %q? ", near)
			}
			return r.errf(p, "unknown module %q (%sknown: %s)", t, hint, strings.Join(knownModules, ", "))
		}
		if slices.Index(l.Targets, t) != i {
			return r.errf(p, "module %q listed twice", t)
		}
	}
	return nil
}

// numField is one float field and its path.
type numField struct {
	path string
	v    float64
}

// checkFinite rejects NaN and infinities, which Parse never produces but
// code building a Recipe might.
func (r *Recipe) checkFinite() error {
	fs := []numField{
		{"train.learning_rate", r.Train.LearningRate}, {"train.warmup_ratio", r.Train.WarmupRatio},
		{"train.weight_decay", r.Train.WeightDecay}, {"train.grad_clip", r.Train.GradClip},
		{"budget.max_cost_usd", r.Budget.MaxCostUSD}, {"budget.max_energy_kwh", r.Budget.MaxEnergyKWh},
	}
	if m := r.Model; m != nil {
		fs = append(fs, numField{"model.rope_theta", m.RopeTheta}, numField{"model.rms_norm_eps", m.RMSNormEps})
	}
	if l := r.Method.LoRA; l != nil {
		fs = append(fs, numField{"method.lora.alpha", l.Alpha}, numField{"method.lora.dropout", l.Dropout})
	}
	for i, g := range r.Eval.Gates {
		fs = append(fs, numField{index("eval.gates", i) + ".value", g.Value}, numField{index("eval.gates", i) + ".epsilon", g.Epsilon},
			numField{index("eval.gates", i) + ".confidence", g.Confidence})
	}
	if x := r.Incremental; x != nil {
		fs = append(fs, numField{"incremental.replay.ratio", x.Replay.Ratio}, numField{"incremental.forgetting.epsilon", x.Forgetting.Epsilon},
			numField{"incremental.forgetting.confidence", x.Forgetting.Confidence})
	}
	for _, f := range fs {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return r.errf(f.path, "expected a finite number, got %v", f.v)
		}
	}
	return nil
}

// forgettingMetrics are the metrics a forgetting gate may compare.
var forgettingMetrics = []string{"accuracy", "macro_f1"}

// MaxReplayRatio caps incremental.replay.ratio.
const MaxReplayRatio = 100

func (r *Recipe) checkIncremental() error {
	x := r.Incremental
	if x == nil {
		return nil
	}
	f := x.Forgetting
	switch {
	case r.Task != TaskClassify:
		return r.errf("incremental", "only task classify can be trained incrementally (it starts from an adapter and a classification head), not %s", r.Task)
	case r.Method.Kind == "full":
		return r.errf("incremental", "method kind full has no adapter to start from; use lora or head")
	case x.From == "" || len(x.From) > 64 || !identRE.MatchString(x.From):
		return r.errf("incremental.from", "invalid alias %q (an alias of model %s, e.g. champion)", x.From, r.Name)
	case !(x.Replay.Ratio >= 0 && x.Replay.Ratio <= MaxReplayRatio):
		return r.errf("incremental.replay.ratio", "must be between 0 and %d (replayed records per new training record), got %v", MaxReplayRatio, x.Replay.Ratio)
	case !identRE.MatchString(f.Split):
		return r.errf("incremental.forgetting.split", "invalid split name %q", f.Split)
	case !slices.Contains(forgettingMetrics, f.Metric):
		return r.errf("incremental.forgetting.metric", "%s", oneOf("forgetting metric", f.Metric, forgettingMetrics))
	case !(f.Epsilon >= 0 && f.Epsilon <= 1):
		return r.errf("incremental.forgetting.epsilon", "must be between 0 and 1, got %v", f.Epsilon)
	case !(f.Confidence > 0 && f.Confidence < 1):
		return r.errf("incremental.forgetting.confidence", "must be > 0 and < 1, got %v", f.Confidence)
	case f.Resamples < 1 || f.Resamples > 100000:
		return r.errf("incremental.forgetting.resamples", "must be between 1 and 100000, got %d", f.Resamples)
	}
	for _, d := range []struct{ path, v string }{{"incremental.replay.dataset", x.Replay.Dataset}, {"incremental.forgetting.dataset", f.Dataset}} {
		if err := checkDatasetRef(d.v); err != nil {
			return r.errf(d.path, "%s", err.Error())
		}
	}
	return nil
}

// checkDatasetRef accepts "" (the default), NAME and NAME@VERSION.
func checkDatasetRef(s string) error {
	if s == "" {
		return nil
	}
	a, err := ident.ParseAddress("dataset", s)
	switch {
	case err != nil:
		return err
	case a.Ref.Kind == ident.RefAlias:
		return fmt.Errorf("invalid version %q in %q (want latest, v3 or an id prefix of 7+ hex digits; datasets have no aliases)", a.Ref.Alias, s)
	}
	return nil
}

// datasetVersion reports whether v can name a dataset version: any
// reference but an alias, since datasets have none.
func datasetVersion(v string) bool {
	r, err := ident.ParseRef(v)
	return err == nil && r.Kind != ident.RefAlias
}
