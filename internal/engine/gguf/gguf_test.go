package gguf

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

func readFloats(t *testing.T, line string) []float64 {
	t.Helper()
	var out []float64
	for _, f := range strings.Fields(line) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestPermuteMatchesConverter(t *testing.T) {
	src, err := os.ReadFile("testdata/permute.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(src)), "\n")
	w := make([]float32, 24)
	for i := range w {
		w[i] = float32(i)
	}
	for i, heads := range []int{2, 1} {
		t.Run(fmt.Sprintf("heads=%d", heads), func(t *testing.T) {
			got := PermuteQK(w, []int{8, 3}, heads)
			for j, v := range readFloats(t, lines[i]) {
				if float64(got[j]) != v {
					t.Fatalf("got %v\nwant %v", got, lines[i])
				}
			}
		})
	}
}

func TestRopeFactorsMatchConverter(t *testing.T) {
	src, err := os.ReadFile("testdata/rope_factors.txt")
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{HeadDim: 64, RopeTheta: 500000,
		RopeScaling: engine.RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}}
	got := RopeFactors(cfg)
	want := strings.Fields(string(src))
	if len(got) != len(want) {
		t.Fatalf("%d factors, want %d", len(got), len(want))
	}
	for i, w := range want {
		bits, _ := strconv.ParseUint(w, 10, 32)
		wf := math.Float32frombits(uint32(bits))
		// RopeFactors mirrors the float32 tensor arithmetic, so bits match.
		if got[i] != wf {
			t.Errorf("factor %d = %v, converter %v", i, got[i], wf)
		}
	}
}

// TestPermutedRopeKeepsScores checks why the permutation exists: Hugging
// Face's rotate_half RoPE on the original Q/K rows gives the same attention
// scores as llama.cpp's adjacent-pair RoPE on the permuted rows.
func TestPermutedRopeKeepsScores(t *testing.T) {
	const heads, kvHeads, d, in, pos = 2, 1, 8, 5, 7
	rng := rand.New(rand.NewPCG(3, 4))
	randn := func(n int) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(rng.NormFloat64())
		}
		return out
	}
	wq, wk, x, y := randn(heads*d*in), randn(kvHeads*d*in), randn(in), randn(in)
	matvec := func(w, v []float32) []float64 {
		out := make([]float64, len(w)/len(v))
		for r := range out {
			for c := range v {
				out[r] += float64(w[r*len(v)+c]) * float64(v[c])
			}
		}
		return out
	}
	theta := func(i int) float64 { return float64(pos) * math.Pow(10000, -float64(2*i)/d) }
	ropeHalf := func(v []float64) { // HF: pairs (i, i+d/2) of each head
		for h := 0; h < len(v)/d; h++ {
			for i := 0; i < d/2; i++ {
				a, b := v[h*d+i], v[h*d+i+d/2]
				c, s := math.Cos(theta(i)), math.Sin(theta(i))
				v[h*d+i], v[h*d+i+d/2] = a*c-b*s, a*s+b*c
			}
		}
	}
	ropeAdjacent := func(v []float64) { // llama.cpp: pairs (2i, 2i+1)
		for h := 0; h < len(v)/d; h++ {
			for i := 0; i < d/2; i++ {
				a, b := v[h*d+2*i], v[h*d+2*i+1]
				c, s := math.Cos(theta(i)), math.Sin(theta(i))
				v[h*d+2*i], v[h*d+2*i+1] = a*c-b*s, a*s+b*c
			}
		}
	}
	qh, kh := matvec(wq, x), matvec(wk, y)
	ropeHalf(qh)
	ropeHalf(kh)
	qg, kg := matvec(PermuteQK(wq, []int{heads * d, in}, heads), x), matvec(PermuteQK(wk, []int{kvHeads * d, in}, kvHeads), y)
	ropeAdjacent(qg)
	ropeAdjacent(kg)
	for h := 0; h < heads; h++ {
		var sh, sg float64
		for i := 0; i < d; i++ {
			sh += qh[h*d+i] * kh[i]
			sg += qg[h*d+i] * kg[i]
		}
		if math.Abs(sh-sg) > 1e-9*math.Max(1, math.Abs(sh)) {
			t.Errorf("head %d: score %v (HF) vs %v (GGUF)", h, sh, sg)
		}
	}
}

func tinyConfig() engine.Config {
	return engine.Config{Arch: "LlamaForCausalLM", VocabSize: 12, Hidden: 8, Intermediate: 12, Layers: 2,
		Heads: 2, KVHeads: 1, HeadDim: 4, MaxPositions: 32, RopeTheta: 10000, NormEps: 1e-5,
		Activation: "silu", BOSTokenID: 1, EOSTokenID: 2}
}

