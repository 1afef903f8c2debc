// Package model assembles Tailor's supported architectures — Llama
// (Llama 2/3, SmolLM, Mistral without sliding window), Qwen2 and GPT-2 —
// from engine.Config and Hugging Face-named weights, on the layers in
// engine/nn. It adds the customization methods (full fine-tune, LoRA with
// PEFT names, a classification head) and implements engine.Trainable.
//
// For serving, Decoder runs one frozen base for many adapters at once:
// per-sequence KV caches (key/value heads only), a batched prefill and
// one-token decode steps over rows of different lengths and adapters. Each
// base projection is one GEMM over all rows; each adapter's low-rank update
// (and classification head) is applied to its own rows only, so no merged
// copy of the base is made per adapter.
//
// It imports engine, engine/gemm, engine/nn and errs from Tailor, and
// nothing that reads files: weights arrive as a map of tensors.
package model

import (
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Method is how a model is customized.
type Method string

// Methods.
const (
	Full Method = "full" // every base weight is trainable
	LoRA Method = "lora" // base frozen, low-rank adapters on Targets
	Head Method = "head" // base frozen, a classification head (optionally with LoRA)
)

// Pooling chooses which hidden state feeds a classification head.
type Pooling string

// Poolings.
const (
	PoolLast Pooling = "last" // the last real token of each example
	PoolMean Pooling = "mean" // the mean over the real tokens
)

// LoRAOptions configures the adapters (PEFT semantics: scaling alpha/rank,
// dropout on the adapter input, B initialised to zero).
type LoRAOptions struct {
	Rank    int
	Alpha   float64
	Dropout float64
	// Targets are module names matched against the last component of each
	// linear layer's key (q_proj, v_proj, c_attn, c_proj, ...). Empty means
	// every linear layer inside the decoder blocks.
	Targets []string
}

// HeadOptions configures the classification head "score" [NumLabels, Hidden].
type HeadOptions struct {
	NumLabels int
	Pooling   Pooling // default PoolLast
}

// Options configure New. Zero values take the documented defaults.
type Options struct {
	Method Method // default Full
	LoRA   LoRAOptions
	Head   HeadOptions
	// Seed drives LoRA and head initialisation and LoRA dropout masks.
	Seed uint64
	// Workers is the fixed number of goroutines for element-wise work
	// (default 2). Results do not depend on it.
	Workers int
	// GEMM is the matrix-product backend (default gemm.NewPrecision(Workers,
	// Precision)).
	GEMM gemm.GEMM
	// Precision of the float32 matrix products when GEMM is nil: gemm.FP32
	// (the default) or gemm.BF16 (bf16 inputs, fp32 accumulation, fp32
	// master weights), which computes in fp32 on CPUs without AVX512_BF16.
	// normalize leaves the precision really used here.
	Precision gemm.Precision
}

func (o *Options) normalize() error {
	if o.Method == "" {
		o.Method = Full
	}
	if o.Workers < 1 {
		o.Workers = 2
	}
	p, err := gemm.ParsePrecision(string(o.Precision))
	if err != nil {
		return errs.Invalid("options: %v", err)
	}
	o.Precision = p
	if o.GEMM == nil {
		o.GEMM, o.Precision = gemm.NewPrecision(o.Workers, o.Precision)
	}
	switch o.Method {
	case Full:
	case LoRA:
		if o.LoRA.Rank <= 0 {
			return errs.Invalid("options: lora.rank %d must be positive for method lora", o.LoRA.Rank)
		}
	case Head:
		if o.Head.NumLabels < 2 {
			return errs.Invalid("options: head.num_labels %d must be at least 2", o.Head.NumLabels)
		}
		if o.Head.Pooling == "" {
			o.Head.Pooling = PoolLast
		}
		if o.Head.Pooling != PoolLast && o.Head.Pooling != PoolMean {
			return errs.Invalid("options: head.pooling %q not supported (use last or mean)", o.Head.Pooling)
		}
		if o.LoRA.Rank < 0 {
			return errs.Invalid("options: lora.rank %d must not be negative", o.LoRA.Rank)
		}
	default:
		return errs.Invalid("options: method %q not supported (use full, lora or head)", o.Method)
	}
	if o.LoRA.Rank > 0 {
		if o.LoRA.Alpha <= 0 {
			return errs.Invalid("options: lora.alpha %g must be positive", o.LoRA.Alpha)
		}
		if o.LoRA.Dropout < 0 || o.LoRA.Dropout >= 1 {
			return errs.Invalid("options: lora.dropout %g must be in [0, 1)", o.LoRA.Dropout)
		}
	}
	return nil
}
