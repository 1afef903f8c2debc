package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/nn"
	"github.com/tailor-ml/tailor/internal/errs"
)

// family is the layer layout an architecture uses.
type family int

const (
	llamaFamily family = iota // RMSNorm, RoPE, SwiGLU, separate q/k/v
	gpt2Family                // LayerNorm, learned positions, GELU, Conv1D, fused c_attn
)

func archFamily(arch string) (family, error) {
	switch arch {
	case "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM":
		return llamaFamily, nil
	case "GPT2LMHeadModel":
		return gpt2Family, nil
	}
	return 0, errs.Invalid("config: architectures %q not supported (use LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM or GPT2LMHeadModel)", arch)
}

// normalizeConfig fills derivable fields and checks the rest, naming the
// config.json field at fault.
func normalizeConfig(c engine.Config) (engine.Config, family, error) {
	fam, err := archFamily(c.Arch)
	if err != nil {
		return c, 0, err
	}
	pos := func(name string, v int) error {
		if v <= 0 {
			return errs.Invalid("config: %s %d must be positive", name, v)
		}
		return nil
	}
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if fam == gpt2Family && c.Intermediate == 0 {
		c.Intermediate = 4 * c.Hidden
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab_size", c.VocabSize}, {"hidden_size", c.Hidden}, {"intermediate_size", c.Intermediate},
		{"num_hidden_layers", c.Layers}, {"num_attention_heads", c.Heads}, {"num_key_value_heads", c.KVHeads},
		{"head_dim", c.HeadDim}, {"max_position_embeddings", c.MaxPositions}} {
		if err := pos(f.name, f.v); err != nil {
			return c, 0, err
		}
	}
	if c.Heads%c.KVHeads != 0 {
		return c, 0, errs.Invalid("config: num_key_value_heads %d must divide num_attention_heads %d", c.KVHeads, c.Heads)
	}
	if c.NormEps <= 0 {
		return c, 0, errs.Invalid("config: rms_norm_eps / layer_norm_epsilon %g must be positive", c.NormEps)
	}
	if _, err := nn.ParseActivation(c.Activation); err != nil {
		return c, 0, fmt.Errorf("config: hidden_act: %w", err)
	}
	switch fam {
	case llamaFamily:
		if c.Activation != string(nn.SiLU) {
			return c, 0, errs.Invalid("config: hidden_act %q not supported for %s (use silu)", c.Activation, c.Arch)
		}
		if _, err := nn.InvFreq(c.HeadDim, c.RopeTheta, c.RopeScaling); err != nil {
			return c, 0, fmt.Errorf("config: %w", err)
		}
	case gpt2Family:
		if c.Activation == string(nn.SiLU) {
			return c, 0, errs.Invalid("config: activation_function %q not supported for GPT2LMHeadModel", c.Activation)
		}
		if c.KVHeads != c.Heads || c.HeadDim*c.Heads != c.Hidden {
			return c, 0, errs.Invalid("config: GPT2LMHeadModel needs n_head × head_dim == n_embd and no key/value head grouping")
		}
		if !c.TieEmbeddings {
			return c, 0, errs.Invalid("config: tie_word_embeddings false not supported for GPT2LMHeadModel")
		}
	}
	return c, fam, nil
}

// initKind says how RandomWeights fills a tensor.
type initKind int

const (
	initNormal initKind = iota // N(0, 0.02²), as initializer_range
	initOnes
	initZeros
)

type tensorSpec struct {
	key   string
	shape []int
	init  initKind
}

