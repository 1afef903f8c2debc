// Package hfconfig parses and writes Hugging Face config.json files for the
// architectures Tailor's engine runs: LlamaForCausalLM, MistralForCausalLM
// (normalized to LlamaForCausalLM, which it equals without a sliding
// window), Qwen2ForCausalLM and GPT2LMHeadModel.
//
// Missing fields take the defaults of the transformers configuration classes
// (LlamaConfig, MistralConfig, Qwen2Config, GPT2Config). A field the engine
// cannot honour (an unknown architecture, a sliding window shorter than the
// context, an unsupported rope_scaling type or activation) is refused with an
// errs.Invalid error naming the field.
//
// This package imports only internal/errs and internal/engine.
package hfconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Architecture names as they appear in "architectures".
const (
	Llama   = "LlamaForCausalLM"
	Mistral = "MistralForCausalLM"
	Qwen2   = "Qwen2ForCausalLM"
	GPT2    = "GPT2LMHeadModel"
)

// Supported lists the accepted architectures.
var supported = []string{Llama, Mistral, Qwen2, GPT2}

// modelTypes maps each architecture to its config.json "model_type".
var modelTypes = map[string]string{Llama: "llama", Mistral: "mistral", Qwen2: "qwen2", GPT2: "gpt2"}

// raw holds the config.json fields read; pointers tell absent from zero.
type raw struct {
	Architectures []string `json:"architectures"`
	ModelType     *string  `json:"model_type"`
	TorchDtype    *string  `json:"torch_dtype"`
	Dtype         *string  `json:"dtype"` // transformers >= 4.56 spelling
	BOS           tokenID  `json:"bos_token_id"`
	EOS           tokenID  `json:"eos_token_id"`
	Tie           *bool    `json:"tie_word_embeddings"`
	VocabSize     *int     `json:"vocab_size"`

	// Llama family.
	Hidden        *int            `json:"hidden_size"`
	Intermediate  *int            `json:"intermediate_size"`
	Layers        *int            `json:"num_hidden_layers"`
	Heads         *int            `json:"num_attention_heads"`
	KVHeads       *int            `json:"num_key_value_heads"`
	HeadDim       *int            `json:"head_dim"`
	MaxPositions  *int            `json:"max_position_embeddings"`
	RopeTheta     *float64        `json:"rope_theta"`
	RopeScaling   json.RawMessage `json:"rope_scaling"`
	RMSNormEps    *float64        `json:"rms_norm_eps"`
	HiddenAct     *string         `json:"hidden_act"`
	AttnBias      *bool           `json:"attention_bias"`
	MLPBias       *bool           `json:"mlp_bias"`
	SlidingWindow tokenID         `json:"sliding_window"`
	UseSliding    *bool           `json:"use_sliding_window"`

	// GPT-2.
	NEmbd         *int     `json:"n_embd"`
	NLayer        *int     `json:"n_layer"`
	NHead         *int     `json:"n_head"`
	NInner        *int     `json:"n_inner"`
	NPositions    *int     `json:"n_positions"`
	LayerNormEps  *float64 `json:"layer_norm_epsilon"`
	ActFn         *string  `json:"activation_function"`
	ScaleAttn     *bool    `json:"scale_attn_weights"`
	ScaleByLayer  *bool    `json:"scale_attn_by_inverse_layer_idx"`
	ReorderUpcast *bool    `json:"reorder_and_upcast_attn"`
}

// tokenID is an integer that config.json may give as null (none), an
// integer or a list of integers (Llama 3 lists several EOS ids; the first is
// kept). Absent, the architecture's default applies. sliding_window uses it
// too, to tell null from absent.
type tokenID struct {
	present bool
	set     bool
	id      int
}

func (t *tokenID) UnmarshalJSON(b []byte) error {
	t.present = true
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var ids []int
		if err := json.Unmarshal(b, &ids); err != nil {
			return err
		}
		if len(ids) > 0 {
			t.set, t.id = true, ids[0]
		}
		return nil
	}
	if err := json.Unmarshal(b, &t.id); err != nil {
		return err
	}
	t.set = true
	return nil
}