func tinyWeights(cfg engine.Config) map[string]engine.Tensor {
	rng := rand.New(rand.NewPCG(1, 2))
	w := map[string]engine.Tensor{}
	add := func(name string, shape ...int) {
		t := engine.Tensor{Shape: shape, Data: make([]float32, engine.Numel(shape))}
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64())
		}
		w[name] = t
	}
	h, q, kv := cfg.Hidden, cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	add("model.embed_tokens.weight", cfg.VocabSize, h)
	add("model.norm.weight", h)
	if !cfg.TieEmbeddings {
		add("lm_head.weight", cfg.VocabSize, h)
	}
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		add(p+"input_layernorm.weight", h)
		add(p+"post_attention_layernorm.weight", h)
		add(p+"self_attn.q_proj.weight", q, h)
		add(p+"self_attn.k_proj.weight", kv, h)
		add(p+"self_attn.v_proj.weight", kv, h)
		add(p+"self_attn.o_proj.weight", h, q)
		add(p+"mlp.gate_proj.weight", cfg.Intermediate, h)
		add(p+"mlp.up_proj.weight", cfg.Intermediate, h)
		add(p+"mlp.down_proj.weight", h, cfg.Intermediate)
	}
	return w
}

func tinyTokenizer() TokenizerInfo {
	return TokenizerInfo{Model: "gpt2", Pre: PreGPT2,
		Tokens: []string{"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "abc", "Ġ", "Ċ"},
		Merges: []string{"a b", "ab c"}, BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true,
		ChatTemplate: "{{ messages }}"}
}

func encode(t *testing.T, cfg engine.Config, w map[string]engine.Tensor, dt DType) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteLlama(&b, cfg, w, tinyTokenizer(), dt); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestWriteLlamaRoundTrip(t *testing.T) {
	for _, dt := range []DType{F32, F16} {
		t.Run(fmt.Sprint("dtype=", dt), func(t *testing.T) {
			cfg := tinyConfig()
			w := tinyWeights(cfg)
			data := encode(t, cfg, w, dt)
			if sha256.Sum256(data) != sha256.Sum256(encode(t, cfg, w, dt)) {
				t.Fatal("two writes differ")
			}
			f, err := Read(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if f.DataStart%Alignment != 0 {
				t.Errorf("data section at %d", f.DataStart)
			}
			meta := map[string]any{
				"general.architecture": "llama", "general.file_type": uint32(dt),
				"llama.block_count": uint32(2), "llama.embedding_length": uint32(8), "llama.context_length": uint32(32),
				"llama.feed_forward_length": uint32(12), "llama.attention.head_count": uint32(2),
				"llama.attention.head_count_kv": uint32(1), "llama.rope.dimension_count": uint32(4),
				"llama.attention.layer_norm_rms_epsilon": float32(1e-5), "llama.rope.freq_base": float32(10000),
				"llama.vocab_size": uint32(12), "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": PreGPT2,
				"tokenizer.ggml.bos_token_id": uint32(1), "tokenizer.ggml.eos_token_id": uint32(2),
				"tokenizer.ggml.unknown_token_id": uint32(0), "tokenizer.ggml.add_bos_token": true,
				"tokenizer.ggml.add_eos_token": false, "tokenizer.ggml.merges": []string{"a b", "ab c"},
				"tokenizer.chat_template":   "{{ messages }}",
				"tokenizer.ggml.tokens":     append(tinyTokenizer().Tokens, "[PAD10]", "[PAD11]"),
				"tokenizer.ggml.token_type": []int32{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5, 5},
			}
			if len(f.Metadata) != len(meta) {
				t.Errorf("%d metadata keys, want %d", len(f.Metadata), len(meta))
			}
			for k, want := range meta {
				if got, ok := f.Value(k); !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", k, got, want)
				}
			}
			if len(f.Tensors) != 3+2*9 {
				t.Fatalf("%d tensors", len(f.Tensors))
			}
			check := func(gguf, hf string, permHeads int) {
				got, err := f.Tensor(gguf)
				if err != nil {
					t.Fatal(err)
				}
				want := w[hf]
				data := want.Data
				if permHeads > 0 {
					data = PermuteQK(data, want.Shape, permHeads)
				}
				tol := 0.0
				if dt == F16 && len(want.Shape) == 2 {
					tol = 1.0 / 1024
				}
				if !reflect.DeepEqual(got.Shape, want.Shape) {
					t.Fatalf("%s shape %v want %v", gguf, got.Shape, want.Shape)
				}
				for i, v := range data {
					if math.Abs(float64(got.Data[i]-v)) > tol*math.Max(1, math.Abs(float64(v))) {
						t.Fatalf("%s[%d] = %v want %v", gguf, i, got.Data[i], v)
					}
				}
			}
			check("token_embd.weight", "model.embed_tokens.weight", 0)
			check("output.weight", "lm_head.weight", 0)
			check("output_norm.weight", "model.norm.weight", 0)
			check("blk.1.attn_q.weight", "model.layers.1.self_attn.q_proj.weight", 2)
			check("blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight", 1)
			check("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight", 0)
			check("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight", 0)
			for _, ti := range f.Tensors {
				if len(ti.Dims) == 1 && ti.Type != F32 {
					t.Errorf("1-D tensor %s stored as %d", ti.Name, ti.Type)
				}
				if ti.Name == "blk.0.ffn_down.weight" && !reflect.DeepEqual(ti.Dims, []uint64{12, 8}) {
					t.Errorf("ffn_down dims %v, want [12 8] (innermost first)", ti.Dims)
				}
			}
		})
	}
}

func TestWriteLlamaTiedAndLlama3(t *testing.T) {
	cfg := tinyConfig()
	cfg.TieEmbeddings = true
	cfg.RopeScaling = engine.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 16}
	data := encode(t, cfg, tinyWeights(cfg), F16)
	f, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Tensor("output.weight"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("tied model has output.weight: %v", err)
	}
	rf, err := f.Tensor("rope_freqs.weight")
	if err != nil || !reflect.DeepEqual(rf.Data, RopeFactors(cfg)) || len(rf.Data) != 2 {
		t.Errorf("rope_freqs %v, %v", rf.Data, err)
	}
}

func TestWriteLlamaErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(*engine.Config, map[string]engine.Tensor, *TokenizerInfo)
		want string
	}{
		{"qwen2", func(c *engine.Config, _ map[string]engine.Tensor, _ *TokenizerInfo) { c.Arch = "Qwen2ForCausalLM" }, `architecture "Qwen2ForCausalLM" is not supported`},
		{"missing", func(_ *engine.Config, w map[string]engine.Tensor, _ *TokenizerInfo) {
			delete(w, "model.layers.1.mlp.up_proj.weight")
		}, `tensor "model.layers.1.mlp.up_proj.weight" is missing`},
		{"extra", func(_ *engine.Config, w map[string]engine.Tensor, _ *TokenizerInfo) {
			w["model.layers.1.self_attn.q_proj.bias"] = engine.Tensor{Shape: []int{1}, Data: []float32{0}}
		}, `tensor "model.layers.1.self_attn.q_proj.bias" has no GGUF name`},
		{"too many tokens", func(_ *engine.Config, _ map[string]engine.Tensor, k *TokenizerInfo) {
			k.Tokens = make([]string, 13)
		}, "13 tokens, config.json vocab_size is 12"},
		{"tokenizer model", func(_ *engine.Config, _ map[string]engine.Tensor, k *TokenizerInfo) { k.Model = "bert" }, `tokenizer model "bert"`},
		{"yarn", func(c *engine.Config, _ map[string]engine.Tensor, _ *TokenizerInfo) { c.RopeScaling.Type = "yarn" }, `rope_scaling type "yarn"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := tinyConfig()
			w := tinyWeights(cfg)
			tok := tinyTokenizer()
			c.edit(&cfg, w, &tok)
			err := WriteLlama(&bytes.Buffer{}, cfg, w, tok, F32)
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	cfg := tinyConfig()
	cfg.Layers = 1
	if err := WriteLlama(&b, cfg, tinyWeights(cfg), tinyTokenizer(), F16); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add(b.Bytes()[:200])
	cfg.Hidden, cfg.HeadDim, cfg.Intermediate = 32, 16, 32 // rows of whole Q8_0 blocks
	var q bytes.Buffer
	if err := WriteLlama(&q, cfg, tinyWeights(cfg), tinyTokenizer(), Q8_0); err != nil {
		f.Fatal(err)
	}
	f.Add(q.Bytes())
	f.Add([]byte("GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("kind %s: %v", errs.Kind(err), err)
			}
			return
		}
		for _, ti := range file.Tensors {
			if _, err := file.Tensor(ti.Name); err != nil {
				t.Fatalf("tensor %q accepted by Read but unreadable: %v", ti.Name, err)
			}
		}
	})
}
