package model

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(c *engine.Config)
		field string
	}{
		{"arch", func(c *engine.Config) { c.Arch = "BertModel" }, "architectures"},
		{"vocab", func(c *engine.Config) { c.VocabSize = 0 }, "vocab_size"},
		{"kv_heads", func(c *engine.Config) { c.KVHeads = 3 }, "num_key_value_heads"},
		{"eps", func(c *engine.Config) { c.NormEps = 0 }, "rms_norm_eps"},
		{"act", func(c *engine.Config) { c.Activation = "relu" }, "hidden_act"},
		{"rope_type", func(c *engine.Config) { c.RopeScaling.Type = "yarn" }, "rope_scaling"},
		{"rope_llama3", func(c *engine.Config) { c.RopeScaling.HighFreqFactor = 0.5 }, "llama3"},
		{"theta", func(c *engine.Config) { c.RopeTheta = 0 }, "rope_theta"},
		{"max_pos", func(c *engine.Config) { c.MaxPositions = 0 }, "max_position_embeddings"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyLlama()
			tc.edit(&c)
			_, err := New(c, nil, Options{})
			if err == nil || !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("got %v, want an invalid error naming %q", err, tc.field)
			}
		})
	}
}

func TestOptionAndWeightErrors(t *testing.T) {
	c := tinyLlama()
	w, err := RandomWeights(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	short := map[string]engine.Tensor{}
	for k, v := range w {
		short[k] = v
	}
	delete(short, "model.layers.1.mlp.up_proj.weight")
	bad := map[string]engine.Tensor{}
	for k, v := range w {
		bad[k] = v
	}
	bad["model.norm.weight"] = engine.Tensor{Shape: []int{3}, Data: make([]float32, 3)}
	cases := []struct {
		name    string
		weights map[string]engine.Tensor
		opts    Options
		want    string
	}{
		{"missing", short, Options{}, "model.layers.1.mlp.up_proj.weight"},
		{"shape", bad, Options{}, "model.norm.weight"},
		{"method", w, Options{Method: "prefix"}, "method"},
		{"rank", w, Options{Method: LoRA}, "lora.rank"},
		{"alpha", w, Options{Method: LoRA, LoRA: LoRAOptions{Rank: 2}}, "lora.alpha"},
		{"dropout", w, Options{Method: LoRA, LoRA: LoRAOptions{Rank: 2, Alpha: 1, Dropout: 1}}, "lora.dropout"},
		{"target", w, Options{Method: LoRA, LoRA: LoRAOptions{Rank: 2, Alpha: 1, Targets: []string{"c_attn"}}}, "c_attn"},
		{"labels", w, Options{Method: Head, Head: HeadOptions{NumLabels: 1}}, "num_labels"},
		{"pooling", w, Options{Method: Head, Head: HeadOptions{NumLabels: 2, Pooling: "max"}}, "pooling"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(c, tc.weights, tc.opts)
			if err == nil || !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid error naming %q", err, tc.want)
			}
		})
	}
}

func TestBatchErrors(t *testing.T) {
	m, err := New(tinyLlama(), nil, Options{Method: Head, Head: HeadOptions{NumLabels: 2}})
	if err != nil {
		t.Fatal(err)
	}
	long := make([]int32, 40)
	cases := []struct {
		name string
		b    engine.Batch
		want string
	}{
		{"empty", engine.Batch{}, "no examples"},
		{"no_tokens", engine.Batch{Examples: []engine.Example{{Label: 0}}}, "example 0 has no tokens"},
		{"too_long", engine.Batch{Examples: []engine.Example{{Tokens: long}}}, "max_position_embeddings"},
		{"token", engine.Batch{Examples: []engine.Example{{Tokens: []int32{1}}, {Tokens: []int32{1, 64}}}}, "example 1 token 64 at position 1"},
		{"mask", engine.Batch{Examples: []engine.Example{{Tokens: []int32{1, 2}, LossMask: []bool{true}}}}, "loss mask"},
		{"label", engine.Batch{Examples: []engine.Example{{Tokens: []int32{1}, Label: 2}}}, "label 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := m.ForwardBackward(tc.b)
			if err == nil || !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid error containing %q", err, tc.want)
			}
		})
	}
}

