package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/registry"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/seedmodel"
	"github.com/tailor-ml/tailor/internal/store"
)

// importSeedBase imports a random tiny Llama as base name and returns its id.
func importSeedBase(t *testing.T, a *App, name string, seed uint64) string {
	t.Helper()
	return importSeedBaseIn(context.Background(), t, a, name, seed)
}

// importSeedBaseIn is importSeedBase into ctx's project.
func importSeedBaseIn(ctx context.Context, t *testing.T, a *App, name string, seed uint64) string {
	t.Helper()
	tok, err := tokenizer.Train(func(yield func(string) bool) { yield("the quick brown fox jumps over the lazy dog") },
		tokenizer.TrainOptions{VocabSize: 280, MinFrequency: 1, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	tj, _ := tok.MarshalJSON()
	cfg := engine.Config{Arch: "LlamaForCausalLM", VocabSize: 288, Hidden: 32, Intermediate: 64, Layers: 1, Heads: 4, KVHeads: 2, HeadDim: 8,
		MaxPositions: 64, RopeTheta: 10000, NormEps: 1e-5, Activation: "silu", BOSTokenID: -1, EOSTokenID: -1, TorchDtype: "float32"}
	dir := filepath.Join(t.TempDir(), name)
	if err := seedmodel.Write(dir, cfg, tj, seed); err != nil {
		t.Fatal(err)
	}
	var tarBuf bytes.Buffer
	if err := writeDirTar(&tarBuf, dir); err != nil {
		t.Fatal(err)
	}
	bi, err := a.ImportBase(ctx, name, "", &tarBuf)
	if err != nil {
		t.Fatal(err)
	}
	return bi.Version.ID
}

// TestStartIncrementalRun: an incremental run resolves the champion, the
// replay and forgetting datasets into its inputs and key; it dedupes on the
// same champion, moves to a new key with a new champion, and is refused
// with no champion or a champion on another base.
func TestStartIncrementalRun(t *testing.T) {
	ctx := context.Background()
	a, err := Open(Options{DataDir: t.TempDir(), EngineVersion: "test", WorkerCommand: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	baseA := importSeedBase(t, a, "tiny", 5)
	baseB := importSeedBase(t, a, "other", 6)
	importDS := func(name string, n int) store.DatasetVersion {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "{\"id\":\"%s%d\",\"text\":\"message %d\",\"label\":%q}\n", name, i, i, []string{"ham", "spam"}[i%2])
		}
		di, err := a.ImportDataset(ctx, strings.NewReader(b.String()), api.DatasetImportOptions{Name: name, Task: "classify", FileName: name + ".jsonl"})
		if err != nil {
			t.Fatal(err)
		}
		dv, err := a.store.DatasetVersion(ctx, name, di.Version.ID)
		if err != nil {
			t.Fatal(err)
		}
		return dv
	}
	spam := importDS("spam", 40)
	const src = "name: spam-lora\ntask: classify\nbase: tiny\ndata: {dataset: spam-lora-feedback}\nmethod: {kind: head}\n" +
		"incremental: {from: champion, replay: {ratio: 0.5}}\nregion: local\n"
	// The feedback dataset has no version yet: an incremental recipe may be
	// applied before labels arrive; a full one may not.
	if _, err := a.ApplyRecipe(ctx, "inc.yaml", []byte(src)); err != nil {
		t.Fatalf("incremental recipe before its feedback dataset exists: %v", err)
	}
	full := strings.Replace(src, "incremental: {from: champion, replay: {ratio: 0.5}}\n", "", 1)
	if _, err := a.ApplyRecipe(ctx, "full.yaml", []byte(full)); !errors.Is(err, errs.ErrNotFound) || !strings.Contains(err.Error(), `full.yaml: data.dataset: dataset "spam-lora-feedback"`) {
		t.Fatalf("full recipe naming a missing dataset: %v, want not found at apply", err)
	}
	importDS("spam-lora-feedback", 20)
	if _, err := a.StartRun(ctx, api.RunStart{Recipe: "spam-lora"}); !errors.Is(err, errs.ErrNotFound) || !strings.Contains(err.Error(), "champion") {
		t.Fatalf("start with no champion: %v, want not found naming the alias", err)
	}
	lineage, _ := json.Marshal(run.Inputs{Dataset: run.InputRef{Name: spam.Name, ID: spam.ID, Manifest: spam.Manifest}})
	champion := func(base, adapter string) registry.Version {
		v, _, err := a.registry.Register(ctx, store.ModelVersion{Name: "spam-lora", BaseID: base, Adapter: adapter, Task: "classify", Lineage: lineage})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.registry.Promote(ctx, registry.PromoteRequest{Name: "spam-lora", Version: fmt.Sprintf("v%d", v.Version), Alias: "champion",
			Reason: "test", Actor: "test", Override: true, OverrideReason: "no report in this test"}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	start := func() (api.Run, run.Inputs) {
		t.Helper()
		r, err := a.StartRun(ctx, api.RunStart{Recipe: "spam-lora"})
		if err != nil {
			t.Fatal(err)
		}
		var in run.Inputs
		if err := json.Unmarshal(r.Inputs, &in); err != nil {
			t.Fatal(err)
		}
		return r, in
	}
	v1 := champion(baseA, "sha256:"+baseID("adapter-1"))
	r1, in := start()
	if in.Init.ID != v1.ID || in.Init.Manifest != v1.Adapter || in.Replay.ID != spam.ID || in.Forgetting.ID != spam.ID || in.Replay.Manifest != spam.Manifest {
		t.Fatalf("inputs %+v", in)
	}
	if r1.Key != run.Key(in) {
		t.Fatalf("run key %s, Key(inputs) %s", r1.Key, run.Key(in))
	}
	if again, _ := start(); again.ID != r1.ID || !again.Reused {
		t.Fatalf("same champion: run %s (reused %v), want %s", again.ID, again.Reused, r1.ID)
	}
	v2 := champion(baseA, "sha256:"+baseID("adapter-2"))
	r2, in2 := start()
	if r2.Key == r1.Key || in2.Init.ID != v2.ID {
		t.Fatalf("a new champion must give a new key: %s vs %s, init %s", r2.Key, r1.Key, in2.Init.ID)
	}
	champion(baseB, "sha256:"+baseID("adapter-3"))
	if _, err := a.StartRun(ctx, api.RunStart{Recipe: "spam-lora"}); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "base") {
		t.Fatalf("champion on another base: %v, want invalid naming the base", err)
	}
}

// TestIncrementalRunEndToEnd trains and promotes a champion with real
// worker processes, then retrains it incrementally on new labels that
// contradict the old ones: the run's report carries the forgetting gate,
// which fails, and Promote refuses the candidate.
func TestIncrementalRunEndToEnd(t *testing.T) {
	a, ctx := openWithWorkers(t)
	importSeedBase(t, a, "tiny", 5)
	importRecords := func(name string, n int, flip bool) {
		var b strings.Builder
		words := [][]string{{"meeting", "notes", "lunch"}, {"prize", "cash", "winner"}}
		for i := range n {
			c := i % 2
			label := []string{"ham", "spam"}[c]
			if flip {
				label = []string{"spam", "ham"}[c]
			}
			fmt.Fprintf(&b, "{\"id\":\"%s%d\",\"text\":\"the %s for you %d\",\"label\":%q}\n", name, i, words[c][i%3], i, label)
		}
		if _, err := a.ImportDataset(ctx, strings.NewReader(b.String()), api.DatasetImportOptions{Name: name, Task: "classify", FileName: name + ".jsonl"}); err != nil {
			t.Fatal(err)
		}
	}
	importRecords("mail", 200, false)
	importRecords("mail-feedback", 80, true)
	const first = "name: mail\ntask: classify\nbase: tiny\ndata: {dataset: mail}\nmethod: {kind: lora, lora: {rank: 4}}\n" +
		"train: {max_steps: 30, batch_size: 16, learning_rate: 0.01, max_seq_len: 32}\nseed: 1\nregion: local\n"
	version := func(src string) api.ModelVersion {
		t.Helper()
		if _, err := a.ApplyRecipe(ctx, "mail.yaml", []byte(src)); err != nil {
			t.Fatal(err)
		}
		r, err := a.StartRun(ctx, api.RunStart{Recipe: "mail"})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if r, err = a.Run(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			if r.State == "failed" || r.State == "canceled" {
				logs, _ := a.RunLogs(ctx, r.ID, 0)
				t.Fatalf("run %s %s: %s (logs %v)", r.ID, r.State, r.Error, logs)
			}
			if r.State == "succeeded" {
				vs, err := a.Models(ctx, "mail")
				if err != nil && !errors.Is(err, errs.ErrNotFound) {
					t.Fatal(err)
				}
				for _, v := range vs {
					if v.RunID == r.ID && len(v.Reports) > 0 {
						return v
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("run %s not registered with a report in time (state %s)", r.ID, r.State)
		return api.ModelVersion{}
	}
	v1 := version(first)
	if _, err := a.Promote(store.WithActor(ctx, "test"), "mail", api.Promote{Version: fmt.Sprintf("v%d", v1.Version), Alias: "champion", Reason: "first"}); err != nil {
		t.Fatal(err)
	}
	v2 := version(strings.Replace(first, "dataset: mail}", "dataset: mail-feedback}", 1) +
		"incremental: {replay: {ratio: 0}, forgetting: {split: test, epsilon: 0.01}}\n")
	var lin run.Inputs
	if err := json.Unmarshal(v2.Lineage, &lin); err != nil || lin.Init.ID != v1.ID {
		t.Fatalf("v2 lineage %s (%v): want init %s", v2.Lineage, err, v1.ID)
	}
	graph, err := a.Lineage(ctx, v2.RunID)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, c := range graph.Children {
		kinds[c.Kind] = c.ID
	}
	if kinds["init"] != v1.ID || kinds["replay"] == "" || kinds["forgetting"] == "" {
		t.Fatalf("lineage of the incremental run lacks its init, replay or forgetting input: %v", kinds)
	}
	rep := v2.Reports[len(v2.Reports)-1]
	body, err := a.EvalReport(ctx, rep.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != "fail" || !strings.Contains(body.Markdown, "## Forgetting") || len(rep.Failed) == 0 || !strings.HasPrefix(rep.Failed[len(rep.Failed)-1], "forgetting:") {
		t.Fatalf("report %+v\n%s", rep, body.Markdown)
	}
	promote := func() error {
		_, err := a.Promote(store.WithActor(ctx, "test"), "mail", api.Promote{Version: fmt.Sprintf("v%d", v2.Version), Alias: "champion", Reason: "retrained"})
		return err
	}
	if err := promote(); err == nil || !strings.Contains(err.Error(), "forgetting") {
		t.Fatalf("promoting a candidate that forgot: %v, want a refusal naming the forgetting gate", err)
	} else {
		t.Logf("refused: %v", err)
	}
	// A later eval run of the candidate keeps the forgetting gate, so a
	// fresh report cannot pass it by leaving the gate out.
	er, err := a.StartEval(ctx, api.EvalStart{Model: fmt.Sprintf("mail@v%d", v2.Version), Dataset: "mail", Split: "validation"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		v, err := a.Model(ctx, "mail", fmt.Sprintf("v%d", v2.Version))
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Reports) > len(v2.Reports) {
			last := v.Reports[len(v.Reports)-1]
			if last.Verdict != "fail" || !strings.HasPrefix(last.Failed[len(last.Failed)-1], "forgetting:") {
				t.Fatalf("eval run report %+v: want the forgetting gate failing", last)
			}
			break
		}
		if r, _ := a.Run(ctx, er.ID); r.State == "failed" || time.Now().After(deadline) {
			t.Fatalf("eval run %s: %s %s", er.ID, r.State, r.Error)
		}
	}
	if err := promote(); err == nil || !strings.Contains(err.Error(), "forgetting") {
		t.Fatalf("after the eval run: %v, want a refusal naming the forgetting gate", err)
	}
}
