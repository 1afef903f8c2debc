package basemodel

import (
	"math/rand/v2"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/hfconfig"
)

// TestExpectedTensorsParamCounts checks the tensor tables against the
// parameter counts the published checkpoints report.
func TestExpectedTensorsParamCounts(t *testing.T) {
	cases := []struct {
		name string
		cfg  engine.Config
		want int64
	}{
		{"gpt2", engine.Config{Arch: hfconfig.GPT2, VocabSize: 50257, Hidden: 768, Intermediate: 3072, Layers: 12, Heads: 12, KVHeads: 12, HeadDim: 64, MaxPositions: 1024, TieEmbeddings: true, AttentionBias: true}, 124439808},
		{"SmolLM-135M", engine.Config{Arch: hfconfig.Llama, VocabSize: 49152, Hidden: 576, Intermediate: 1536, Layers: 30, Heads: 9, KVHeads: 3, HeadDim: 64, MaxPositions: 2048, TieEmbeddings: true}, 134515008},
		{"Qwen2.5-0.5B", engine.Config{Arch: hfconfig.Qwen2, VocabSize: 151936, Hidden: 896, Intermediate: 4864, Layers: 24, Heads: 14, KVHeads: 2, HeadDim: 64, MaxPositions: 32768, TieEmbeddings: true, AttentionBias: true}, 494032768},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var n int64
			for _, s := range ExpectedTensors(c.cfg, "") {
				if !s.Optional && !s.Buffer {
					n += int64(engine.Numel(s.Shape))
				}
			}
			if n != c.want {
				t.Fatalf("params %d, want %d", n, c.want)
			}
		})
	}
}

// TestImportArchitectures imports tiny GPT-2 (both key prefixes, with the
// old attention-mask buffers) and Qwen2 (q/k/v biases) folders.
func TestImportArchitectures(t *testing.T) {
	gpt2 := engine.Config{Arch: hfconfig.GPT2, VocabSize: 32, Hidden: 8, Intermediate: 32, Layers: 2, Heads: 2, KVHeads: 2, HeadDim: 4,
		MaxPositions: 16, NormEps: 1e-5, TieEmbeddings: true, AttentionBias: true, Activation: "gelu_new", BOSTokenID: 1, EOSTokenID: 1}
	qwen := engine.Config{Arch: hfconfig.Qwen2, VocabSize: 32, Hidden: 8, Intermediate: 16, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 4,
		MaxPositions: 16, RopeTheta: 1e6, NormEps: 1e-6, AttentionBias: true, Activation: "silu", BOSTokenID: -1, EOSTokenID: 2}
	cases := []struct {
		name    string
		cfg     engine.Config
		prefix  string
		buffers bool
		params  int64
	}{
		{"gpt2 bare", gpt2, "", true, 32*8 + 16*8 + 2*8 + 2*(4*8+8*24+24+8*8+8+8*32+32+32*8+8)},
		{"gpt2 transformer prefix", gpt2, "transformer.", false, 32*8 + 16*8 + 2*8 + 2*(4*8+8*24+24+8*8+8+8*32+32+32*8+8)},
		{"qwen2", qwen, "", false, 2*32*8 + 8 + (2*8 + 8*8 + 8 + 2*(4*8+4) + 8*8 + 3*16*8)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			w := map[string]engine.Tensor{}
			for _, s := range ExpectedTensors(c.cfg, c.prefix) {
				if s.Optional && !(c.buffers && s.Buffer) {
					continue
				}
				d := make([]float32, engine.Numel(s.Shape))
				for i := range d {
					d[i] = float32(rng.NormFloat64())
				}
				w[s.Name] = engine.Tensor{Shape: s.Shape, Data: d}
			}
			cfgJSON, err := hfconfig.Marshal(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			folder := map[string][]byte{"config.json": cfgJSON, "tokenizer.json": tokenizerJSON(), "model.safetensors": encode(t, w)}
			m, _, err := importDir(t, folder, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if m.Params != c.params || m.Arch != c.cfg.Arch {
				t.Fatalf("params %d arch %s, want %d", m.Params, m.Arch, c.params)
			}
		})
	}
}
