package model

import (
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/reference"
)

const python = reference.PythonPath

func tinyLlama() engine.Config {
	return engine.Config{Arch: "LlamaForCausalLM", VocabSize: 64, Hidden: 32, Intermediate: 48, Layers: 2,
		Heads: 4, KVHeads: 2, HeadDim: 8, MaxPositions: 32, RopeTheta: 500000, NormEps: 1e-5,
		RopeScaling: engine.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 16},
		Activation:  "silu", BOSTokenID: -1, EOSTokenID: -1}
}

func tinyQwen2() engine.Config {
	c := tinyLlama()
	c.Arch, c.AttentionBias, c.TieEmbeddings, c.RopeTheta = "Qwen2ForCausalLM", true, true, 10000
	c.RopeScaling = engine.RopeScaling{}
	c.KVHeads = 1
	return c
}

func tinyGPT2() engine.Config {
	return engine.Config{Arch: "GPT2LMHeadModel", VocabSize: 64, Hidden: 32, Intermediate: 128, Layers: 2,
		Heads: 4, KVHeads: 4, HeadDim: 8, MaxPositions: 32, NormEps: 1e-5, TieEmbeddings: true,
		AttentionBias: true, Activation: "gelu_new", BOSTokenID: -1, EOSTokenID: -1}
}

// noisyWeights makes weights with enough signal for a meaningful comparison.
func noisyWeights(t *testing.T, c engine.Config, seed uint64) map[string]engine.Tensor {
	t.Helper()
	w, err := RandomWeights(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 99))
	for _, k := range slices.Sorted(maps.Keys(w)) {
		tn := w[k]
		for i := range tn.Data {
			switch {
			case strings.HasSuffix(k, "norm.weight") || strings.Contains(k, "ln_") && strings.HasSuffix(k, ".weight"):
				tn.Data[i] = float32(1 + 0.1*r.NormFloat64())
			case len(tn.Shape) == 1:
				tn.Data[i] = float32(0.1 * r.NormFloat64())
			case strings.Contains(k, "wte") || strings.Contains(k, "embed") || strings.Contains(k, "wpe"):
				tn.Data[i] = float32(0.5 * r.NormFloat64())
			default:
				tn.Data[i] = float32(0.15 * r.NormFloat64())
			}
		}
	}
	return w
}

type parityCase struct {
	name string
	cfg  engine.Config
	opts Options
}

func parityCases() []parityCase {
	loRA := LoRAOptions{Rank: 4, Alpha: 8}
	return []parityCase{
		{"llama_gqa_llama3_lora", tinyLlama(), Options{Method: LoRA, LoRA: loRA}},
		{"llama_gqa_llama3_full", tinyLlama(), Options{Method: Full}},
		{"qwen2_mqa_tied_lora", tinyQwen2(), Options{Method: LoRA, LoRA: LoRAOptions{Rank: 2, Alpha: 16, Targets: []string{"q_proj", "v_proj", "down_proj"}}}},
		{"gpt2_lora", tinyGPT2(), Options{Method: LoRA, LoRA: loRA}},
		{"gpt2_full", tinyGPT2(), Options{Method: Full}},
		{"llama_head_mean_lora", tinyLlama(), Options{Method: Head, LoRA: loRA, Head: HeadOptions{NumLabels: 3, Pooling: PoolMean}}},
		{"gpt2_head_last", tinyGPT2(), Options{Method: Head, Head: HeadOptions{NumLabels: 3}}},
	}
}

func parityBatch(c engine.Config) engine.Batch {
	r := rand.New(rand.NewPCG(5, 5))
	var b engine.Batch
	for i, n := range []int{12, 9, 12} {
		ex := engine.Example{Label: i % 3}
		for j := 0; j < n; j++ {
			ex.Tokens = append(ex.Tokens, int32(r.IntN(c.VocabSize)))
		}
		if i == 1 {
			ex.LossMask = make([]bool, n)
			for j := 4; j < n; j++ {
				ex.LossMask[j] = true
			}
		}
		b.Examples = append(b.Examples, ex)
	}
	return b
}

func torchAvailable(t *testing.T) {
	t.Helper()
	reference.Python(t, "torch")
}

// TestTorchParity builds the same tiny models in Go and in torch from one
// weights file and compares logits, loss and gradients.
func TestTorchParity(t *testing.T) {
	torchAvailable(t)
	for _, run := range runParity(t, parityCases(), gemm.FP32) {
		t.Run(run.pc.name, func(t *testing.T) {
			compareParity(t, run.m, run.b, run.ref, fp32Tolerance)
		})
	}
}

