// Package recipe owns Tailor's recipe files: it parses recipe YAML, checks
// it, fills defaults, writes the canonical (normalized) form and hashes it
// into the recipe ID.
//
// A recipe is the customization logic only: task, base selector, data
// selector, method, hyper-parameters, seed, eval suite and gates, budget and
// region. It never names weights or dataset bytes; the run package resolves
// selectors. Errors are errs.Invalid and read "file:line:col: field.path:
// message". This package imports only internal/errs from Tailor and must not
// import the engine, store or any executor.
package recipe

import (
	"bytes"
	"errors"
	"io"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tailor-ml/tailor/internal/errs"
)

// MaxSize is the largest recipe file Parse accepts, in bytes.
const MaxSize = 1 << 20

// Task is what a recipe trains a model to do.
type Task string

// The tasks.
const (
	TaskClassify Task = "classify" // text → label, with a classification head
	TaskSFT      Task = "sft"      // supervised fine-tuning: prompt → completion
	TaskPretrain Task = "pretrain" // causal-LM training on raw text
)

// Recipe is one parsed recipe. Parse fills every default, so the fields hold
// exactly what Normalize writes.
type Recipe struct {
	Name        string
	Description string
	Task        Task
	// Base selects the base model; nil only for pretrain from scratch.
	Base *Selector
	// Model and Tokenizer are set only for pretrain from scratch.
	Model     *ModelConfig
	Tokenizer *Tokenizer
	Data      Data
	Method    Method
	Train     Train
	Seed      int64
	Eval      Eval
	Budget    Budget
	Region    string
	// Incremental, when set, retrains the model behind an alias of this
	// recipe's model on new data plus a replay sample (task classify).
	Incremental *Incremental
	// Resources, when set, is what each training worker asks for
	// (resources.go).
	Resources *Resources

	file string         // the file name errors carry
	pos  map[string]pos // field path → position of its value
}

// ModelConfig is the architecture of a model trained from scratch.
type ModelConfig struct {
	Arch                  string // LlamaForCausalLM
	VocabSize             int
	HiddenSize            int
	IntermediateSize      int
	NumHiddenLayers       int
	NumAttentionHeads     int
	NumKeyValueHeads      int // default NumAttentionHeads
	MaxPositionEmbeddings int // default 2048
	RopeTheta             float64
	RMSNormEps            float64
	TieWordEmbeddings     bool
}

// Tokenizer says where a from-scratch model's tokenizer comes from: trained
// on the recipe's data, or taken from a base model. Exactly one is set.
type Tokenizer struct {
	Train *TokenizerTrain
	Base  *Selector
}

// TokenizerTrain configures a byte-level BPE tokenizer trained on the data.
type TokenizerTrain struct {
	VocabSize    int // default model.vocab_size
	MinFrequency int // default 2
}

// Data selects the dataset version and the columns a run reads.
type Data struct {
	Dataset   string
	Version   string // "latest", "v3" or an id prefix
	Split     string // default "train"
	EvalSplit string // default "validation"
	// Column names; the defaults depend on the task (see docs/recipes.md).
	TextField       string
	LabelField      string
	PromptField     string
	CompletionField string
}

// Method is how the base is adapted.
type Method struct {
	Kind string // lora | head | full
	LoRA *LoRA  // set iff Kind == "lora"
	Head *Head  // set iff Task == classify
}

// LoRA configures low-rank adapters.
type LoRA struct {
	Rank    int
	Alpha   float64
	Dropout float64
	Targets []string // known module names, in canonical order
}

// Head configures the classification head.
type Head struct {
	Pooling string // last | mean
}

// Train holds the optimizer and loop settings.
type Train struct {
	Epochs          int
	MaxSteps        int
	BatchSize       int
	GradAccum       int
	LearningRate    float64
	Schedule        string // constant | linear | cosine
	WarmupSteps     int
	WarmupRatio     float64
	WeightDecay     float64
	GradClip        float64
	MaxSeqLen       int
	CheckpointEvery int
	Packing         bool
	// Precision of the engine's matrix products: "fp32" (the default) or
	// "bf16" (bf16 inputs, fp32 accumulation, fp32 master weights; fp32
	// where the CPU lacks AVX512_BF16, which the engine version records).
	Precision string
}