// fieldError builds the standard message for a bad field value.
func fieldError(field, format string, args ...any) error {
	return errs.Invalid("config.json: field %q: %s", field, fmt.Sprintf(format, args...))
}

// Parse reads config.json bytes into a normalized engine.Config.
func Parse(src []byte) (engine.Config, error) {
	var r raw
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return engine.Config{}, fieldError(te.Field, "has JSON type %s, want %s", te.Value, te.Type)
		}
		return engine.Config{}, errs.Invalid("config.json: %v", err)
	}
	if dec.More() {
		return engine.Config{}, errs.Invalid("config.json: unexpected content after the JSON object")
	}
	if len(r.Architectures) == 0 {
		return engine.Config{}, fieldError("architectures", "missing (supported: %s)", strings.Join(supported, ", "))
	}
	arch := r.Architectures[0]
	mt, ok := modelTypes[arch]
	if !ok || len(r.Architectures) > 1 {
		return engine.Config{}, fieldError("architectures", "%q is not supported (supported: %s)",
			strings.Join(r.Architectures, ", "), strings.Join(supported, ", "))
	}
	if r.ModelType != nil && *r.ModelType != mt {
		return engine.Config{}, fieldError("model_type", "%q does not match architecture %s (want %q)", *r.ModelType, arch, mt)
	}
	var c engine.Config
	var err error
	if arch == GPT2 {
		c, err = parseGPT2(&r)
	} else {
		c, err = parseLlama(arch, &r)
	}
	if err != nil {
		return engine.Config{}, err
	}
	if r.TorchDtype != nil {
		c.TorchDtype = *r.TorchDtype
	} else if r.Dtype != nil {
		c.TorchDtype = *r.Dtype
	}
	return c, validate(c)
}

func intOr(p *int, def int) int {
	if p != nil {
		return *p
	}
	return def
}

func floatOr(p *float64, def float64) float64 {
	if p != nil {
		return *p
	}
	return def
}

func boolOr(p *bool, def bool) bool {
	if p != nil {
		return *p
	}
	return def
}

func tokOr(t tokenID, def int) int {
	switch {
	case t.set:
		return t.id
	case t.present:
		return -1
	}
	return def
}

// llamaDefaults are the transformers defaults per architecture.
type llamaDefaults struct {
	vocab, hidden, inter, layers, heads, kv, maxPos, bos, eos int
	eps                                                       float64
}

var llamaDefs = map[string]llamaDefaults{
	Llama:   {32000, 4096, 11008, 32, 32, 0, 2048, 1, 2, 1e-6},
	Mistral: {32000, 4096, 14336, 32, 32, 8, 4096 * 32, 1, 2, 1e-6},
	Qwen2:   {151936, 4096, 22016, 32, 32, 32, 32768, -1, -1, 1e-6},
}

