package basemodel

import (
	"fmt"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/hfconfig"
)

// TensorSpec is one tensor an architecture's checkpoint holds.
type TensorSpec struct {
	Name  string
	Shape []int
	// Optional tensors may be absent: a tied lm_head.weight, or buffers
	// older exports saved (rotary inv_freq, GPT-2's attention mask).
	Optional bool
	// Buffer marks a non-parameter (not counted in Params).
	Buffer bool
}

// ExpectedTensors lists the Hugging Face tensor names and shapes of cfg's
// architecture. GPT-2 checkpoints come with or without the "transformer."
// prefix; prefix selects it ("" or "transformer.") and is ignored otherwise.
func ExpectedTensors(cfg engine.Config, prefix string) []TensorSpec {
	if cfg.Arch == hfconfig.GPT2 {
		return gpt2Tensors(cfg, prefix)
	}
	return llamaTensors(cfg)
}

func llamaTensors(c engine.Config) []TensorSpec {
	h, q, kv := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	out := []TensorSpec{
		{Name: "model.embed_tokens.weight", Shape: []int{c.VocabSize, h}},
		{Name: "model.norm.weight", Shape: []int{h}},
		{Name: "lm_head.weight", Shape: []int{c.VocabSize, h}, Optional: c.TieEmbeddings},
	}
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		out = append(out,
			TensorSpec{Name: p + "input_layernorm.weight", Shape: []int{h}},
			TensorSpec{Name: p + "post_attention_layernorm.weight", Shape: []int{h}},
			TensorSpec{Name: p + "self_attn.q_proj.weight", Shape: []int{q, h}},
			TensorSpec{Name: p + "self_attn.k_proj.weight", Shape: []int{kv, h}},
			TensorSpec{Name: p + "self_attn.v_proj.weight", Shape: []int{kv, h}},
			TensorSpec{Name: p + "self_attn.o_proj.weight", Shape: []int{h, q}},
			TensorSpec{Name: p + "mlp.gate_proj.weight", Shape: []int{c.Intermediate, h}},
			TensorSpec{Name: p + "mlp.up_proj.weight", Shape: []int{c.Intermediate, h}},
			TensorSpec{Name: p + "mlp.down_proj.weight", Shape: []int{h, c.Intermediate}},
			TensorSpec{Name: p + "self_attn.rotary_emb.inv_freq", Shape: []int{c.HeadDim / 2}, Optional: true, Buffer: true},
		)
		if c.AttentionBias {
			out = append(out,
				TensorSpec{Name: p + "self_attn.q_proj.bias", Shape: []int{q}},
				TensorSpec{Name: p + "self_attn.k_proj.bias", Shape: []int{kv}},
				TensorSpec{Name: p + "self_attn.v_proj.bias", Shape: []int{kv}},
			)
		}
	}
	return out
}

func gpt2Tensors(c engine.Config, prefix string) []TensorSpec {
	h, p := c.Hidden, prefix
	out := []TensorSpec{
		{Name: p + "wte.weight", Shape: []int{c.VocabSize, h}},
		{Name: p + "wpe.weight", Shape: []int{c.MaxPositions, h}},
		{Name: p + "ln_f.weight", Shape: []int{h}},
		{Name: p + "ln_f.bias", Shape: []int{h}},
		{Name: "lm_head.weight", Shape: []int{c.VocabSize, h}, Optional: c.TieEmbeddings},
	}
	for i := 0; i < c.Layers; i++ {
		l := fmt.Sprintf("%sh.%d.", p, i)
		out = append(out,
			TensorSpec{Name: l + "ln_1.weight", Shape: []int{h}},
			TensorSpec{Name: l + "ln_1.bias", Shape: []int{h}},
			TensorSpec{Name: l + "attn.c_attn.weight", Shape: []int{h, 3 * h}}, // Conv1D: [in, out]
			TensorSpec{Name: l + "attn.c_attn.bias", Shape: []int{3 * h}},
			TensorSpec{Name: l + "attn.c_proj.weight", Shape: []int{h, h}},
			TensorSpec{Name: l + "attn.c_proj.bias", Shape: []int{h}},
			TensorSpec{Name: l + "ln_2.weight", Shape: []int{h}},
			TensorSpec{Name: l + "ln_2.bias", Shape: []int{h}},
			TensorSpec{Name: l + "mlp.c_fc.weight", Shape: []int{h, c.Intermediate}},
			TensorSpec{Name: l + "mlp.c_fc.bias", Shape: []int{c.Intermediate}},
			TensorSpec{Name: l + "mlp.c_proj.weight", Shape: []int{c.Intermediate, h}},
			TensorSpec{Name: l + "mlp.c_proj.bias", Shape: []int{h}},
			TensorSpec{Name: l + "attn.bias", Shape: []int{1, 1, c.MaxPositions, c.MaxPositions}, Optional: true, Buffer: true},
			TensorSpec{Name: l + "attn.masked_bias", Shape: []int{}, Optional: true, Buffer: true},
		)
	}
	return out
}

// gpt2Prefix picks "transformer." when the checkpoint uses it.
func gpt2Prefix(names map[string]tensorRecord) string {
	for n := range names {
		if strings.HasPrefix(n, "transformer.") {
			return "transformer."
		}
	}
	return ""
}