// Eval lists the metrics to compute and the gates a candidate must pass.
type Eval struct {
	Suite []SuiteItem
	Gates []Gate
}

// SuiteItem is one metric computed on one split.
type SuiteItem struct {
	Name   string // default Metric
	Metric string
	Split  string // default data.eval_split
}

// Gate is one promotion rule. Either Op and Value are set (a threshold), or
// NotWorseThan and Epsilon (a comparison against the model behind an alias).
// The shorthands latency_p95_ms: X and cost_per_1k: X become Metric
// "latency_p95_ms"/"cost_per_1k" with Op "<=".
type Gate struct {
	Metric       string
	Op           string
	Value        float64
	NotWorseThan string
	Epsilon      float64
	// Confidence of the not_worse_than gate's one-sided bootstrap bound
	// (0: the default, 0.95). A small eval split may want less: its 95 %
	// bound can be wider than any useful epsilon.
	Confidence float64
}

// Incremental starts training from the adapter and head of the model
// version behind alias From of this recipe's model (its name), on the
// recipe's dataset plus a replay sample, and adds a forgetting gate.
type Incremental struct {
	From       string // alias, default "champion"
	Replay     Replay
	Forgetting Forgetting
}

// Replay is the sample of earlier data mixed into the new training data.
type Replay struct {
	// Dataset is NAME or NAME@VERSION; "" (the default) is the dataset
	// version the From model was trained on.
	Dataset string
	// Ratio is the number of replayed records per new training record
	// (default 1; 0: no replay).
	Ratio float64
}

// Forgetting is the gate that the candidate is not worse than the From
// model on the From model's earlier test split beyond Epsilon, by a paired
// bootstrap.
type Forgetting struct {
	Dataset    string  // NAME or NAME@VERSION; "" (default): the From model's training dataset version
	Split      string  // default "test"
	Metric     string  // accuracy | macro_f1 (default)
	Epsilon    float64 // default 0.01
	Confidence float64 // default 0.95
	Resamples  int     // default 1000
}

// Budget caps a run; zero means no cap.
type Budget struct {
	MaxSteps     int
	MaxDuration  time.Duration
	MaxCostUSD   float64
	MaxEnergyKWh float64
}

// ValidateOptions carries what validation needs from the deployment.
type ValidateOptions struct {
	// Regions the recipe may name; default ["local"].
	Regions []string
}

// Parse decodes one recipe from src, checks it and fills its defaults.
// fileName only labels errors ("recipe" when empty). Errors are errs.Invalid.
func Parse(fileName string, src []byte) (*Recipe, error) {
	if fileName == "" {
		fileName = "recipe"
	}
	if len(src) > MaxSize {
		return nil, errs.Invalid("%s: recipe is %d bytes, more than the %d allowed", fileName, len(src), MaxSize)
	}
	root, err := document(fileName, src)
	if err != nil {
		return nil, err
	}
	r := &Recipe{file: fileName, pos: map[string]pos{}}
	d := &decoder{file: fileName, pos: r.pos}
	if err := d.recipe(root, r); err != nil {
		return nil, err
	}
	r.applyDefaults()
	if err := r.check(); err != nil {
		return nil, err
	}
	if r.Method.LoRA != nil {
		r.Method.LoRA.Targets = canonicalTargets(r.Method.LoRA.Targets)
	}
	return r, nil
}

// document returns the single YAML document's top node.
func document(fileName string, src []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errs.Invalid("%s: empty recipe (expected a mapping with name, task, base, data, method, train and region)", fileName)
		}
		return nil, syntaxError(fileName, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, syntaxError(fileName, err)
		}
		return nil, errs.Invalid("%s:%d:%d: more than one YAML document; a recipe file holds exactly one", fileName, line, extra.Column)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errs.Invalid("%s: empty recipe (expected a mapping with name, task, base, data, method, train and region)", fileName)
	}
	return doc.Content[0], nil
}
