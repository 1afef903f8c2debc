package worker

import (
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/recipe"
)

// TestRecipePrecision: train.precision reaches the model, which computes in
// bf16 where the CPU has a native bf16 product and in fp32 elsewhere.
func TestRecipePrecision(t *testing.T) {
	_, native := gemm.NewPrecision(1, gemm.BF16)
	for _, tc := range []struct {
		name, train string
		want        gemm.Precision
	}{
		{"default", "", gemm.FP32},
		{"fp32", "train: {precision: fp32}\n", gemm.FP32},
		{"bf16", "train: {precision: bf16}\n", native},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "name: p\ntask: sft\nbase: tailor-tiny\ndata: {dataset: chat}\nmethod: {kind: lora}\n" + tc.train + "region: local\n"
			r, err := recipe.Parse("p.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			c := engine.Config{Arch: "LlamaForCausalLM", VocabSize: 64, Hidden: 32, Intermediate: 64, Layers: 1, Heads: 2, KVHeads: 1,
				HeadDim: 16, MaxPositions: 32, RopeTheta: 10000, NormEps: 1e-5, Activation: "silu", BOSTokenID: -1, EOSTokenID: -1}
			w, err := model.RandomWeights(c, 1)
			if err != nil {
				t.Fatal(err)
			}
			m, err := model.New(c, w, modelOptions(r, 0, 1))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Precision(); got != tc.want {
				t.Errorf("model computes in %s, want %s", got, tc.want)
			}
		})
	}
}
