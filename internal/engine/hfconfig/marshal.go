package hfconfig

import (
	"encoding/json"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Marshal writes c as a config.json that transformers reads back to the same
// model: keys sorted (as transformers writes them), two-space indent, a
// trailing newline. It refuses a Config the architecture cannot express.
func Marshal(c engine.Config) ([]byte, error) {
	if err := validate(c); err != nil {
		return nil, err
	}
	tok := func(id int) any {
		if id < 0 {
			return nil
		}
		return id
	}
	m := map[string]any{
		"architectures":       []string{c.Arch},
		"vocab_size":          c.VocabSize,
		"tie_word_embeddings": c.TieEmbeddings,
		"bos_token_id":        tok(c.BOSTokenID),
		"eos_token_id":        tok(c.EOSTokenID),
	}
	if c.TorchDtype != "" {
		m["torch_dtype"] = c.TorchDtype
	}
	switch c.Arch {
	case GPT2:
		if c.KVHeads != c.Heads || c.HeadDim*c.Heads != c.Hidden || !c.AttentionBias ||
			(c.Activation != "gelu_new" && c.Activation != "gelu") || c.RopeScaling.Type != "" {
			return nil, errs.Invalid("config.json: %s cannot express this config (grouped heads, head_dim, bias, activation %q or rope_scaling)", c.Arch, c.Activation)
		}
		m["model_type"] = "gpt2"
		m["n_embd"] = c.Hidden
		m["n_layer"] = c.Layers
		m["n_head"] = c.Heads
		m["n_inner"] = c.Intermediate
		m["n_positions"] = c.MaxPositions
		m["n_ctx"] = c.MaxPositions
		m["layer_norm_epsilon"] = c.NormEps
		m["activation_function"] = c.Activation
	case Llama, Qwen2:
		if c.Activation != "silu" || c.AttentionBias != (c.Arch == Qwen2) {
			return nil, errs.Invalid("config.json: %s cannot express activation %q with attention bias %v", c.Arch, c.Activation, c.AttentionBias)
		}
		m["model_type"] = modelTypes[c.Arch]
		m["hidden_size"] = c.Hidden
		m["intermediate_size"] = c.Intermediate
		m["num_hidden_layers"] = c.Layers
		m["num_attention_heads"] = c.Heads
		m["num_key_value_heads"] = c.KVHeads
		m["head_dim"] = c.HeadDim
		m["max_position_embeddings"] = c.MaxPositions
		m["rope_theta"] = c.RopeTheta
		m["rms_norm_eps"] = c.NormEps
		m["hidden_act"] = "silu"
		m["rope_scaling"] = ropeJSON(c.RopeScaling)
		if c.Arch == Llama {
			m["attention_bias"] = false
			m["mlp_bias"] = false
		} else {
			m["use_sliding_window"] = false
		}
	default:
		return nil, errs.Invalid("config.json: field \"architectures\": %q is not supported (supported: %s, %s, %s)", c.Arch, Llama, Qwen2, GPT2)
	}
	if _, err := parseRopeScaling(mustJSON(m["rope_scaling"])); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func ropeJSON(r engine.RopeScaling) any {
	switch r.Type {
	case "":
		return nil
	case "llama3":
		return map[string]any{
			"rope_type":                        "llama3",
			"type":                             "llama3",
			"factor":                           r.Factor,
			"low_freq_factor":                  r.LowFreqFactor,
			"high_freq_factor":                 r.HighFreqFactor,
			"original_max_position_embeddings": r.OriginalMaxPositionEmbeddings,
		}
	}
	return map[string]any{"rope_type": r.Type, "type": r.Type, "factor": r.Factor}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // maps of numbers and strings always marshal
	return b
}