// specs lists every base weight of the architecture with its HF key.
func specs(c engine.Config, fam family) []tensorSpec {
	d, f, v := c.Hidden, c.Intermediate, c.VocabSize
	var s []tensorSpec
	add := func(key string, init initKind, shape ...int) { s = append(s, tensorSpec{key, shape, init}) }
	if fam == gpt2Family {
		add("transformer.wte.weight", initNormal, v, d)
		add("transformer.wpe.weight", initNormal, c.MaxPositions, d)
		for l := 0; l < c.Layers; l++ {
			p := fmt.Sprintf("transformer.h.%d.", l)
			add(p+"ln_1.weight", initOnes, d)
			add(p+"ln_1.bias", initZeros, d)
			add(p+"attn.c_attn.weight", initNormal, d, 3*d)
			add(p+"attn.c_attn.bias", initZeros, 3*d)
			add(p+"attn.c_proj.weight", initNormal, d, d)
			add(p+"attn.c_proj.bias", initZeros, d)
			add(p+"ln_2.weight", initOnes, d)
			add(p+"ln_2.bias", initZeros, d)
			add(p+"mlp.c_fc.weight", initNormal, d, f)
			add(p+"mlp.c_fc.bias", initZeros, f)
			add(p+"mlp.c_proj.weight", initNormal, f, d)
			add(p+"mlp.c_proj.bias", initZeros, d)
		}
		add("transformer.ln_f.weight", initOnes, d)
		add("transformer.ln_f.bias", initZeros, d)
		return s
	}
	qd, kd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	add("model.embed_tokens.weight", initNormal, v, d)
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"input_layernorm.weight", initOnes, d)
		for _, pr := range []struct {
			name string
			out  int
		}{{"q_proj", qd}, {"k_proj", kd}, {"v_proj", kd}} {
			add(p+"self_attn."+pr.name+".weight", initNormal, pr.out, d)
			if c.AttentionBias {
				add(p+"self_attn."+pr.name+".bias", initZeros, pr.out)
			}
		}
		add(p+"self_attn.o_proj.weight", initNormal, d, qd)
		add(p+"post_attention_layernorm.weight", initOnes, d)
		add(p+"mlp.gate_proj.weight", initNormal, f, d)
		add(p+"mlp.up_proj.weight", initNormal, f, d)
		add(p+"mlp.down_proj.weight", initNormal, d, f)
	}
	add("model.norm.weight", initOnes, d)
	if !c.TieEmbeddings {
		add("lm_head.weight", initNormal, v, d)
	}
	return s
}

// RandomWeights returns freshly initialised base weights for cfg under their
// Hugging Face keys (linear and embedding weights N(0, 0.02²), norm weights
// one, biases zero), for pretraining from scratch. The same seed gives the
// same bytes.
func RandomWeights(cfg engine.Config, seed uint64) (map[string]engine.Tensor, error) {
	c, fam, err := normalizeConfig(cfg)
	if err != nil {
		return nil, err
	}
	// #nosec G404 -- seeded for reproducible model init; not a secret
	r := rand.New(rand.NewPCG(seed, 0x7a11))
	out := map[string]engine.Tensor{}
	for _, sp := range specs(c, fam) {
		t := engine.Tensor{Shape: append([]int(nil), sp.shape...), Data: make([]float32, engine.Numel(sp.shape))}
		for i := range t.Data {
			switch sp.init {
			case initNormal:
				t.Data[i] = float32(r.NormFloat64() * 0.02)
			case initOnes:
				t.Data[i] = 1
			}
		}
		out[sp.key] = t
	}
	return out, nil
}

// lookupWeights checks that every spec'd tensor is present with the right
// shape and returns them by key. GPT-2 checkpoints that omit the
// "transformer." prefix are accepted.
func lookupWeights(c engine.Config, fam family, w map[string]engine.Tensor) (map[string][]float32, error) {
	out := map[string][]float32{}
	for _, sp := range specs(c, fam) {
		t, ok := w[sp.key]
		if !ok && fam == gpt2Family {
			t, ok = w[sp.key[len("transformer."):]]
		}
		if !ok {
			return nil, errs.Invalid("weights: missing tensor %q", sp.key)
		}
		if !sameShape(t.Shape, sp.shape) {
			return nil, errs.Invalid("weights: tensor %q has shape %v, want %v", sp.key, t.Shape, sp.shape)
		}
		if len(t.Data) != engine.Numel(sp.shape) {
			return nil, errs.Invalid("weights: tensor %q has %d values for shape %v", sp.key, len(t.Data), sp.shape)
		}
		out[sp.key] = t.Data
	}
	return out, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
