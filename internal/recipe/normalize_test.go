package recipe

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"testing"
)

const baseRecipe = `name: sentiment
task: classify
base: tailor-tiny@champion
data:
  dataset: reviews
method:
  lora:
    rank: 8
    targets: [q_proj, v_proj]
train:
  epochs: 2
  learning_rate: 0.0002
eval:
  suite:
    - metric: accuracy
  gates:
    - latency_p95_ms: 200
budget:
  max_duration: 90m
region: local
`

func mustID(t *testing.T, src string) string {
	t.Helper()
	r, err := Parse("r.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	id, err := r.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestNormalizeSameID(t *testing.T) {
	want := mustID(t, baseRecipe)
	tests := []struct{ name, src string }{
		{"reordered keys and comments", `# a comment
region: local   # trailing comment
budget: {max_duration: 1h30m}
eval:
  gates: [{latency_p95_ms: 200.0}]
  suite: [{metric: accuracy, name: accuracy}]
train: {learning_rate: 2e-4, epochs: 2}
method:
  lora: {targets: [v_proj, q_proj], rank: 8}
data: {dataset: reviews}
base: "tailor-tiny@champion"
task: classify
name: 'sentiment'
`},
		{"explicit defaults", `name: sentiment
description: ""
task: classify
base: tailor-tiny@champion
data:
  dataset: reviews
  version: latest
  split: train
  eval_split: validation
  text_field: text
  label_field: label
method:
  kind: lora
  lora:
    rank: 8
    alpha: 16
    dropout: 0.0
    targets: [q_proj, v_proj]
  head:
    pooling: last
train:
  epochs: 2
  max_steps: 0
  batch_size: 8
  grad_accum: 1
  learning_rate: 0.00020
  schedule: linear
  warmup_steps: 0
  warmup_ratio: 0
  weight_decay: 0
  grad_clip: 1.0
  max_seq_len: 512
  checkpoint_every: 500
  packing: false
seed: 0
eval:
  suite:
    - name: accuracy
      metric: accuracy
      split: validation
  gates:
    - metric: latency_p95_ms
      op: "<="
      value: 200
budget:
  max_steps: 0
  max_duration: 5400s
  max_cost_usd: 0
  max_energy_kwh: 0
region: local
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustID(t, tc.src); got != want {
				t.Errorf("ID %s, want %s", got, want)
			}
		})
	}
}

func TestNormalizeDifferentID(t *testing.T) {
	base := mustID(t, baseRecipe)
	tests := []struct{ name, old, new string }{
		{"seed", "region: local\n", "seed: 1\nregion: local\n"},
		{"rank", "rank: 8", "rank: 16"},
		{"base version", "tailor-tiny@champion", "tailor-tiny@v2"},
		{"learning rate", "0.0002", "0.0003"},
		{"gate bound", "latency_p95_ms: 200", "latency_p95_ms: 201"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := replaceOnce(t, baseRecipe, tc.old, tc.new)
			if got := mustID(t, src); got == base {
				t.Errorf("changing %s kept ID %s", tc.name, got)
			}
		})
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	t.Fatalf("%q not in recipe", old)
	return ""
}

func TestIDIsSHA256OfNormalize(t *testing.T) {
	r, err := Parse("r.yaml", []byte(baseRecipe))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	id, err := r.ID()
	if err != nil {
		t.Fatal(err)
	}
	if id != hex.EncodeToString(sum[:]) {
		t.Errorf("ID %s is not sha256 of Normalize", id)
	}
}

// TestValidateInCode covers recipes built without Parse: errors carry no
// position, and values Parse can never produce (NaN, bad selectors) are
// still rejected, by Validate and by Normalize.
func TestValidateInCode(t *testing.T) {
	valid := func() *Recipe {
		r, err := Parse("r.yaml", []byte(baseRecipe))
		if err != nil {
			t.Fatal(err)
		}
		c := exported(r)
		return &c
	}
	tests := []struct {
		name   string
		mutate func(r *Recipe)
		want   string
	}{
		{"valid", func(*Recipe) {}, ""},
		{"nan learning rate", func(r *Recipe) { r.Train.LearningRate = math.NaN() },
			"recipe: train.learning_rate: expected a finite number, got NaN"},
		{"selector kind mismatch", func(r *Recipe) { r.Base = &Selector{Name: "m", Ref: "v2", Kind: RefAlias} },
			`recipe: base: selector "m@v2" has kind "alias", want "version"`},
		{"lora without kind lora", func(r *Recipe) { r.Method.Kind = "head" },
			"recipe: method.lora: only applies to kind lora (kind is head)"},
		{"negative budget", func(r *Recipe) { r.Budget.MaxCostUSD = -1 },
			"recipe: budget.max_cost_usd: must be >= 0, got -1"},
		{"gate both forms", func(r *Recipe) { r.Eval.Gates[0].NotWorseThan = "champion" },
			"recipe: eval.gates[0]: use either op and value, or not_worse_than and epsilon, not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := valid()
			tc.mutate(r)
			err := r.Validate(ValidateOptions{})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Fatalf("Validate: got %q, want %q", got, tc.want)
			}
			if _, nerr := r.Normalize(); (nerr == nil) != (tc.want == "") {
				t.Errorf("Normalize error %v, want error %v", nerr, tc.want != "")
			}
		})
	}
}