func parseLlama(arch string, r *raw) (engine.Config, error) {
	d := llamaDefs[arch]
	c := engine.Config{
		Arch:          arch,
		VocabSize:     intOr(r.VocabSize, d.vocab),
		Hidden:        intOr(r.Hidden, d.hidden),
		Intermediate:  intOr(r.Intermediate, d.inter),
		Layers:        intOr(r.Layers, d.layers),
		Heads:         intOr(r.Heads, d.heads),
		MaxPositions:  intOr(r.MaxPositions, d.maxPos),
		RopeTheta:     floatOr(r.RopeTheta, 10000),
		NormEps:       floatOr(r.RMSNormEps, d.eps),
		TieEmbeddings: boolOr(r.Tie, false),
		Activation:    "silu",
		BOSTokenID:    tokOr(r.BOS, d.bos),
		EOSTokenID:    tokOr(r.EOS, d.eos),
	}
	c.KVHeads = intOr(r.KVHeads, d.kv)
	if r.KVHeads == nil && d.kv == 0 {
		c.KVHeads = c.Heads
	}
	if c.Heads > 0 {
		c.HeadDim = intOr(r.HeadDim, c.Hidden/c.Heads)
	}
	if r.HiddenAct != nil && *r.HiddenAct != "silu" {
		return c, fieldError("hidden_act", "%q is not supported (supported: silu)", *r.HiddenAct)
	}
	window := tokOr(r.SlidingWindow, 4096) // -1: null, no window
	switch arch {
	case Qwen2:
		c.AttentionBias = true // Qwen2 always has q/k/v bias
		if boolOr(r.UseSliding, false) && window >= 0 && window < c.MaxPositions {
			return c, fieldError("use_sliding_window", "sliding-window attention (window %d < %d positions) is not supported",
				window, c.MaxPositions)
		}
	default:
		if boolOr(r.AttnBias, false) {
			return c, fieldError("attention_bias", "true is not supported for %s", arch)
		}
		if boolOr(r.MLPBias, false) {
			return c, fieldError("mlp_bias", "true is not supported for %s", arch)
		}
		if arch == Mistral {
			if !r.SlidingWindow.present && window < c.MaxPositions { // MistralConfig defaults to 4096
				return c, fieldError("sliding_window", "absent, so defaults to 4096, which is smaller than max_position_embeddings %d; set it to null", c.MaxPositions)
			}
			if window >= 0 && window < c.MaxPositions {
				return c, fieldError("sliding_window", "%d is smaller than max_position_embeddings %d; sliding-window attention is not supported", window, c.MaxPositions)
			}
			c.Arch = Llama // without a sliding window Mistral is Llama
		}
	}
	rs, err := parseRopeScaling(r.RopeScaling)
	if err != nil {
		return c, err
	}
	c.RopeScaling = rs
	return c, nil
}

func parseGPT2(r *raw) (engine.Config, error) {
	c := engine.Config{
		Arch:          GPT2,
		VocabSize:     intOr(r.VocabSize, 50257),
		Hidden:        intOr(r.NEmbd, 768),
		Layers:        intOr(r.NLayer, 12),
		Heads:         intOr(r.NHead, 12),
		MaxPositions:  intOr(r.NPositions, 1024),
		NormEps:       floatOr(r.LayerNormEps, 1e-5),
		TieEmbeddings: boolOr(r.Tie, true),
		AttentionBias: true,
		Activation:    "gelu_new",
		BOSTokenID:    tokOr(r.BOS, 50256),
		EOSTokenID:    tokOr(r.EOS, 50256),
	}
	c.Intermediate = intOr(r.NInner, 4*c.Hidden)
	c.KVHeads = c.Heads
	if c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if r.ActFn != nil {
		switch *r.ActFn {
		case "gelu_new", "gelu":
			c.Activation = *r.ActFn
		default:
			return c, fieldError("activation_function", "%q is not supported (supported: gelu_new, gelu)", *r.ActFn)
		}
	}
	if !boolOr(r.ScaleAttn, true) {
		return c, fieldError("scale_attn_weights", "false is not supported")
	}
	if boolOr(r.ScaleByLayer, false) {
		return c, fieldError("scale_attn_by_inverse_layer_idx", "true is not supported")
	}
	if boolOr(r.ReorderUpcast, false) {
		return c, fieldError("reorder_and_upcast_attn", "true is not supported")
	}
	return c, nil
}

type rawRope struct {
	Type        *string  `json:"type"`
	RopeType    *string  `json:"rope_type"`
	Factor      *float64 `json:"factor"`
	Low         *float64 `json:"low_freq_factor"`
	High        *float64 `json:"high_freq_factor"`
	OriginalMax *int     `json:"original_max_position_embeddings"`
}