// The parity tolerances. fp32: logits and loss to 1e-4, gradients to 1e-3
// relative (float32 sums in a different order). bf16 (the engine's bf16
// products against torch.autocast("cpu", dtype=torch.bfloat16) on the same
// weights): autocast also rounds each product's output to bf16 and runs
// some element-wise work in bf16, where the engine keeps fp32 activations,
// so the two differ by a few bf16 roundings (2⁻⁸ relative each) of every
// activation. torch's logits are themselves bf16 (a product's output), so
// they are compared relatively: ‖Δ‖/‖torch‖ ≤ 2e-2 for logits and
// probabilities, the loss to 1e-2 relative, gradients to 5e-2 relative.
// Measured on the cases below (2026-12-07): logits ≤ 8.5e-3, loss ≤ 8e-4,
// gradients ≤ 2.6e-2.
var (
	fp32Tolerance = parityTolerance{logits: 1e-4, loss: 1e-4, grad: 1e-3}
	bf16Tolerance = parityTolerance{logits: 2e-2, logitsRelative: true, loss: 1e-2, grad: 5e-2}
)

// parityTolerance bounds the differences from torch: logits (max absolute
// difference, or ‖Δ‖/‖torch‖ when logitsRelative), the loss (relative to
// max(1, |loss|)) and each gradient (‖Δ‖/‖torch‖).
type parityTolerance struct {
	logits         float64
	logitsRelative bool
	loss, grad     float64
}

type parityRun struct {
	pc  parityCase
	m   *Model
	b   engine.Batch
	ref map[string]engine.Tensor
}

