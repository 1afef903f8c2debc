// Package seedmodel writes small, randomly initialized base models as
// Hugging Face folders (config.json, model.safetensors, tokenizer.json), from
// an explicit seed. Tests and the demo use it to make base models on
// machines that cannot download any; the weights follow the usual
// initialization (normal with std 0.02, norms at one, biases at zero).
//
// It imports the engine's shared types and formats, nothing above them.
package seedmodel

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/hfconfig"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/engine/train"
)

// Weights returns randomly initialized weights with Hugging Face key names
// for cfg, drawn in sorted key order from seed.
func Weights(cfg engine.Config, seed uint64) (map[string]engine.Tensor, error) {
	shapes, err := Shapes(cfg)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	slices.Sort(names)
	rng := train.NewRNG(seed)
	out := make(map[string]engine.Tensor, len(shapes))
	for _, n := range names {
		shape := shapes[n]
		data := make([]float32, engine.Numel(shape))
		switch {
		case isNorm(n) && strings.HasSuffix(n, ".weight"):
			for i := range data {
				data[i] = 1
			}
		case strings.HasSuffix(n, ".bias"):
		default:
			for i := range data {
				data[i] = float32(rng.Normal() * 0.02)
			}
		}
		out[n] = engine.Tensor{Shape: shape, Data: data}
	}
	return out, nil
}

// Write writes config.json, model.safetensors and tokenizer.json into dir.
func Write(dir string, cfg engine.Config, tokenizerJSON []byte, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	w, err := Weights(cfg, seed)
	if err != nil {
		return err
	}
	conf, err := hfconfig.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("seed model: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), conf, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tokenizerJSON, 0o644); err != nil {
		return err
	}
	return safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), w)
}

// Shapes lists the tensors a checkpoint of cfg holds, by Hugging Face name.
func Shapes(cfg engine.Config) (map[string][]int, error) {
	h, v, f := cfg.Hidden, cfg.VocabSize, cfg.Intermediate
	hd := cfg.HeadDim
	if hd == 0 && cfg.Heads > 0 {
		hd = h / cfg.Heads
	}
	s := map[string][]int{}
	switch cfg.Arch {
	case "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM":
		kv := cfg.KVHeads
		if kv == 0 {
			kv = cfg.Heads
		}
		s["model.embed_tokens.weight"] = []int{v, h}
		s["model.norm.weight"] = []int{h}
		if !cfg.TieEmbeddings {
			s["lm_head.weight"] = []int{v, h}
		}
		for l := 0; l < cfg.Layers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			s[p+"input_layernorm.weight"] = []int{h}
			s[p+"post_attention_layernorm.weight"] = []int{h}
			s[p+"self_attn.q_proj.weight"] = []int{cfg.Heads * hd, h}
			s[p+"self_attn.k_proj.weight"] = []int{kv * hd, h}
			s[p+"self_attn.v_proj.weight"] = []int{kv * hd, h}
			s[p+"self_attn.o_proj.weight"] = []int{h, cfg.Heads * hd}
			if cfg.AttentionBias {
				s[p+"self_attn.q_proj.bias"] = []int{cfg.Heads * hd}
				s[p+"self_attn.k_proj.bias"] = []int{kv * hd}
				s[p+"self_attn.v_proj.bias"] = []int{kv * hd}
			}
			s[p+"mlp.gate_proj.weight"] = []int{f, h}
			s[p+"mlp.up_proj.weight"] = []int{f, h}
			s[p+"mlp.down_proj.weight"] = []int{h, f}
		}
	case "GPT2LMHeadModel":
		s["transformer.wte.weight"] = []int{v, h}
		s["transformer.wpe.weight"] = []int{cfg.MaxPositions, h}
		s["transformer.ln_f.weight"] = []int{h}
		s["transformer.ln_f.bias"] = []int{h}
		for l := 0; l < cfg.Layers; l++ {
			p := fmt.Sprintf("transformer.h.%d.", l)
			s[p+"ln_1.weight"], s[p+"ln_1.bias"] = []int{h}, []int{h}
			s[p+"ln_2.weight"], s[p+"ln_2.bias"] = []int{h}, []int{h}
			s[p+"attn.c_attn.weight"], s[p+"attn.c_attn.bias"] = []int{h, 3 * h}, []int{3 * h}
			s[p+"attn.c_proj.weight"], s[p+"attn.c_proj.bias"] = []int{h, h}, []int{h}
			s[p+"mlp.c_fc.weight"], s[p+"mlp.c_fc.bias"] = []int{h, f}, []int{f}
			s[p+"mlp.c_proj.weight"], s[p+"mlp.c_proj.bias"] = []int{f, h}, []int{h}
		}
	default:
		return nil, fmt.Errorf("seed model: architecture %q is not supported", cfg.Arch)
	}
	return s, nil
}

func isNorm(name string) bool {
	for _, k := range []string{"layernorm", "norm.weight", "ln_1", "ln_2", "ln_f"} {
		if strings.Contains(name, k) {
			return true
		}
	}
	return false
}
