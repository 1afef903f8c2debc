package recipe

import "slices"

// Defaults that do not depend on other fields. docs/recipes.md lists them all.
const (
	DefaultDataVersion     = "latest"
	DefaultSplit           = "train"
	DefaultEvalSplit       = "validation"
	DefaultLoRARank        = 8
	DefaultLoRAAlpha       = 16.0
	DefaultPooling         = "last"
	DefaultBatchSize       = 8
	DefaultSchedule        = "linear"
	DefaultGradClip        = 1.0
	DefaultPrecision       = "fp32"
	DefaultMaxSeqLen       = 512
	DefaultCheckpointEvery = 500
	DefaultArch            = "LlamaForCausalLM"
	DefaultMaxPositions    = 2048
	DefaultRopeTheta       = 10000.0
	DefaultRMSNormEps      = 1e-5
	DefaultMinFrequency    = 2
	// Incremental runs (see Incremental).
	DefaultIncrementalFrom      = "champion"
	DefaultReplayRatio          = 1.0
	DefaultForgettingSplit      = "test"
	DefaultForgettingMetric     = "macro_f1"
	DefaultForgettingEpsilon    = 0.01
	DefaultForgettingConfidence = 0.95
	DefaultForgettingResamples  = 1000
)

// knownModules are the module names LoRA may target, in canonical order.
var knownModules = []string{
	"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
	"c_attn", "c_proj", "c_fc", "lm_head",
}

// KnownModules returns the module names LoRA may target, in canonical order.
func KnownModules() []string { return slices.Clone(knownModules) }

func defaultTargets() []string { return []string{"q_proj", "k_proj", "v_proj", "o_proj"} }

// DefaultLearningRate is the learning rate used when a recipe sets none.
func DefaultLearningRate(kind string, fromScratch bool) float64 {
	switch {
	case fromScratch:
		return 3e-4
	case kind == "head":
		return 1e-3
	case kind == "full":
		return 5e-5
	}
	return 2e-4
}

// has reports whether the source set a non-null value at path.
func (r *Recipe) has(path string) bool {
	_, ok := r.pos[path]
	return ok
}

// applyDefaults fills every field the source left out. It runs once, in
// Parse, before check; a field the source set (even to zero) is kept.
func (r *Recipe) applyDefaults() {
	r.defaultData()
	r.defaultModel()
	r.defaultMethod()
	r.defaultTrain()
	r.defaultIncremental()
	if r.Eval.Suite == nil {
		r.Eval.Suite = []SuiteItem{}
	}
	if r.Eval.Gates == nil {
		r.Eval.Gates = []Gate{}
	}
	for i := range r.Eval.Suite {
		s := &r.Eval.Suite[i]
		if !r.has(index("eval.suite", i) + ".name") {
			s.Name = s.Metric
		}
		if !r.has(index("eval.suite", i) + ".split") {
			s.Split = r.Data.EvalSplit
		}
	}
}

func (r *Recipe) defaultData() {
	x := &r.Data
	fill := func(dst *string, key, v string) {
		if !r.has("data." + key) {
			*dst = v
		}
	}
	fill(&x.Version, "version", DefaultDataVersion)
	fill(&x.Split, "split", DefaultSplit)
	fill(&x.EvalSplit, "eval_split", DefaultEvalSplit)
	switch r.Task {
	case TaskClassify:
		fill(&x.TextField, "text_field", "text")
		fill(&x.LabelField, "label_field", "label")
	case TaskSFT:
		fill(&x.PromptField, "prompt_field", "prompt")
		fill(&x.CompletionField, "completion_field", "completion")
	case TaskPretrain:
		fill(&x.TextField, "text_field", "text")
	}
}

func (r *Recipe) defaultModel() {
	if m := r.Model; m != nil {
		if !r.has("model.arch") {
			m.Arch = DefaultArch
		}
		if !r.has("model.num_key_value_heads") {
			m.NumKeyValueHeads = m.NumAttentionHeads
		}
		if !r.has("model.max_position_embeddings") {
			m.MaxPositionEmbeddings = DefaultMaxPositions
		}
		if !r.has("model.rope_theta") {
			m.RopeTheta = DefaultRopeTheta
		}
		if !r.has("model.rms_norm_eps") {
			m.RMSNormEps = DefaultRMSNormEps
		}
	}
	if t := r.Tokenizer; t != nil && t.Train != nil {
		if !r.has("tokenizer.train.vocab_size") && r.Model != nil {
			t.Train.VocabSize = r.Model.VocabSize
		}
		if !r.has("tokenizer.train.min_frequency") {
			t.Train.MinFrequency = DefaultMinFrequency
		}
	}
}

func (r *Recipe) defaultMethod() {
	m := &r.Method
	if !r.has("method.kind") {
		m.Kind = "lora"
		if r.Task == TaskPretrain {
			m.Kind = "full"
		}
	}
	if m.Kind == "lora" && m.LoRA == nil {
		m.LoRA = &LoRA{}
	}
	if l := m.LoRA; l != nil {
		if !r.has("method.lora.rank") {
			l.Rank = DefaultLoRARank
		}
		if !r.has("method.lora.alpha") {
			l.Alpha = DefaultLoRAAlpha
		}
		if !r.has("method.lora.targets") {
			l.Targets = defaultTargets()
		}
	}
	if r.Task == TaskClassify && m.Head == nil {
		m.Head = &Head{}
	}
	if h := m.Head; h != nil && !r.has("method.head.pooling") {
		h.Pooling = DefaultPooling
	}
}

func (r *Recipe) defaultTrain() {
	t := &r.Train
	if !r.has("train.epochs") && t.MaxSteps == 0 {
		t.Epochs = 1
	}
	if !r.has("train.batch_size") {
		t.BatchSize = DefaultBatchSize
	}
	if !r.has("train.grad_accum") {
		t.GradAccum = 1
	}
	if !r.has("train.learning_rate") {
		t.LearningRate = DefaultLearningRate(r.Method.Kind, r.Model != nil)
	}
	if !r.has("train.schedule") {
		t.Schedule = DefaultSchedule
	}
	if !r.has("train.grad_clip") {
		t.GradClip = DefaultGradClip
	}
	if !r.has("train.max_seq_len") {
		t.MaxSeqLen = DefaultMaxSeqLen
		if r.Model != nil && r.Model.MaxPositionEmbeddings > 0 {
			t.MaxSeqLen = min(t.MaxSeqLen, r.Model.MaxPositionEmbeddings)
		}
	}
	if !r.has("train.checkpoint_every") {
		t.CheckpointEvery = DefaultCheckpointEvery
	}
	if !r.has("train.precision") {
		t.Precision = DefaultPrecision
	}
}

func (r *Recipe) defaultIncremental() {
	x := r.Incremental
	if x == nil {
		return
	}
	if !r.has("incremental.from") {
		x.From = DefaultIncrementalFrom
	}
	if !r.has("incremental.replay.ratio") {
		x.Replay.Ratio = DefaultReplayRatio
	}
	f := &x.Forgetting
	if !r.has("incremental.forgetting.split") {
		f.Split = DefaultForgettingSplit
	}
	if !r.has("incremental.forgetting.metric") {
		f.Metric = DefaultForgettingMetric
	}
	if !r.has("incremental.forgetting.epsilon") {
		f.Epsilon = DefaultForgettingEpsilon
	}
	if !r.has("incremental.forgetting.confidence") {
		f.Confidence = DefaultForgettingConfidence
	}
	if !r.has("incremental.forgetting.resamples") {
		f.Resamples = DefaultForgettingResamples
	}
}
