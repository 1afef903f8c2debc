package train

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/reference"
)

type torchCase struct {
	Name  string `json:"name"`
	Hyper struct {
		Optimizer   string  `json:"optimizer"`
		Beta1       float64 `json:"beta1"`
		Beta2       float64 `json:"beta2"`
		Eps         float64 `json:"eps"`
		WeightDecay float64 `json:"weight_decay"`
		Momentum    float64 `json:"momentum"`
	} `json:"hyper"`
	Shapes [][]int       `json:"shapes"`
	Init   [][]float64   `json:"init"`
	Grads  [][][]float64 `json:"grads"`
	LRs    []float64     `json:"lrs"`
	Want   [][][]float64 `json:"want"`
}

// checkTorchCases replays each PyTorch trajectory with our optimizer and
// requires every parameter after every step to be within 1e-6.
func checkTorchCases(t *testing.T, js []byte) {
	var ref struct {
		Torch string      `json:"torch"`
		Cases []torchCase `json:"cases"`
	}
	if err := json.Unmarshal(js, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) == 0 {
		t.Fatal("no reference cases")
	}
	for _, tc := range ref.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			var params []*engine.Param
			for i, shape := range tc.Shapes {
				p := newParam("p"+string(rune('0'+i)), shape...)
				for j, v := range tc.Init[i] {
					p.Data[j] = float32(v)
				}
				params = append(params, p)
			}
			h := tc.Hyper
			var opt Optimizer = NewAdamW(params, AdamWConfig{Beta1: h.Beta1, Beta2: h.Beta2, Eps: h.Eps, WeightDecay: h.WeightDecay})
			if h.Optimizer == "sgd" {
				opt = NewSGD(params, SGDConfig{Momentum: h.Momentum, WeightDecay: h.WeightDecay})
			}
			var worst float64
			for step, lr := range tc.LRs {
				for i, p := range params {
					for j, g := range tc.Grads[step][i] {
						p.Grad[j] = float32(g)
					}
				}
				opt.Step(params, lr, step+1)
				for i, p := range params {
					for j, w := range tc.Want[step][i] {
						worst = math.Max(worst, math.Abs(float64(p.Data[j])-w))
					}
				}
			}
			if worst > 1e-6 {
				t.Errorf("max abs diff from torch %s = %g, want <= 1e-6", ref.Torch, worst)
			}
			t.Logf("max abs diff from torch %s: %g", ref.Torch, worst)
		})
	}
}

func TestOptimizersMatchTorchGolden(t *testing.T) {
	js, err := os.ReadFile("testdata/torch_optim.json")
	if err != nil {
		t.Fatal(err)
	}
	checkTorchCases(t, js)
}

// TestOptimizersMatchTorchLive regenerates the reference with Debian's
// python3 and torch when present, so the golden file cannot drift.
func TestOptimizersMatchTorchLive(t *testing.T) {
	py := reference.Python(t, "torch")
	out, err := exec.Command(py, "testdata/torch_optim.py").Output()
	if err != nil {
		t.Fatalf("run torch reference: %v", err)
	}
	checkTorchCases(t, out)
}

func TestClipGradNorm(t *testing.T) {
	mk := func(g ...float32) *engine.Param {
		p := newParam("g", len(g))
		copy(p.Grad, g)
		return p
	}
	tests := []struct {
		name     string
		grads    [][]float32
		max      float64
		wantNorm float64
		wantSum  float64 // resulting global norm
	}{
		{"no clip when below", [][]float32{{3}, {4}}, 10, 5, 5},
		{"clip to max", [][]float32{{3, 0}, {4}}, 1, 5, 1 / (1 + 1e-6/5) * 1},
		{"disabled", [][]float32{{30}, {40}}, 0, 50, 50},
		{"zero gradients", [][]float32{{0}, {0, 0}}, 1, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ps []*engine.Param
			for _, g := range tc.grads {
				ps = append(ps, mk(g...))
			}
			if got := ClipGradNorm(ps, tc.max); math.Abs(got-tc.wantNorm) > 1e-12 {
				t.Errorf("norm = %v, want %v", got, tc.wantNorm)
			}
			if got := GradNorm(ps); math.Abs(got-tc.wantSum) > 1e-6 {
				t.Errorf("norm after clip = %v, want %v", got, tc.wantSum)
			}
		})
	}
}

// TestModelGradients checks the test models' analytic gradients against
// central finite differences, so the training tests rest on correct models.
func TestModelGradients(t *testing.T) {
	data := modularData(3)
	tests := []struct {
		name  string
		model engine.Trainable
		batch engine.Batch
	}{
		{"softmax", newSoftmaxReg(9, 3, 1), engine.Batch{Examples: data[:5]}},
		{"mlp", newMLP(9, 6, 3, 0, 2), engine.Batch{Examples: data[3:9]}},
		{"bigram", newBigram(6, 3), engine.Batch{Examples: lmData(4, 6, 4)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			params := tc.model.Params()
			zeroGrads(params)
			if _, _, err := tc.model.ForwardBackward(tc.batch); err != nil {
				t.Fatal(err)
			}
			var analytic [][]float32
			for _, p := range params {
				analytic = append(analytic, append([]float32(nil), p.Grad...))
			}
			const h = 1e-2
			for k, p := range params {
				for i := 0; i < len(p.Data); i += 1 + len(p.Data)/7 {
					orig := p.Data[i]
					loss := func(v float32) float64 {
						p.Data[i] = v
						l, _, _ := tc.model.ForwardBackward(tc.batch)
						return l
					}
					num := (loss(orig+h) - loss(orig-h)) / (2 * h)
					p.Data[i] = orig
					if math.Abs(num-float64(analytic[k][i])) > 1e-3*math.Max(1, math.Abs(num)) {
						t.Errorf("%s[%d]: analytic %v, numeric %v", p.Name, i, analytic[k][i], num)
					}
				}
			}
		})
	}
}
