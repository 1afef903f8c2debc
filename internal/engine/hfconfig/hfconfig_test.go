package hfconfig

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

func TestParseGood(t *testing.T) {
	cases := []struct {
		file string
		want engine.Config
	}{
		{"smollm-135m.json", engine.Config{Arch: Llama, VocabSize: 49152, Hidden: 576, Intermediate: 1536, Layers: 30, Heads: 9, KVHeads: 3, HeadDim: 64,
			MaxPositions: 2048, RopeTheta: 10000, NormEps: 1e-5, TieEmbeddings: true, Activation: "silu", BOSTokenID: 0, EOSTokenID: 0, TorchDtype: "bfloat16"}},
		{"llama-3.2-1b.json", engine.Config{Arch: Llama, VocabSize: 128256, Hidden: 2048, Intermediate: 8192, Layers: 16, Heads: 32, KVHeads: 8, HeadDim: 64,
			MaxPositions: 131072, RopeTheta: 500000, NormEps: 1e-5, TieEmbeddings: true, Activation: "silu", BOSTokenID: 128000, EOSTokenID: 128001, TorchDtype: "bfloat16",
			RopeScaling: engine.RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}}},
		{"qwen2.5-0.5b.json", engine.Config{Arch: Qwen2, VocabSize: 151936, Hidden: 896, Intermediate: 4864, Layers: 24, Heads: 14, KVHeads: 2, HeadDim: 64,
			MaxPositions: 32768, RopeTheta: 1e6, NormEps: 1e-6, TieEmbeddings: true, AttentionBias: true, Activation: "silu", BOSTokenID: 151643, EOSTokenID: 151643, TorchDtype: "bfloat16"}},
		{"gpt2.json", engine.Config{Arch: GPT2, VocabSize: 50257, Hidden: 768, Intermediate: 3072, Layers: 12, Heads: 12, KVHeads: 12, HeadDim: 64,
			MaxPositions: 1024, NormEps: 1e-5, TieEmbeddings: true, AttentionBias: true, Activation: "gelu_new", BOSTokenID: 50256, EOSTokenID: 50256}},
		{"mistral-7b-v0.3.json", engine.Config{Arch: Llama, VocabSize: 32768, Hidden: 4096, Intermediate: 14336, Layers: 32, Heads: 32, KVHeads: 8, HeadDim: 128,
			MaxPositions: 32768, RopeTheta: 1e6, NormEps: 1e-5, Activation: "silu", BOSTokenID: 1, EOSTokenID: 2, TorchDtype: "bfloat16"}},
		{"tinyllama-linear.json", engine.Config{Arch: Llama, VocabSize: 32000, Hidden: 2048, Intermediate: 5632, Layers: 22, Heads: 32, KVHeads: 4, HeadDim: 64,
			MaxPositions: 2048, RopeTheta: 10000, NormEps: 1e-6, Activation: "silu", BOSTokenID: 1, EOSTokenID: 2,
			RopeScaling: engine.RopeScaling{Type: "linear", Factor: 2}}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata/good", c.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(src)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Parse:\n got %+v\nwant %+v", got, c.want)
			}
			out, err := Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse(Marshal): %v\n%s", err, out)
			}
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", again, got)
			}
			out2, _ := Marshal(again)
			if string(out2) != string(out) {
				t.Fatal("Marshal is not deterministic")
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	got, err := Parse([]byte(`{"architectures":["LlamaForCausalLM"]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := engine.Config{Arch: Llama, VocabSize: 32000, Hidden: 4096, Intermediate: 11008, Layers: 32, Heads: 32, KVHeads: 32, HeadDim: 128,
		MaxPositions: 2048, RopeTheta: 10000, NormEps: 1e-6, Activation: "silu", BOSTokenID: 1, EOSTokenID: 2}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	g, err := Parse([]byte(`{"architectures":["GPT2LMHeadModel"],"n_embd":64,"n_head":4,"bos_token_id":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if g.Intermediate != 256 || g.HeadDim != 16 || !g.TieEmbeddings || g.BOSTokenID != -1 || g.EOSTokenID != 50256 {
		t.Fatalf("gpt2 defaults %+v", g)
	}
}

func TestParseBad(t *testing.T) {
	file := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata/bad", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cases := []struct {
		name, src, want string
	}{
		{"bert", file("bert.json"), `config.json: field "architectures": "BertModel" is not supported (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel)`},
		{"mistral sliding window", file("mistral-7b-v0.1.json"), `field "sliding_window": 4096 is smaller than max_position_embeddings 32768`},
		{"mistral default window", `{"architectures":["MistralForCausalLM"]}`, `field "sliding_window": absent`},
		{"qwen sliding", `{"architectures":["Qwen2ForCausalLM"],"use_sliding_window":true,"sliding_window":4096}`, `field "use_sliding_window"`},
		{"no architectures", `{"hidden_size":4}`, `field "architectures": missing`},
		{"two architectures", `{"architectures":["LlamaForCausalLM","GPT2LMHeadModel"]}`, `field "architectures"`},
		{"model_type mismatch", `{"architectures":["LlamaForCausalLM"],"model_type":"qwen2"}`, `field "model_type"`},
		{"wrong type", `{"architectures":["LlamaForCausalLM"],"hidden_size":"big"}`, `field "hidden_size": has JSON type string`},
		{"not json", `{"architectures":`, `config.json:`},
		{"trailing", `{"architectures":["LlamaForCausalLM"]} {}`, `unexpected content`},
		{"zero heads", `{"architectures":["LlamaForCausalLM"],"num_attention_heads":0}`, `field "num_attention_heads"`},
		{"gqa mismatch", `{"architectures":["LlamaForCausalLM"],"num_key_value_heads":5}`, `field "num_key_value_heads"`},
		{"gpt2 heads", `{"architectures":["GPT2LMHeadModel"],"n_embd":10,"n_head":3}`, `field "n_head"`},
		{"activation", `{"architectures":["LlamaForCausalLM"],"hidden_act":"relu"}`, `field "hidden_act": "relu" is not supported`},
		{"gpt2 activation", `{"architectures":["GPT2LMHeadModel"],"activation_function":"relu"}`, `field "activation_function"`},
		{"rope yarn", `{"architectures":["LlamaForCausalLM"],"rope_scaling":{"type":"yarn","factor":4}}`, `field "rope_scaling.rope_type": "yarn" is not supported`},
		{"rope llama3 partial", `{"architectures":["LlamaForCausalLM"],"rope_scaling":{"rope_type":"llama3","factor":8}}`, `field "rope_scaling": llama3 needs`},
		{"rope linear small", `{"architectures":["LlamaForCausalLM"],"rope_scaling":{"type":"linear","factor":0.5}}`, `field "rope_scaling.factor"`},
		{"attention bias", `{"architectures":["LlamaForCausalLM"],"attention_bias":true}`, `field "attention_bias"`},
		{"eps", `{"architectures":["LlamaForCausalLM"],"rms_norm_eps":0}`, `field "rms_norm_eps"`},
		{"eos outside vocab", `{"architectures":["LlamaForCausalLM"],"vocab_size":10,"bos_token_id":1,"eos_token_id":10}`, `field "eos_token_id"`},
		{"huge", `{"architectures":["LlamaForCausalLM"],"hidden_size":99999999999}`, `field "hidden_size"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q (kind %s), want %q", err, errs.Kind(err), c.want)
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	good, _ := Parse([]byte(`{"architectures":["GPT2LMHeadModel"],"n_embd":64,"n_head":4}`))
	cases := []struct {
		name string
		edit func(*engine.Config)
	}{
		{"gpt2 gqa", func(c *engine.Config) { c.KVHeads = 2 }},
		{"llama bias", func(c *engine.Config) { c.Arch = Llama; c.Activation = "silu"; c.RopeTheta = 1e4 }},
		{"unknown arch", func(c *engine.Config) { c.Arch = "BertModel" }},
		{"zero layers", func(c *engine.Config) { c.Layers = 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			if _, err := Marshal(cfg); !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error %v, want invalid", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	entries, _ := os.ReadDir("testdata/good")
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join("testdata/good", e.Name()))
		f.Add(b)
	}
	f.Add([]byte(`{"architectures":["GPT2LMHeadModel"],"n_embd":64,"n_head":4,"eos_token_id":[1,2]}`))
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192}}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error of kind %s: %v", errs.Kind(err), err)
			}
			return
		}
		out, err := Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v", err)
		}
		again, err := Parse(out)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, again, c)
		}
	})
}
