package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/adapter"
	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/peft"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/run"
)

func TestReplaySample(t *testing.T) {
	mk := func(prefix string, n int) []labeled {
		out := make([]labeled, n)
		for i := range out {
			out[i] = labeled{id: fmt.Sprintf("%s%d", prefix, i)}
		}
		return out
	}
	ids := func(set []labeled) []string {
		var out []string
		for _, l := range set {
			out = append(out, l.id)
		}
		return out
	}
	fresh, pool := mk("n", 10), mk("r", 50)
	tests := []struct {
		name   string
		ratio  float64
		pool   []labeled
		replay int
	}{
		{"ratio 1", 1, pool, 10},
		{"ratio 0.25 rounds", 0.25, pool, 3}, // 2.5 → 3
		{"ratio 0", 0, pool, 0},
		{"capped at the pool", 10, pool[:7], 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := replay(fresh, tc.pool, tc.ratio, 42)
			if len(got) != len(fresh)+tc.replay {
				t.Fatalf("%d records, want %d new + %d replayed: %v", len(got), len(fresh), tc.replay, ids(got))
			}
			var news, olds []string
			for _, id := range ids(got) {
				if strings.HasPrefix(id, "n") {
					news = append(news, id)
				} else {
					olds = append(olds, id)
				}
			}
			if !slices.Equal(news, ids(fresh)) {
				t.Errorf("new records %v, want all of them in order", news)
			}
			seen := map[string]bool{}
			for _, id := range olds {
				if seen[id] {
					t.Errorf("replayed %s twice (the sample is without replacement)", id)
				}
				seen[id] = true
			}
			if again := replay(fresh, tc.pool, tc.ratio, 42); !slices.Equal(ids(again), ids(got)) {
				t.Errorf("same seed, different order: %v vs %v", ids(again), ids(got))
			}
		})
	}
	// Interleaved evenly: with ratio 1, new and replayed records alternate.
	got := ids(replay(fresh, pool, 1, 42))
	for i, id := range got {
		if (i%2 == 0) != strings.HasPrefix(id, "n") {
			t.Fatalf("not alternating at %d: %v", i, got)
		}
	}
	if other := ids(replay(fresh, pool, 1, 43)); slices.Equal(other, got) {
		t.Error("seeds 42 and 43 drew the same sample; the seed is not used")
	}
}

// topicRecords writes n classify records: spam texts carry one of spamWords
// among filler words, ham texts one of hamWords.
func topicRecords(prefix string, n int, seed uint64, hamWords, spamWords []string) string {
	fillers := []string{"the", "a", "please", "today", "about", "my", "again", "now", "here", "and"}
	x := seed
	next := func(k int) int { x = x*6364136223846793005 + 1442695040888963407; return int((x >> 33) % uint64(k)) }
	var b strings.Builder
	for i := range n {
		c := i % 2
		topic := [][]string{hamWords, spamWords}[c]
		var words []string
		for range 12 {
			words = append(words, fillers[next(len(fillers))])
		}
		words[next(12)] = topic[next(len(topic))]
		words[next(12)] = topic[next(len(topic))]
		fmt.Fprintf(&b, "{\"id\":\"%s%d\",\"text\":%q,\"label\":%q}\n", prefix, i, strings.Join(words, " "), []string{"ham", "spam"}[c])
	}
	return b.String()
}

const incChampionRecipe = `name: mail
task: classify
base: b
data:
  dataset: d
method:
  kind: lora
  lora:
    rank: 4
train:
  max_steps: 40
  batch_size: 16
  learning_rate: 0.01
  max_seq_len: 32
seed: 3
region: local
`

// incRecipe is the incremental recipe: the champion's method, new data,
// replay of the champion's data and a forgetting gate on its test split.
func incRecipe(lr string, steps int) string {
	return strings.NewReplacer("max_steps: 40", fmt.Sprintf("max_steps: %d", steps), "learning_rate: 0.01", "learning_rate: "+lr,
		"dataset: d\n", "dataset: feedback\n").Replace(incChampionRecipe) + `eval:
  suite:
    - metric: macro_f1
  gates:
    - metric: macro_f1
      op: ">="
      value: 0.5
incremental:
  replay:
    ratio: 1.0
  forgetting:
    split: test
    epsilon: 0.05
    resamples: 500
`
}