// gradHash runs n steps from a fresh model and hashes losses and gradients.
func gradHash(t *testing.T, c engine.Config, opts Options, steps int) string {
	t.Helper()
	m, err := New(c, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	b := parityBatch(c)
	for s := 0; s < steps; s++ {
		loss, n, err := m.ForwardBackward(b)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%x %d\n", math.Float64bits(loss), n)
		for _, p := range m.Params() {
			for _, g := range p.Grad {
				h.Write(binary.LittleEndian.AppendUint32(nil, math.Float32bits(g)))
			}
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestDeterministic: same seed ⇒ same bits, whatever the worker count;
// LoRA dropout masks come from the seed.
func TestDeterministic(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  engine.Config
		opts Options
	}{
		{"llama_full", tinyLlama(), Options{Method: Full, Seed: 4}},
		{"llama_lora_dropout", tinyLlama(), Options{Method: LoRA, Seed: 4, LoRA: LoRAOptions{Rank: 4, Alpha: 8, Dropout: 0.2}}},
		{"gpt2_head_lora", tinyGPT2(), Options{Method: Head, Seed: 4, LoRA: LoRAOptions{Rank: 2, Alpha: 2, Dropout: 0.1}, Head: HeadOptions{NumLabels: 3, Pooling: PoolMean}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var first string
			for _, w := range []int{1, 2, 3} {
				o := tc.opts
				o.Workers = w
				got := gradHash(t, tc.cfg, o, 2)
				if first == "" {
					first = got
				} else if got != first {
					t.Fatalf("workers %d: hash %s, workers 1: %s", w, got, first)
				}
			}
			o := tc.opts
			o.Seed++
			if tc.opts.LoRA.Dropout > 0 || tc.opts.Method == Full {
				if gradHash(t, tc.cfg, o, 2) == first {
					t.Fatal("a different seed gave identical gradients")
				}
			}
		})
	}
}

// TestLoRAStartsAtBase: B = 0 so a fresh adapter does not change logits,
// and MergedWeights folds a trained adapter into the base exactly enough.
func TestLoRAStartsAtBase(t *testing.T) {
	for _, c := range []engine.Config{tinyLlama(), tinyGPT2()} {
		t.Run(c.Arch, func(t *testing.T) {
			w := noisyWeights(t, c, 2)
			base, err := New(c, w, Options{Method: Full})
			if err != nil {
				t.Fatal(err)
			}
			b := parityBatch(c)
			out, err := base.Forward(b)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]float32(nil), out.Data...)
			lm, err := New(c, w, Options{Method: LoRA, Seed: 1, LoRA: LoRAOptions{Rank: 3, Alpha: 6}})
			if err != nil {
				t.Fatal(err)
			}
			out, err = lm.Forward(b)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(out.Data, want); d != 0 {
				t.Fatalf("fresh LoRA changed logits by %g", d)
			}
			for _, p := range lm.Params() {
				for i := range p.Data {
					p.Data[i] += float32(i%7-3) * 0.01
				}
			}
			out, err = lm.Forward(b)
			if err != nil {
				t.Fatal(err)
			}
			adapted := append([]float32(nil), out.Data...)
			merged, err := New(c, lm.MergedWeights(), Options{Method: Full})
			if err != nil {
				t.Fatal(err)
			}
			out, err = merged.Forward(b)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(out.Data, adapted); d > 1e-4 || maxAbsDiff(adapted, want) < 1e-3 {
				t.Fatalf("merged differs by %g (adapter moved logits by %g)", d, maxAbsDiff(adapted, want))
			}
		})
	}
}

func TestParamsAndWeights(t *testing.T) {
	c := tinyLlama()
	m, err := New(c, nil, Options{Method: Head, Seed: 1, LoRA: LoRAOptions{Rank: 2, Alpha: 4, Targets: []string{"q_proj", "v_proj"}},
		Head: HeadOptions{NumLabels: 3}})
	if err != nil {
		t.Fatal(err)
	}
	ps := m.Params()
	if len(ps) != 2*2*c.Layers+1 {
		t.Fatalf("%d params", len(ps))
	}
	first, last := ps[0], ps[len(ps)-1]
	if first.Name != "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" || fmt.Sprint(first.Shape) != "[2 32]" {
		t.Errorf("first param %s %v", first.Name, first.Shape)
	}
	if ps[1].Name != "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight" || fmt.Sprint(ps[1].Shape) != "[32 2]" {
		t.Errorf("second param %s %v", ps[1].Name, ps[1].Shape)
	}
	for _, v := range ps[1].Data {
		if v != 0 {
			t.Fatal("lora_B not zero-initialised")
		}
	}
	if last.Name != "score.weight" || fmt.Sprint(last.Shape) != "[3 32]" {
		t.Errorf("last param %s %v", last.Name, last.Shape)
	}
	w := m.Weights()
	if _, ok := w["lm_head.weight"]; !ok {
		t.Error("untied lm_head.weight missing from Weights")
	}
	if _, ok := w["score.weight"]; !ok {
		t.Error("score.weight missing from Weights")
	}
	probs, err := m.Forward(parityBatch(c))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		var s float64
		for _, p := range probs.Data[i*3 : i*3+3] {
			s += float64(p)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("probabilities of example %d sum to %g", i, s)
		}
	}
}