func parseRopeScaling(src json.RawMessage) (engine.RopeScaling, error) {
	if len(src) == 0 || string(bytes.TrimSpace(src)) == "null" {
		return engine.RopeScaling{}, nil
	}
	var r rawRope
	if err := json.Unmarshal(src, &r); err != nil {
		return engine.RopeScaling{}, fieldError("rope_scaling", "%v", err)
	}
	typ := ""
	if r.RopeType != nil {
		typ = *r.RopeType
	} else if r.Type != nil {
		typ = *r.Type
	}
	rs := engine.RopeScaling{Type: typ, Factor: floatOr(r.Factor, 0)}
	switch typ {
	case "default":
		return engine.RopeScaling{}, nil
	case "linear":
		if rs.Factor < 1 {
			return rs, fieldError("rope_scaling.factor", "%v must be >= 1", rs.Factor)
		}
	case "llama3":
		rs.LowFreqFactor = floatOr(r.Low, 0)
		rs.HighFreqFactor = floatOr(r.High, 0)
		rs.OriginalMaxPositionEmbeddings = intOr(r.OriginalMax, 0)
		switch {
		case r.Factor == nil || r.Low == nil || r.High == nil || r.OriginalMax == nil:
			return rs, fieldError("rope_scaling", "llama3 needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings")
		case rs.Factor <= 0:
			return rs, fieldError("rope_scaling.factor", "%v must be > 0", rs.Factor)
		case rs.LowFreqFactor <= 0 || rs.HighFreqFactor <= rs.LowFreqFactor:
			return rs, fieldError("rope_scaling.high_freq_factor", "%v must exceed low_freq_factor %v > 0", rs.HighFreqFactor, rs.LowFreqFactor)
		case rs.OriginalMaxPositionEmbeddings <= 0:
			return rs, fieldError("rope_scaling.original_max_position_embeddings", "%d must be > 0", rs.OriginalMaxPositionEmbeddings)
		}
	default:
		return rs, fieldError("rope_scaling.rope_type", "%q is not supported (supported: linear, llama3)", typ)
	}
	return rs, nil
}

// Limits on sizes, far beyond any real checkpoint, so overflow stays away.
const maxDim = 1 << 24

func validate(c engine.Config) error {
	isGPT := c.Arch == GPT2
	name := func(llama, gpt string) string {
		if isGPT {
			return gpt
		}
		return llama
	}
	for _, f := range []struct {
		field string
		v     int
	}{
		{"vocab_size", c.VocabSize},
		{name("hidden_size", "n_embd"), c.Hidden},
		{name("intermediate_size", "n_inner"), c.Intermediate},
		{name("num_hidden_layers", "n_layer"), c.Layers},
		{name("num_attention_heads", "n_head"), c.Heads},
		{"num_key_value_heads", c.KVHeads},
		{"head_dim", c.HeadDim},
		{name("max_position_embeddings", "n_positions"), c.MaxPositions},
	} {
		if f.v <= 0 || f.v > maxDim {
			return fieldError(f.field, "%d must be between 1 and %d", f.v, maxDim)
		}
	}
	if isGPT && c.Hidden%c.Heads != 0 {
		return fieldError("n_head", "n_embd %d is not divisible by n_head %d", c.Hidden, c.Heads)
	}
	if c.Heads%c.KVHeads != 0 {
		return fieldError("num_key_value_heads", "num_attention_heads %d is not a multiple of num_key_value_heads %d", c.Heads, c.KVHeads)
	}
	if c.HeadDim%2 != 0 && !isGPT {
		return fieldError("head_dim", "%d must be even for rotary embeddings", c.HeadDim)
	}
	if !(c.NormEps > 0 && c.NormEps < 1) {
		return fieldError(name("rms_norm_eps", "layer_norm_epsilon"), "%v must be in (0, 1)", c.NormEps)
	}
	if !isGPT && !(c.RopeTheta > 0) {
		return fieldError("rope_theta", "%v must be > 0", c.RopeTheta)
	}
	for _, f := range []struct {
		field string
		v     int
	}{{"bos_token_id", c.BOSTokenID}, {"eos_token_id", c.EOSTokenID}} {
		if f.v < -1 || f.v >= c.VocabSize {
			return fieldError(f.field, "%d is outside the vocabulary of %d tokens", f.v, c.VocabSize)
		}
	}
	return nil
}
