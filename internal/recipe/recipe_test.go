package recipe

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

var update = flag.Bool("update", false, "rewrite testdata/*.normalized.yaml golden files")

var testRegions = ValidateOptions{Regions: []string{"local", "eu-west"}}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exported returns a copy of r without the source positions, so recipes
// parsed from different texts compare equal when they mean the same thing.
func exported(r *Recipe) Recipe {
	c := *r
	c.file, c.pos = "", nil
	return c
}

func TestParseGood(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) < 4 {
		t.Fatalf("want at least 4 good recipes, got %d (%v)", len(files), err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			r, err := Parse(name, readTestdata(t, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(testRegions); err != nil {
				t.Fatal(err)
			}
			norm, err := r.Normalize()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", strings.TrimSuffix(name, ".good.yaml")+".normalized.yaml")
			if *update {
				if err := os.WriteFile(golden, norm, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(norm) != string(want) {
				t.Errorf("Normalize differs from %s:\n%s", golden, norm)
			}
			back, err := Parse("normalized.yaml", norm)
			if err != nil {
				t.Fatalf("parse normalized form: %v\n%s", err, norm)
			}
			if !reflect.DeepEqual(exported(back), exported(r)) {
				t.Errorf("round trip changed the recipe:\n got %+v\nwant %+v", exported(back), exported(r))
			}
			again, err := back.Normalize()
			if err != nil || string(again) != string(norm) {
				t.Errorf("Normalize is not a fixed point (err %v)", err)
			}
		})
	}
}

// TestParseFields pins what the LoRA classifier example decodes to, so the
// defaults and the gate shorthand are checked field by field.
func TestParseFields(t *testing.T) {
	r, err := Parse("x.yaml", readTestdata(t, "lora-classifier.good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Recipe{
		Name:        "sentiment-lora",
		Description: "Positive/negative product reviews.",
		Task:        TaskClassify,
		Base:        &Selector{Name: "tailor-tiny", Ref: "champion", Kind: RefAlias},
		Data: Data{Dataset: "reviews", Version: "v3", Split: "train", EvalSplit: "validation",
			TextField: "review", LabelField: "sentiment"},
		Method: Method{Kind: "lora",
			LoRA: &LoRA{Rank: 16, Alpha: 32, Dropout: 0.05, Targets: []string{"q_proj", "v_proj"}},
			Head: &Head{Pooling: "mean"}},
		Train: Train{Epochs: 3, BatchSize: 16, GradAccum: 1, LearningRate: 2e-4, Schedule: "cosine",
			WarmupRatio: 0.06, WeightDecay: 0.01, GradClip: 1, MaxSeqLen: 256, CheckpointEvery: 500, Precision: "fp32"},
		Seed: 42,
		Eval: Eval{
			Suite: []SuiteItem{
				{Name: "accuracy", Metric: "accuracy", Split: "validation"},
				{Name: "f1", Metric: "macro_f1", Split: "validation"},
				{Name: "ece", Metric: "ece", Split: "validation"},
			},
			Gates: []Gate{
				{Metric: "accuracy", Op: ">=", Value: 0.85},
				{Metric: "f1", NotWorseThan: "champion", Epsilon: 0.01},
				{Metric: MetricLatencyP95, Op: "<=", Value: 150},
			},
		},
		Budget: Budget{MaxDuration: 30 * 60 * 1e9, MaxCostUSD: 2.5},
		Region: "local",
	}
	if got := exported(r); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseBad(t *testing.T) {
	tests := []struct{ file, want string }{
		{"misspelt-key.bad.yaml", `misspelt-key.bad.yaml:8:3: train.learing_rate: unknown field "learing_rate" (did you mean "learning_rate"?)`},
		{"learning-rate-not-number.bad.yaml", `learning-rate-not-number.bad.yaml:12:18: train.learning_rate: expected a number, got "fast"`},
		{"unknown-task.bad.yaml", `unknown-task.bad.yaml:2:7: task: unknown task "classification" (want classify, sft, pretrain)`},
		{"bad-selector.bad.yaml", `bad-selector.bad.yaml:3:7: base: selector "tailor-tiny@": nothing after '@'; write latest, v<N>, a content id (or its first 7+ hex digits) or an alias`},
		{"bad-selector-ref.bad.yaml", `bad-selector-ref.bad.yaml:3:7: base: selector "tailor-tiny@Champion!": version "Champion!": want latest, v<N>, a content id (or its first 7+ hex digits) or an alias`},
		{"lora-rank-zero.bad.yaml", `lora-rank-zero.bad.yaml:8:11: method.lora.rank: must be between 1 and 1024, got 0`},
		{"unknown-target.bad.yaml", `unknown-target.bad.yaml:11:9: method.lora.targets[1]: unknown module "qkv_proj" (did you mean "q_proj"? known: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, c_attn, c_proj, c_fc, lm_head)`},
		{"unknown-region.bad.yaml", `unknown-region.bad.yaml:6:9: region: unknown region "mars" (allowed: eu-west, local)`},
		{"negative-epochs.bad.yaml", `negative-epochs.bad.yaml:7:11: train.epochs: must be >= 0, got -1`},
		{"precision-unknown.bad.yaml", `precision-unknown.bad.yaml:6:14: train.precision: unknown precision "fp16" (did you mean "fp32"?)`},
		{"duplicate-key.bad.yaml", `duplicate-key.bad.yaml:8:1: seed: duplicate key "seed" (first at line 6)`},
		{"list-type.bad.yaml", `list-type.bad.yaml:8:14: method.lora.targets: expected a list, got "q_proj"`},
		{"bad-duration.bad.yaml", `bad-duration.bad.yaml:7:17: budget.max_duration: invalid duration "30 minutes" (use Go syntax like "30m" or "1h30m")`},
		{"gate-unknown-metric.bad.yaml", `gate-unknown-metric.bad.yaml:10:15: eval.gates[0].metric: unknown metric "f1" (gates may use the eval suite's names or serving metrics: accuracy, latency_p95_ms, cost_per_1k)`},
		{"empty.bad.yaml", `empty.bad.yaml: empty recipe (expected a mapping with name, task, base, data, method, train and region)`},
		{"comments-only.bad.yaml", `comments-only.bad.yaml: empty recipe (expected a mapping with name, task, base, data, method, train and region)`},
		{"multi-doc.bad.yaml", `multi-doc.bad.yaml:7:1: more than one YAML document; a recipe file holds exactly one`},
		{"syntax.bad.yaml", `syntax.bad.yaml:3: syntax error: mapping values are not allowed in this context`},
		{"not-mapping.bad.yaml", `not-mapping.bad.yaml:1:1: expected a mapping, got a list`},
		{"missing-region.bad.yaml", `missing-region.bad.yaml:1:1: region: required (where data, compute and artifacts may live, e.g. local)`},
		{"unknown-top-key.bad.yaml", `unknown-top-key.bad.yaml:6:1: hyperparameters: unknown field "hyperparameters" (known: base, budget, data, description, eval, incremental, method, model, name, region, resources, seed, task, tokenizer, train)`},
		{"learning-rate-range.bad.yaml", `learning-rate-range.bad.yaml:7:18: train.learning_rate: must be > 0 and < 1, got 1.5`},
		{"learning-rate-inf.bad.yaml", `learning-rate-inf.bad.yaml:7:18: train.learning_rate: expected a finite number, got .inf`},
		{"int-for-string.bad.yaml", `int-for-string.bad.yaml:7:15: train.batch_size: expected an integer, got 8.5`},
		{"anchor.bad.yaml", `anchor.bad.yaml:4:7: data: YAML anchors and aliases are not supported`},
		{"model-for-classify.bad.yaml", `model-for-classify.bad.yaml:5:3: model: only task pretrain may define a model from scratch; use base`},
		{"pretrain-heads.bad.yaml", `pretrain-heads.bad.yaml:8:24: model.num_attention_heads: hidden_size 96 is not divisible by num_attention_heads 5`},
		{"head-for-sft.bad.yaml", `head-for-sft.bad.yaml:7:9: method.kind: head trains only a classification head; task sft needs lora`},
		{"full-for-classify.bad.yaml", `full-for-classify.bad.yaml:7:9: method.kind: kind full trains every weight of a causal language model (task pretrain or sft); a classifier needs lora or head, which keep its head beside the base`},
		{"gate-confidence.bad.yaml", `gate-confidence.bad.yaml:12:19: eval.gates[0].confidence: must be > 0 and < 1, got 1.5`},
		{"gate-mixed.bad.yaml", `gate-mixed.bad.yaml:10:7: eval.gates[0]: use either op and value, or not_worse_than and epsilon, not both`},
		{"metric-wrong-task.bad.yaml", `metric-wrong-task.bad.yaml:8:15: eval.suite[0].metric: metric accuracy does not apply to task sft`},
		{"incremental-sft.bad.yaml", `incremental-sft.bad.yaml:7:3: incremental: only task classify can be trained incrementally (it starts from an adapter and a classification head), not sft`},
		{"incremental-metric.bad.yaml", `incremental-metric.bad.yaml:8:13: incremental.forgetting.metric: unknown forgetting metric "macro-f1" (did you mean "macro_f1"?)`},
		{"incremental-ratio.bad.yaml", `incremental-ratio.bad.yaml:8:12: incremental.replay.ratio: must be between 0 and 100 (replayed records per new training record), got -1`},
		{"incremental-dataset.bad.yaml", `incremental-dataset.bad.yaml:8:14: incremental.replay.dataset: dataset "spam@": nothing after '@'; write latest, v<N>, a content id (or its first 7+ hex digits) or an alias`},
		{"incremental-key.bad.yaml", `incremental-key.bad.yaml:8:5: incremental.replay.ratoi: unknown field "ratoi" (did you mean "ratio"?)`},
		{"resources-cpu.bad.yaml", `resources-cpu.bad.yaml:7:8: resources.cpu: invalid CPU "two": write cores ("2", "0.5") or millicores ("500m")`},
		{"resources-memory.bad.yaml", `resources-memory.bad.yaml:8:11: resources.memory: 512 bytes is less than 1Mi, too little for a worker to start (write a suffix: "512Mi", "4Gi")`},
		{"resources-empty.bad.yaml", `resources-empty.bad.yaml:6:12: resources: empty: give cpu, memory or both, or leave the block out`},
		{"wrong-field-for-task.bad.yaml", `wrong-field-for-task.bad.yaml:6:16: data.label_field: not used by task sft (it reads prompt_field and completion_field)`},
	}
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) != len(tests) {
		t.Errorf("%d bad files in testdata but %d table rows; every file needs a row", len(files), len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			r, err := Parse(tc.file, readTestdata(t, tc.file))
			if err == nil {
				err = r.Validate(testRegions)
			}
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("error kind %q, want invalid", errs.Kind(err))
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	src := []byte("description: \"" + strings.Repeat("x", MaxSize) + "\"\n")
	_, err := Parse("big.yaml", src)
	if err == nil || !strings.HasPrefix(err.Error(), "big.yaml: recipe is ") || !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("got %v", err)
	}
}

func TestValidateDefaultRegions(t *testing.T) {
	src := []byte("name: a\ntask: classify\nbase: m\ndata: {dataset: d}\nregion: eu-west\n")
	r, err := Parse("r.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts ValidateOptions
		want string
	}{
		{"default list is local only", ValidateOptions{}, `r.yaml:5:9: region: unknown region "eu-west" (allowed: local)`},
		{"listed region passes", ValidateOptions{Regions: []string{"eu-west"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Validate(tc.opts)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSuggestions(t *testing.T) {
	tests := []struct{ name, line, want string }{
		{"task", "task: clasify", `r.yaml:2:7: task: unknown task "clasify" (did you mean "classify"?)`},
		{"schedule", "train: {schedule: cosin}", `r.yaml:2:19: train.schedule: unknown schedule "cosin" (did you mean "cosine"?)`},
		{"module", "method: {lora: {targets: [qproj]}}", `r.yaml:2:27: method.lora.targets[0]: unknown module "qproj" (did you mean "q_proj"? known: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, c_attn, c_proj, c_fc, lm_head)`},
		{"field case", "Seed: 3", `r.yaml:2:1: Seed: unknown field "Seed" (did you mean "seed"?)`},
		{"far field", "zzz: 3", `r.yaml:2:1: zzz: unknown field "zzz" (known: base, budget, data, description, eval, incremental, method, model, name, region, resources, seed, task, tokenizer, train)`},
		{"op", `eval: {suite: [{metric: accuracy}], gates: [{metric: accuracy, op: "=>", value: 1}]}`, `r.yaml:2:68: eval.gates[0].op: unknown op "=>" (want ">=", "<=", ">" or "<", quoted)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "name: a\n" + tc.line + "\n"
			if !strings.HasPrefix(tc.line, "task:") {
				src += "task: classify\n"
			}
			src += "base: m\ndata: {dataset: d}\nregion: local\n"
			_, err := Parse("r.yaml", []byte(src))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}