// incrementalFixture trains a champion on dataset d and imports the new
// labelled dataset "feedback" (a drifted vocabulary) into the same store.
// It returns the incremental spec (recipe left to the caller) and the
// champion's adapter digest.
func incrementalFixture(t *testing.T) (run.Spec, string, blob.Store, *data.Manifest) {
	t.Helper()
	ham := []string{"meeting", "notes", "project", "lunch"}
	old := topicRecords("old", 300, 7, ham, []string{"prize", "winner", "cash", "offer"})
	spec := setup(t, "classify", old, incChampionRecipe)
	champ := result(t, runWorker(t, spec))
	blobs := openBlobs(t, spec)
	fresh := topicRecords("new", 100, 9, ham, []string{"crypto", "bitcoin", "prize", "wallet"})
	m, err := data.Import(context.Background(), strings.NewReader(fresh), data.ImportOptions{Name: "feedback", Task: "classify", FileName: "f.jsonl"}, blobs)
	if err != nil {
		t.Fatal(err)
	}
	oldRef := spec.Inputs.Dataset
	init := run.InputRef{Name: "mail@v1", ID: "mv-1", Version: 1, Manifest: champ.Digest}
	spec.RunID = "run-inc"
	spec.Inputs.Dataset = run.InputRef{Name: "feedback", ID: m.ID, Manifest: putJSON(t, blobs, m)}
	spec.Inputs.Init, spec.Inputs.Replay, spec.Inputs.Forgetting = init, oldRef, oldRef
	spec.Inputs.Champion, spec.Inputs.ChampionBase = init, spec.Inputs.Base
	return spec, champ.Digest, blobs, m
}

