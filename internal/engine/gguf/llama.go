package gguf

import (
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Token types of tokenizer.ggml.token_type.
const (
	TokenNormal      int32 = 1
	TokenUnknown     int32 = 2
	TokenControl     int32 = 3
	TokenUserDefined int32 = 4
	TokenUnused      int32 = 5
	TokenByte        int32 = 6
)

// TokenizerInfo is what GGUF's tokenizer.ggml.* keys carry.
type TokenizerInfo struct {
	Model        string    // "gpt2" (byte-level BPE) or "llama" (SentencePiece)
	Pre          string    // tokenizer.ggml.pre: gpt-2, smollm, llama-bpe, qwen2 (see Vocab)
	Tokens       []string  // by id; padded with "[PAD<i>]" up to cfg.VocabSize
	Scores       []float32 // optional, by id (SentencePiece)
	TokenTypes   []int32   // optional, by id (Token* constants); default normal
	Merges       []string  // BPE merges, "a b"
	BOS, EOS     int       // -1: none
	UNK, PAD     int       // -1: none
	AddBOS       bool
	AddEOS       bool
	ChatTemplate string
}

// WriteLlama writes a LlamaForCausalLM checkpoint (Hugging Face names) as a
// GGUF v3 file for llama.cpp, as convert_hf_to_gguf.py does:
//
//   - metadata: general.architecture "llama", general.file_type, the
//     llama.* hyper-parameters and the tokenizer.ggml.* vocabulary;
//   - tensor names: token_embd, blk.N.attn_{norm,q,k,v,output},
//     blk.N.ffn_{norm,gate,up,down}, output_norm, output (omitted when the
//     embeddings are tied; llama.cpp then reuses token_embd);
//   - Q and K rows permuted: Hugging Face's Llama conversion reorders each
//     head's rows so RoPE rotates the pairs (i, i+d/2) ("rotate_half"),
//     while llama.cpp's llama rope rotates adjacent pairs (2i, 2i+1). The
//     converter undoes it per head with reshape(heads, 2, d/2, in) →
//     swapaxes(1, 2): new row h·d + 2j + s takes old row h·d + s·d/2 + j.
//     K uses the key-value head count;
//   - rope_scaling llama3 becomes a rope_freqs.weight tensor of per-pair
//     frequency divisors; linear becomes llama.rope.scaling.{type,factor};
//   - with dtype F16 or Q8_0, matrices are stored as that type and 1-D
//     tensors (norms, rope_freqs) stay F32; with Q8_0, a matrix whose rows
//     are not whole blocks of 32 is stored as F16, as the converter's
//     --outtype q8_0 does.
//
// Dims are written innermost first (a [out, in] matrix has dims [in, out]).
// The output is deterministic.
func WriteLlama(w io.Writer, cfg engine.Config, weights map[string]engine.Tensor, tok TokenizerInfo, dtype DType) error {
	if cfg.Arch != "LlamaForCausalLM" {
		return errs.Invalid("gguf: architecture %q is not supported (supported: LlamaForCausalLM)", cfg.Arch)
	}
	if dtype != F32 && dtype != F16 && dtype != Q8_0 {
		return errs.Invalid("gguf: tensor type %v is not supported (supported: f32, f16, q8_0)", dtype)
	}
	kvs, err := llamaMetadata(cfg, tok, dtype)
	if err != nil {
		return err
	}
	tensors, err := llamaTensors(cfg, weights, dtype)
	if err != nil {
		return err
	}
	return write(w, kvs, tensors)
}

func llamaMetadata(cfg engine.Config, tok TokenizerInfo, dtype DType) ([]KV, error) {
	for _, v := range []struct {
		name string
		n    int
	}{{"max_position_embeddings", cfg.MaxPositions}, {"hidden_size", cfg.Hidden}, {"num_hidden_layers", cfg.Layers},
		{"intermediate_size", cfg.Intermediate}, {"head_dim", cfg.HeadDim}, {"num_attention_heads", cfg.Heads},
		{"num_key_value_heads", cfg.KVHeads}, {"vocab_size", cfg.VocabSize}} {
		if v.n < 0 || v.n > math.MaxUint32 {
			return nil, errs.Invalid("gguf: %s = %d does not fit GGUF's uint32", v.name, v.n)
		}
	}
	// #nosec G115 -- every size converted below was checked to fit a uint32 just above
	m := map[string]any{
		"general.architecture":                   "llama",
		"general.file_type":                      fileType(dtype),
		"llama.context_length":                   uint32(cfg.MaxPositions),
		"llama.embedding_length":                 uint32(cfg.Hidden),
		"llama.block_count":                      uint32(cfg.Layers),
		"llama.feed_forward_length":              uint32(cfg.Intermediate),
		"llama.rope.dimension_count":             uint32(cfg.HeadDim),
		"llama.attention.head_count":             uint32(cfg.Heads),
		"llama.attention.head_count_kv":          uint32(cfg.KVHeads),
		"llama.attention.layer_norm_rms_epsilon": float32(cfg.NormEps),
		"llama.rope.freq_base":                   float32(cfg.RopeTheta),
		"llama.vocab_size":                       uint32(cfg.VocabSize),
	}
	// #nosec G115 -- HeadDim was checked to fit a uint32 above
	if cfg.HeadDim*cfg.Heads != cfg.Hidden {
		m["llama.attention.key_length"] = uint32(cfg.HeadDim)
		m["llama.attention.value_length"] = uint32(cfg.HeadDim)
	}
	switch cfg.RopeScaling.Type {
	case "", "llama3": // llama3 travels as the rope_freqs tensor
	case "linear":
		m["llama.rope.scaling.type"] = "linear"
		m["llama.rope.scaling.factor"] = float32(cfg.RopeScaling.Factor)
	default:
		return nil, errs.Invalid("gguf: rope_scaling type %q is not supported", cfg.RopeScaling.Type)
	}
	if err := tokenizerMetadata(m, cfg, tok); err != nil {
		return nil, err
	}
	return sortedKVs(m), nil
}

func tokenizerMetadata(m map[string]any, cfg engine.Config, tok TokenizerInfo) error {
	n := len(tok.Tokens)
	switch {
	case tok.Model != "gpt2" && tok.Model != "llama":
		return errs.Invalid("gguf: tokenizer model %q is not supported (supported: gpt2, llama)", tok.Model)
	case n == 0 || n > cfg.VocabSize:
		return errs.Invalid("gguf: tokenizer has %d tokens, config.json vocab_size is %d", n, cfg.VocabSize)
	case tok.Scores != nil && len(tok.Scores) != n:
		return errs.Invalid("gguf: tokenizer has %d scores for %d tokens", len(tok.Scores), n)
	case tok.TokenTypes != nil && len(tok.TokenTypes) != n:
		return errs.Invalid("gguf: tokenizer has %d token types for %d tokens", len(tok.TokenTypes), n)
	}
	tokens := slices.Clone(tok.Tokens)
	types := slices.Clone(tok.TokenTypes)
	if types == nil {
		types = make([]int32, n)
		for i := range types {
			types[i] = TokenNormal
		}
	}
	scores := slices.Clone(tok.Scores)
	for i := n; i < cfg.VocabSize; i++ { // pad as convert_hf_to_gguf does
		tokens = append(tokens, fmt.Sprintf("[PAD%d]", i))
		types = append(types, TokenUnused)
		if scores != nil {
			scores = append(scores, -1000)
		}
	}
	m["tokenizer.ggml.model"] = tok.Model
	if tok.Pre != "" {
		m["tokenizer.ggml.pre"] = tok.Pre
	}
	m["tokenizer.ggml.tokens"] = tokens
	m["tokenizer.ggml.token_type"] = types
	if scores != nil {
		m["tokenizer.ggml.scores"] = scores
	}
	if tok.Merges != nil {
		m["tokenizer.ggml.merges"] = slices.Clone(tok.Merges)
	}
	for _, id := range []struct {
		key string
		v   int
	}{{"bos_token_id", tok.BOS}, {"eos_token_id", tok.EOS}, {"unknown_token_id", tok.UNK}, {"padding_token_id", tok.PAD}} {
		if id.v >= cfg.VocabSize {
			return errs.Invalid("gguf: tokenizer %s %d is outside the vocabulary", id.key, id.v)
		}
		if id.v >= 0 {
			// #nosec G115 -- 0 <= id.v < VocabSize (checked above), and VocabSize fits a uint32
			m["tokenizer.ggml."+id.key] = uint32(id.v)
		}
	}
	m["tokenizer.ggml.add_bos_token"] = tok.AddBOS
	m["tokenizer.ggml.add_eos_token"] = tok.AddEOS
	if tok.ChatTemplate != "" {
		m["tokenizer.chat_template"] = tok.ChatTemplate
	}
	return nil
}

// layerNames maps Hugging Face per-layer names to GGUF ones, in write order.
var layerNames = []struct{ hf, gguf string }{
	{"input_layernorm.weight", "attn_norm.weight"},
	{"self_attn.q_proj.weight", "attn_q.weight"},
	{"self_attn.k_proj.weight", "attn_k.weight"},
	{"self_attn.v_proj.weight", "attn_v.weight"},
	{"self_attn.o_proj.weight", "attn_output.weight"},
	{"post_attention_layernorm.weight", "ffn_norm.weight"},
	{"mlp.gate_proj.weight", "ffn_gate.weight"},
	{"mlp.up_proj.weight", "ffn_up.weight"},
	{"mlp.down_proj.weight", "ffn_down.weight"},
}

func llamaTensors(cfg engine.Config, weights map[string]engine.Tensor, dtype DType) ([]tensorOut, error) {
	used := map[string]bool{}
	var out []tensorOut
	add := func(hf, name string, transform func([]float32, []int) []float32) error {
		t, ok := weights[hf]
		if !ok {
			return errs.Invalid("gguf: tensor %q is missing", hf)
		}
		if engine.Numel(t.Shape) != len(t.Data) {
			return errs.Invalid("gguf: tensor %q: shape %v does not match %d values", hf, t.Shape, len(t.Data))
		}
		used[hf] = true
		o := newTensor(name, t.Shape, t.Data, dtype)
		if transform != nil {
			o.prep = func(d []float32) []float32 { return transform(d, t.Shape) }
		}
		out = append(out, o)
		return nil
	}
	if err := add("model.embed_tokens.weight", "token_embd.weight", nil); err != nil {
		return nil, err
	}
	if cfg.RopeScaling.Type == "llama3" {
		f := RopeFactors(cfg)
		out = append(out, newTensor("rope_freqs.weight", []int{len(f)}, f, dtype))
	}
	for l := 0; l < cfg.Layers; l++ {
		for _, n := range layerNames {
			var tr func([]float32, []int) []float32
			switch n.gguf {
			case "attn_q.weight":
				tr = func(d []float32, s []int) []float32 { return PermuteQK(d, s, cfg.Heads) }
			case "attn_k.weight":
				tr = func(d []float32, s []int) []float32 { return PermuteQK(d, s, cfg.KVHeads) }
			}
			if err := add(fmt.Sprintf("model.layers.%d.%s", l, n.hf), fmt.Sprintf("blk.%d.%s", l, n.gguf), tr); err != nil {
				return nil, err
			}
		}
		used[fmt.Sprintf("model.layers.%d.self_attn.rotary_emb.inv_freq", l)] = true
	}
	if err := add("model.norm.weight", "output_norm.weight", nil); err != nil {
		return nil, err
	}
	if _, ok := weights["lm_head.weight"]; ok || !cfg.TieEmbeddings {
		if err := add("lm_head.weight", "output.weight", nil); err != nil {
			return nil, err
		}
	}
	for name := range weights {
		if !used[name] {
			return nil, errs.Invalid("gguf: tensor %q has no GGUF name", name)
		}
	}
	return out, nil
}

// newTensor reverses the shape into GGUF dims; 1-D tensors stay F32, and
// Q8_0 falls back to F16 for rows that are not whole blocks.
func newTensor(name string, shape []int, data []float32, dtype DType) tensorOut {
	dims := make([]uint64, len(shape))
	for i, d := range shape {
		// #nosec G115 -- tensor dims are positive sizes of in-memory tensors
		dims[len(shape)-1-i] = uint64(d)
	}
	if len(shape) <= 1 {
		dtype = F32
	}
	if dtype == Q8_0 && shape[len(shape)-1]%BlockQ8_0 != 0 {
		dtype = F16
	}
	return tensorOut{name: name, dims: dims, dtype: dtype, data: data}
}

// PermuteQK reorders the rows of a [heads·d, in] Q or K weight from Hugging
// Face's half-split RoPE layout to llama.cpp's interleaved one (see
// WriteLlama). It returns a new slice.
func PermuteQK(data []float32, shape []int, heads int) []float32 {
	rows, cols := shape[0], 1
	if len(shape) == 2 {
		cols = shape[1]
	}
	d := rows / heads
	out := make([]float32, len(data))
	for h := 0; h < heads; h++ {
		for j := 0; j < d/2; j++ {
			for s := 0; s < 2; s++ {
				dst := h*d + 2*j + s
				src := h*d + s*(d/2) + j
				copy(out[dst*cols:(dst+1)*cols], data[src*cols:(src+1)*cols])
			}
		}
	}
	return out
}

// RopeFactors computes llama3 rope scaling as convert_hf_to_gguf.py does:
// one divisor per rotary pair, 1 for high frequencies, factor for low ones,
// and a smooth blend between.
func RopeFactors(cfg engine.Config) []float32 {
	rs := cfg.RopeScaling
	dim := cfg.HeadDim
	old := float64(rs.OriginalMaxPositionEmbeddings)
	lowWave := old / rs.LowFreqFactor
	highWave := old / rs.HighFreqFactor
	out := make([]float32, dim/2)
	// The converter computes in float32 torch tensors; so do we, op by op.
	f32 := func(x float64) float64 { return float64(float32(x)) }
	for i := range out {
		freq := f32(1 / f32(math.Pow(cfg.RopeTheta, f32(float64(2*i)/float64(dim)))))
		wave := f32(f32(2*math.Pi) / freq)
		switch {
		case wave < highWave:
			out[i] = 1
		case wave > lowWave:
			out[i] = float32(rs.Factor)
		default:
			smooth := f32(f32(f32(old/wave)-rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor))
			out[i] = float32(1 / f32(f32(f32(1-smooth)/rs.Factor)+smooth))
		}
	}
	return out
}
