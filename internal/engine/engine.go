// Package engine holds the types shared by Tailor's compute engine: model
// configuration, tensors, trainable parameters and batches. The sub-packages
// own the work:
//
//	gemm/        matrix products (OpenBLAS via cgo by default, gonum with -tags purego)
//	nn/          layers with explicit forward and backward
//	model/       Llama, Qwen2 and GPT-2 assembled from nn, LoRA, heads
//	train/       AdamW, schedules, the training loop, checkpoints
//	safetensors/ safetensors read/write; hfconfig/ config.json; peft/ adapters
//	tokenizer/   tokenizer.json (byte-level BPE, SentencePiece-style BPE)
//
// This package imports nothing from Tailor.
package engine

// Tensor is a dense row-major float32 array.
type Tensor struct {
	Shape []int
	Data  []float32
}

// Numel returns the number of elements the shape describes.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// Param is one trainable array and its gradient (same length). Names follow
// Hugging Face / PEFT key names, e.g.
// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".
type Param struct {
	Name  string
	Shape []int
	Data  []float32
	Grad  []float32
}

// Example is one training or inference row.
type Example struct {
	Tokens []int32
	// LossMask, when set (len == len(Tokens)), marks the positions whose
	// next-token prediction counts in the loss (SFT masks the prompt).
	// Position i predicts Tokens[i+1]. Nil means every position counts.
	LossMask []bool
	// Label is the class index for classification, -1 otherwise.
	Label int
}

// Batch is a list of examples processed together.
type Batch struct {
	Examples []Example
}

// Trainable is what the training loop drives.
type Trainable interface {
	// Params returns the trainable parameters in a fixed order.
	Params() []*Param
	// ForwardBackward runs the batch, adds gradients into each Param.Grad
	// (it never zeroes them), and returns the summed loss and the number of
	// loss terms (tokens or examples) it summed over.
	ForwardBackward(b Batch) (lossSum float64, count int, err error)
}

// RopeScaling mirrors config.json's rope_scaling.
type RopeScaling struct {
	Type                          string  // "" (none), "llama3", "linear"
	Factor                        float64 // scaling factor
	LowFreqFactor, HighFreqFactor float64 // llama3
	OriginalMaxPositionEmbeddings int     // llama3
}

// Config is a supported architecture's config.json, normalized.
type Config struct {
	Arch          string // LlamaForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel
	VocabSize     int
	Hidden        int
	Intermediate  int
	Layers        int
	Heads         int
	KVHeads       int
	HeadDim       int
	MaxPositions  int
	RopeTheta     float64
	RopeScaling   RopeScaling
	NormEps       float64 // rms_norm_eps or layer_norm_epsilon
	TieEmbeddings bool
	AttentionBias bool   // q/k/v bias (Qwen2, GPT-2)
	Activation    string // "silu" (SwiGLU) or "gelu_new" / "gelu"
	BOSTokenID    int    // -1 if none
	EOSTokenID    int    // -1 if none
	TorchDtype    string // as in config.json
}