func withRecipe(t *testing.T, spec run.Spec, src string) run.Spec {
	t.Helper()
	r, err := recipe.Parse("inc.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	spec.Recipe, _ = r.Normalize()
	return spec
}

func loadAdapter(t *testing.T, blobs blob.Store, digest string) *adapter.Loaded {
	t.Helper()
	a, err := adapter.Load(context.Background(), blobs, digest, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestIncrementalTraining trains a champion, then retrains it
// incrementally: the run starts from the champion's adapter and head,
// trains on the new records plus as many replayed ones, reports the
// forgetting gate, and gives bit-identical adapters for the same spec.
func TestIncrementalTraining(t *testing.T) {
	spec, champDigest, blobs, fresh := incrementalFixture(t)
	champ := loadAdapter(t, blobs, champDigest)

	// Starts from the champion: one step at a negligible learning rate
	// leaves every tensor (LoRA A and B, head) where the champion had it;
	// a fresh start would have B = 0 and a random head.
	t.Run("starts from the champion", func(t *testing.T) {
		s := withRecipe(t, spec, incRecipe("1e-12", 1))
		s.RunID = "run-inc-init"
		res := result(t, runWorker(t, s))
		got := loadAdapter(t, blobs, res.Digest)
		if !slices.Equal(got.Manifest.Labels, champ.Manifest.Labels) || len(got.PEFT.Tensors) != len(champ.PEFT.Tensors) {
			t.Fatalf("labels %v tensors %d; champion %v, %d", got.Manifest.Labels, len(got.PEFT.Tensors), champ.Manifest.Labels, len(champ.PEFT.Tensors))
		}
		nonzeroB := false
		for name, want := range champ.PEFT.Tensors {
			have := got.PEFT.Tensors[name]
			for i := range want.Data {
				if d := math.Abs(float64(have.Data[i] - want.Data[i])); d > 1e-6 {
					t.Fatalf("%s[%d]: %v, champion %v", name, i, have.Data[i], want.Data[i])
				}
				if strings.Contains(name, "lora_B") && want.Data[i] != 0 {
					nonzeroB = true
				}
			}
		}
		if !nonzeroB {
			t.Fatal("the champion's lora_B tensors are all zero; the check proves nothing")
		}
	})

	// Exactly: the model an incremental run builds holds the champion's
	// tensors bit for bit before its first step, and predicts as the
	// registered champion does.
	t.Run("initialised model is the champion", func(t *testing.T) {
		r, err := recipe.Parse("inc.yaml", []byte(incRecipe("0.005", 20)))
		if err != nil {
			t.Fatal(err)
		}
		j := &job{spec: spec, blobs: blobs, dir: t.TempDir(), opts: Options{Threads: 1}, send: func(run.Message) {}}
		base, err := j.loadBase(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		m, err := model.New(base.manifest.Config, base.weights, modelOptions(r, len(champ.Manifest.Labels), 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := initFrom(m, champ); err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Params() {
			name := p.Name
			if !strings.HasPrefix(name, peft.Prefix) {
				name = peft.Prefix + name
			}
			if !slices.Equal(p.Data, champ.PEFT.Tensors[name].Data) {
				t.Fatalf("%s differs from the champion's", name)
			}
		}
		set, _, err := j.loadDataFrom(context.Background(), spec.Inputs.Forgetting.Manifest, r, base.tok, "test", champ.Manifest.Labels, maxTokens(r, base.manifest.Config))
		if err != nil {
			t.Fatal(err)
		}
		got, err := predictClassify(m, set, champ.Manifest.Labels, 8)
		if err != nil {
			t.Fatal(err)
		}
		st, err := j.loadStored(context.Background(), "champion", spec.Inputs.Base.Manifest, champDigest)
		if err != nil {
			t.Fatal(err)
		}
		want, err := st.classify(r, set)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			for l, p := range want[i].Probs {
				if math.Abs(got[i].Probs[l]-p) > 1e-5 {
					t.Fatalf("example %s label %s: initialised model %v, champion %v", set[i].id, l, got[i].Probs[l], p)
				}
			}
		}
	})

	s := withRecipe(t, spec, incRecipe("0.005", 20))
	msgs := runWorker(t, s)
	res := result(t, msgs)
	var m struct {
		Init        string   `json:"init"`
		New         int      `json:"new_examples"`
		Replayed    int      `json:"replay_examples"`
		Train       int      `json:"train_examples"`
		Report      string   `json:"report"`
		Verdict     string   `json:"verdict"`
		FailedGates []string `json:"failed_gates"`
		Pass        *bool    `json:"forgetting_pass"`
		Lower       float64  `json:"forgetting_lower"`
		EvalDataset string   `json:"eval_dataset"`
		EvalN       int      `json:"eval_examples"`
	}
	if err := json.Unmarshal(res.Metrics, &m); err != nil {
		t.Fatal(err)
	}
	if m.Init != "mail@v1" || m.New != int(fresh.Split.Counts.Train) || m.Replayed != m.New || m.Train != m.New+m.Replayed {
		t.Fatalf("training records: %s", res.Metrics)
	}
	// 100 new records: the gates on the new data judge its ~10 validation
	// records (docs/recipes.md says what that means).
	if m.Pass == nil || m.Report == "" || m.EvalDataset != fresh.ID || m.EvalN != int(fresh.Split.Counts.Validation) || m.EvalN > 20 {
		t.Fatalf("no forgetting verdict or report on the new data: %s", res.Metrics)
	}
	logged := false
	for _, msg := range msgs {
		logged = logged || (msg.Type == run.MsgLog && strings.Contains(msg.Message, fmt.Sprintf("%d new and %d replayed", m.New, m.Replayed)))
	}
	if !logged {
		t.Error("the worker did not log what it trained on")
	}
	rc, err := blobs.Open(context.Background(), m.Report)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	rep, err := eval.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Forgetting
	if f == nil || f.DatasetID != spec.Inputs.Forgetting.ID || f.Split != "test" || f.ChampionID != "mv-1" || f.Metric != "macro_f1" || f.N == 0 {
		t.Fatalf("forgetting section %+v", f)
	}
	last := rep.Verdict.Gates[len(rep.Verdict.Gates)-1]
	if last.Gate.Kind != eval.GateForgetting || last.Pass != *m.Pass || last.Bootstrap == nil || last.Bootstrap.Resamples != 500 {
		t.Fatalf("verdict %+v", rep.Verdict)
	}
	if (m.Verdict == "pass") != rep.Verdict.Pass || (!last.Pass && !slices.ContainsFunc(m.FailedGates, func(s string) bool { return strings.HasPrefix(s, "forgetting:") })) {
		t.Fatalf("run verdict %q failed %v, report %+v", m.Verdict, m.FailedGates, rep.Verdict)
	}
	t.Logf("forgetting: candidate %.3f champion %.3f lower %+.3f pass %v; new-data verdict %s %v", f.Candidate, f.Champion, m.Lower, *m.Pass, m.Verdict, m.FailedGates)

	// Same inputs, same adapter bytes.
	s.RunID = "run-inc-again"
	if again := result(t, runWorker(t, s)); again.Digest != res.Digest {
		t.Fatalf("same incremental spec gave adapters %s and %s", res.Digest, again.Digest)
	}
}

func TestIncrementalRefusals(t *testing.T) {
	spec, _, _, _ := incrementalFixture(t)
	tests := []struct {
		name string
		edit func(s *run.Spec)
		want string
	}{
		{"champion on another base", func(s *run.Spec) { s.Inputs.Base.ID = "other-base" }, "own base"},
		{"no init resolved", func(s *run.Spec) { s.Inputs.Init = run.InputRef{} }, "resolved no model"},
		{"another LoRA shape", func(s *run.Spec) {
			*s = withRecipe(t, *s, strings.Replace(incRecipe("0.01", 2), "rank: 4", "rank: 2", 1))
		}, "must match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := withRecipe(t, spec, incRecipe("0.01", 2))
			tc.edit(&s)
			line, _ := json.Marshal(s)
			stdin := &blockingReader{first: append(line, '\n'), done: make(chan struct{})}
			defer close(stdin.done)
			err := Train(context.Background(), stdin, io.Discard, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
