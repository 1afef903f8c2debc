package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Options configures a training run. New fills zero fields with the defaults
// given below (so a zero Beta1, Beta2 or Eps means the default, not zero).
// All fields except CheckpointEvery and Clock shape the trajectory and are
// part of the options hash a checkpoint records.
type Options struct {
	// Steps is the number of optimizer steps. When it is 0 the run makes
	// Epochs full passes over the data instead. When it is set, Epochs is
	// ignored and the data cycles through as many epochs as needed.
	Steps int
	// Epochs is the number of passes when Steps is 0. Default 1.
	Epochs int
	// BatchSize is the number of rows (examples, or packed sequences) per
	// micro-batch. Default 8.
	BatchSize int
	// GradAccum is the number of micro-batches per optimizer step. The loss
	// (and so the gradient) is the mean over all loss terms (tokens or
	// examples) of all micro-batches of the step, not the mean of the
	// micro-batch means, so results do not depend on how a step is split.
	// Default 1.
	GradAccum int
	// LR is the peak learning rate. Default 1e-3.
	LR float64
	// Schedule is "constant" (default), "linear" or "cosine"; all three
	// honour WarmupSteps. See LRFactor.
	Schedule string
	// WarmupSteps is the number of linear warmup steps. Default 0.
	WarmupSteps int
	// Optimizer is "adamw" (default) or "sgd".
	Optimizer string
	// Beta1, Beta2 and Eps are AdamW's. Defaults 0.9, 0.999, 1e-8.
	Beta1, Beta2, Eps float64
	// Momentum is SGD's. Default 0.
	Momentum float64
	// WeightDecay is decoupled for AdamW, L2 for SGD. Default 0.
	WeightDecay float64
	// GradClip is the maximum global L2 norm of the gradient; 0 (default)
	// disables clipping.
	GradClip float64
	// Seed seeds every random choice (data order, dropout). Default 0.
	Seed uint64
	// MaxSeqLen truncates examples to this many tokens, and is the row
	// length when Packing. 0 (default) means no truncation.
	MaxSeqLen int
	// Packing concatenates causal-LM examples into rows of at most
	// MaxSeqLen tokens (requires MaxSeqLen > 0). Packed rows have Label -1.
	Packing bool
	// BucketWindow, when > 1 and not Packing, sorts examples by length
	// within windows of BucketWindow batches, then shuffles the batches of
	// each window. Default 0 (off).
	BucketWindow int

	// CheckpointEvery calls Hooks.OnCheckpoint every this many optimizer
	// steps; the last step always checkpoints. 0 (default): last step only.
	CheckpointEvery int
	// Clock gives the time for throughput and ETA. Default time.Now.
	Clock func() time.Time
}

// withDefaults returns o with zero fields defaulted, or an error naming the
// first invalid field.
func (o Options) withDefaults() (Options, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	deff := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Steps == 0 {
		def(&o.Epochs, 1)
	}
	def(&o.BatchSize, 8)
	def(&o.GradAccum, 1)
	deff(&o.LR, 1e-3)
	deff(&o.Beta1, 0.9)
	deff(&o.Beta2, 0.999)
	deff(&o.Eps, 1e-8)
	if o.Schedule == "" {
		o.Schedule = "constant"
	}
	if o.Optimizer == "" {
		o.Optimizer = "adamw"
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o, o.validate()
}

// validate checks ranges; the error names the option.
func (o Options) validate() error {
	ints := []struct {
		name string
		v    int
	}{{"steps", o.Steps}, {"epochs", o.Epochs}, {"batch_size", o.BatchSize}, {"grad_accum", o.GradAccum},
		{"warmup_steps", o.WarmupSteps}, {"max_seq_len", o.MaxSeqLen}, {"bucket_window", o.BucketWindow},
		{"checkpoint_every", o.CheckpointEvery}}
	for _, f := range ints {
		if f.v < 0 {
			return errs.Invalid("option %s: %d is negative", f.name, f.v)
		}
	}
	floats := []struct {
		name   string
		v      float64
		ok     bool
		wanted string
	}{
		{"lr", o.LR, o.LR > 0, "> 0"},
		{"beta1", o.Beta1, o.Beta1 >= 0 && o.Beta1 < 1, "in [0, 1)"},
		{"beta2", o.Beta2, o.Beta2 >= 0 && o.Beta2 < 1, "in [0, 1)"},
		{"eps", o.Eps, o.Eps > 0, "> 0"},
		{"momentum", o.Momentum, o.Momentum >= 0 && o.Momentum <= 1, "in [0, 1]"},
		{"weight_decay", o.WeightDecay, o.WeightDecay >= 0, ">= 0"},
		{"grad_clip", o.GradClip, o.GradClip >= 0, ">= 0"},
	}
	for _, f := range floats {
		if !f.ok || math.IsInf(f.v, 0) {
			return errs.Invalid("option %s: %v must be finite and %s", f.name, f.v, f.wanted)
		}
	}
	if o.Packing && o.MaxSeqLen == 0 {
		return errs.Invalid("option packing: needs max_seq_len > 0 (the packed row length)")
	}
	if _, err := LRFactor(o.Schedule, 0, 0, 1); err != nil {
		return err
	}
	if o.Optimizer != "adamw" && o.Optimizer != "sgd" {
		return errs.Invalid("option optimizer: unknown %q (use adamw or sgd)", o.Optimizer)
	}
	return nil
}

// hashedOptions is the canonical form of the trajectory-shaping options.
// Field order is fixed, so its JSON encoding is deterministic.
type hashedOptions struct {
	Steps        int     `json:"steps"`
	Epochs       int     `json:"epochs"`
	BatchSize    int     `json:"batch_size"`
	GradAccum    int     `json:"grad_accum"`
	LR           float64 `json:"lr"`
	Schedule     string  `json:"schedule"`
	WarmupSteps  int     `json:"warmup_steps"`
	Optimizer    string  `json:"optimizer"`
	Beta1        float64 `json:"beta1"`
	Beta2        float64 `json:"beta2"`
	Eps          float64 `json:"eps"`
	Momentum     float64 `json:"momentum"`
	WeightDecay  float64 `json:"weight_decay"`
	GradClip     float64 `json:"grad_clip"`
	Seed         uint64  `json:"seed,string"`
	MaxSeqLen    int     `json:"max_seq_len"`
	Packing      bool    `json:"packing"`
	BucketWindow int     `json:"bucket_window"`
}

// canonical returns the canonical JSON of the hashed options.
func (o Options) canonical() []byte {
	h := hashedOptions{o.Steps, o.Epochs, o.BatchSize, o.GradAccum, o.LR, o.Schedule, o.WarmupSteps,
		o.Optimizer, o.Beta1, o.Beta2, o.Eps, o.Momentum, o.WeightDecay, o.GradClip, o.Seed,
		o.MaxSeqLen, o.Packing, o.BucketWindow}
	b, err := json.Marshal(h)
	if err != nil { // only NaN or Inf floats, which validate rejects
		panic(fmt.Sprintf("train: marshal options: %v", err))
	}
	return b
}

// Hash returns the hex sha256 of the canonical trajectory-shaping options
// (defaults applied by New). Checkpoints record it.
func (o Options) Hash() string {
	s := sha256.Sum256(o.canonical())
	return hex.EncodeToString(s[:])
}
