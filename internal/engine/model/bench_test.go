package model

import (
	"math/rand/v2"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
)

// benchConfig is the engine benchmark shape: d_model 256, 4 layers, 4
// heads, ffn 1024, vocab 4096 (Llama layout, tied embeddings); batches of
// 8 × 128 tokens. scripts/torchref/bench.py measures the same in torch.
func benchConfig() engine.Config {
	return engine.Config{Arch: "LlamaForCausalLM", VocabSize: 4096, Hidden: 256, Intermediate: 1024, Layers: 4,
		Heads: 4, KVHeads: 4, HeadDim: 64, MaxPositions: 128, RopeTheta: 10000, NormEps: 1e-5,
		TieEmbeddings: true, Activation: "silu", BOSTokenID: -1, EOSTokenID: -1}
}

func benchBatch(c engine.Config, batch, seq int) engine.Batch {
	r := rand.New(rand.NewPCG(1, 1))
	var b engine.Batch
	for i := 0; i < batch; i++ {
		ex := engine.Example{Label: -1, Tokens: make([]int32, seq)}
		for j := range ex.Tokens {
			ex.Tokens[j] = int32(r.IntN(c.VocabSize))
		}
		b.Examples = append(b.Examples, ex)
	}
	return b
}

func benchModel(b *testing.B, opts Options) (*Model, engine.Batch) {
	c := benchConfig()
	opts.Seed = 1
	m, err := New(c, nil, opts)
	if err != nil {
		b.Fatal(err)
	}
	return m, benchBatch(c, 8, 128)
}

func reportTokens(b *testing.B, batch engine.Batch) {
	n := 0
	for _, ex := range batch.Examples {
		n += len(ex.Tokens)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
}

func benchTrain(b *testing.B, opts Options) {
	m, batch := benchModel(b, opts)
	if _, _, err := m.ForwardBackward(batch); err != nil { // warm buffers
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range m.Params() {
			clear(p.Grad)
		}
		if _, _, err := m.ForwardBackward(batch); err != nil {
			b.Fatal(err)
		}
	}
	reportTokens(b, batch)
}

// BenchmarkTrainFull is one full fine-tune step (zero grads, forward, backward).
func BenchmarkTrainFull(b *testing.B) { benchTrain(b, Options{Method: Full}) }

// BenchmarkTrainLoRA is one LoRA step, r=8 on every linear layer.
func BenchmarkTrainLoRA(b *testing.B) {
	benchTrain(b, Options{Method: LoRA, LoRA: LoRAOptions{Rank: 8, Alpha: 16}})
}

// BenchmarkForward is inference logits for the batch.
func BenchmarkForward(b *testing.B) {
	m, batch := benchModel(b, Options{Method: Full})
	if _, err := m.Forward(batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Forward(batch); err != nil {
			b.Fatal(err)
		}
	}
	reportTokens(b, batch)
}