// runParity builds each case in Go at precision p and runs
// scripts/torchref/reference.py on the same weights (under autocast for
// bf16), returning the models and torch's outputs.
func runParity(t *testing.T, cases []parityCase, p gemm.Precision) []parityRun {
	t.Helper()
	var runs []parityRun
	var dirs []string
	for _, pc := range cases {
		dir := filepath.Join(t.TempDir(), pc.name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		w := noisyWeights(t, pc.cfg, 1)
		pc.opts.Seed = 3
		pc.opts.Precision = p
		m, err := New(pc.cfg, w, pc.opts)
		if err != nil {
			t.Fatalf("%s: %v", pc.name, err)
		}
		if m.Precision() != p {
			t.Fatalf("%s: model computes in %s, want %s", pc.name, m.Precision(), p)
		}
		r := rand.New(rand.NewPCG(8, 8))
		files := map[string]engine.Tensor{}
		for k, v := range w {
			files[k] = v
		}
		for _, p := range m.Params() {
			if strings.HasSuffix(p.Name, "lora_B.weight") { // B starts at zero; make it count
				for i := range p.Data {
					p.Data[i] = float32(0.1 * r.NormFloat64())
				}
			}
			files[p.Name] = engine.Tensor{Shape: p.Shape, Data: p.Data}
		}
		b := parityBatch(pc.cfg)
		writeParityInputs(t, dir, m, pc, files, b)
		runs = append(runs, parityRun{pc: pc, m: m, b: b})
		dirs = append(dirs, dir)
	}
	// One interpreter for all cases: importing torch dominates the run time.
	args := append([]string{filepath.Join("..", "..", "..", "scripts", "torchref", "reference.py")}, dirs...)
	if out, err := exec.Command(python, args...).CombinedOutput(); err != nil {
		t.Fatalf("reference.py: %v\n%s", err, out)
	}
	for i, dir := range dirs {
		ref, err := readST(filepath.Join(dir, "out.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		runs[i].ref = ref
	}
	return runs
}

func writeParityInputs(t *testing.T, dir string, m *Model, pc parityCase, files map[string]engine.Tensor, b engine.Batch) {
	t.Helper()
	c := m.Config()
	cfg := map[string]any{"arch": c.Arch, "hidden": c.Hidden, "layers": c.Layers, "heads": c.Heads,
		"kv_heads": c.KVHeads, "head_dim": c.HeadDim, "rope_theta": c.RopeTheta, "norm_eps": c.NormEps,
		"tie": c.TieEmbeddings, "attention_bias": c.AttentionBias, "activation": c.Activation,
		"method": string(m.opts.Method), "pooling": string(m.opts.Head.Pooling), "precision": string(m.Precision())}
	if c.RopeScaling.Type != "" {
		rs := c.RopeScaling
		cfg["rope_scaling"] = map[string]any{"type": rs.Type, "factor": rs.Factor, "low_freq_factor": rs.LowFreqFactor,
			"high_freq_factor": rs.HighFreqFactor, "original_max_position_embeddings": rs.OriginalMaxPositionEmbeddings}
	}
	if len(m.loras) > 0 {
		cfg["lora"] = map[string]any{"rank": pc.opts.LoRA.Rank, "alpha": pc.opts.LoRA.Alpha}
	}
	var toks [][]int32
	var masks [][]bool
	var labels []int
	for _, ex := range b.Examples {
		toks, masks, labels = append(toks, ex.Tokens), append(masks, ex.LossMask), append(labels, ex.Label)
	}
	for name, v := range map[string]any{"config.json": cfg, "batch.json": map[string]any{"tokens": toks, "loss_mask": masks, "labels": labels}} {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeST(filepath.Join(dir, "weights.safetensors"), files); err != nil {
		t.Fatal(err)
	}
}

func compareParity(t *testing.T, m *Model, b engine.Batch, ref map[string]engine.Tensor, tol parityTolerance) {
	t.Helper()
	loss, count, err := m.ForwardBackward(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := int(ref["count"].Data[0]); count != want {
		t.Errorf("count %d, torch %d", count, want)
	}
	if want := float64(ref["loss_sum"].Data[0]); math.Abs(loss-want) > tol.loss*math.Max(1, math.Abs(want)) {
		t.Errorf("loss %.7g, torch %.7g", loss, want)
	}
	out, err := m.Forward(b)
	if err != nil {
		t.Fatal(err)
	}
	key := "logits"
	if m.score != nil {
		key = "probs"
	}
	d, what := maxAbsDiff(out.Data, ref[key].Data), "max abs diff"
	if tol.logitsRelative {
		d, what = relErr(out.Data, ref[key].Data), "relative error"
	}
	if d > tol.logits || len(out.Data) != len(ref[key].Data) {
		t.Errorf("%s %s %.3g (len %d vs %d)", key, what, d, len(out.Data), len(ref[key].Data))
	}
	worst, worstName := 0.0, ""
	for _, p := range m.Params() {
		g, ok := ref["grad."+p.Name]
		if !ok {
			t.Fatalf("torch has no gradient for %s", p.Name)
		}
		if e := relErr(p.Grad, g.Data); e > worst {
			worst, worstName = e, p.Name
		}
	}
	if worst > tol.grad {
		t.Errorf("gradient relative error %.3g at %s", worst, worstName)
	}
	t.Logf("loss %.6g count %d, %s %s %.2g, %d params, worst grad rel err %.2g (%s)",
		loss, count, key, what, d, len(m.Params()), worst, worstName)
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range min(len(a), len(b)) {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// relErr is ‖a−b‖ / max(‖b‖, 1e-6).
func relErr(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	var num, den float64
	for i := range a {
		d := float64(a[i] - b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num) / math.Max(math.Sqrt(den), 1e-6)
}

// TestTorchParityBF16 compares the engine's bf16 path with PyTorch's
// autocast on the same weights (bf16Tolerance), and checks that the bf16
// path really rounds: its logits move from the engine's own fp32 logits by
// more than the fp32 tolerance.
func TestTorchParityBF16(t *testing.T) {
	if _, p := gemm.NewPrecision(1, gemm.BF16); p != gemm.BF16 {
		t.Skip("this CPU has no native bf16 matrix product (AVX512_BF16); the bf16 precision computes in fp32 here")
	}
	torchAvailable(t)
	for _, run := range runParity(t, parityCases(), gemm.BF16) {
		t.Run(run.pc.name, func(t *testing.T) {
			compareParity(t, run.m, run.b, run.ref, bf16Tolerance)
			bf, err := run.m.Forward(run.b)
			if err != nil {
				t.Fatal(err)
			}
			bfData := append([]float32(nil), bf.Data...)
			run.m.rt.GEMM = gemm.New(2)
			fp, err := run.m.Forward(run.b)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(bfData, fp.Data); d <= fp32Tolerance.logits {
				t.Errorf("bf16 and fp32 outputs within %.3g: the bf16 path did not round", d)
			} else {
				t.Logf("bf16 vs the engine's fp32: max abs diff %.3g", d)
			}
		})
	}
}