// TestLossMaskAndPadding: a masked prompt contributes nothing, and an
// example's loss does not depend on the other examples in the batch.
func TestLossMaskAndPadding(t *testing.T) {
	c := tinyLlama()
	m, err := New(c, nil, Options{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	short := engine.Example{Tokens: []int32{1, 2, 3, 4}, LossMask: []bool{false, false, true, false}}
	long := engine.Example{Tokens: []int32{5, 6, 7, 8, 9, 10, 11, 12}}
	alone, n1, err := m.ForwardBackward(engine.Batch{Examples: []engine.Example{short}})
	if err != nil || n1 != 1 {
		t.Fatalf("count %d err %v", n1, err)
	}
	both, n2, err := m.ForwardBackward(engine.Batch{Examples: []engine.Example{short, long}})
	if err != nil || n2 != 8 {
		t.Fatalf("count %d err %v", n2, err)
	}
	other, _, err := m.ForwardBackward(engine.Batch{Examples: []engine.Example{long}})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(both-alone-other) > 1e-4 {
		t.Fatalf("batched loss %g, separately %g + %g", both, alone, other)
	}
}

// FuzzForward feeds arbitrary token batches: the model either rejects them
// with an invalid error or returns finite logits of the right shape.
func FuzzForward(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint8(1))
	f.Add([]byte{200, 0, 63, 64}, uint8(2))
	f.Add([]byte{}, uint8(0))
	c := tinyLlama()
	m, err := New(c, nil, Options{Seed: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte, split uint8) {
		var b engine.Batch
		parts := int(split%3) + 1
		for p := 0; p < parts; p++ {
			var ex engine.Example
			for i := p; i < len(raw); i += parts {
				ex.Tokens = append(ex.Tokens, int32(raw[i])-8)
			}
			b.Examples = append(b.Examples, ex)
		}
		out, err := m.Forward(b)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		if len(out.Shape) != 3 || out.Shape[0] != parts || out.Shape[2] != c.VocabSize || len(out.Data) != engine.Numel(out.Shape) {
			t.Fatalf("shape %v, %d values", out.Shape, len(out.Data))
		}
		for _, v := range out.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatal("non-finite logit")
			}
		}
	})
}

// TestRNGStateResume: restoring the dropout RNG state replays the same step.
func TestRNGStateResume(t *testing.T) {
	c := tinyLlama()
	m, err := New(c, nil, Options{Method: LoRA, Seed: 5, LoRA: LoRAOptions{Rank: 2, Alpha: 4, Dropout: 0.3}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() { // B starts at zero, which hides the masks
		for i := range p.Data {
			p.Data[i] += float32(i%5-2) * 0.05
		}
	}
	b := parityBatch(c)
	state, err := m.RNGState()
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := m.ForwardBackward(b)
	if err != nil {
		t.Fatal(err)
	}
	second, _, _ := m.ForwardBackward(b)
	if first == second {
		t.Fatal("dropout masks did not change between steps")
	}
	if err := m.SetRNGState(state); err != nil {
		t.Fatal(err)
	}
	again, _, _ := m.ForwardBackward(b)
	if again != first {
		t.Fatalf("replayed loss %v, first %v", again, first)
	}
	if err := m.SetRNGState([]byte("junk")); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("bad state: %v", err)
	}
}
