package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/seedmodel"
)

// corpus builds a deterministic two-class dataset whose classes differ in
// vocabulary, so a small model can learn it.
func corpus(from, to int) string {
	spam := []string{"win", "free", "money", "offer", "click", "prize", "cash", "deal"}
	ham := []string{"meeting", "notes", "project", "lunch", "report", "review", "team", "schedule"}
	var b strings.Builder
	for i := from; i < to; i++ {
		words, label := ham, "ham"
		if i%2 == 1 {
			words, label = spam, "spam"
		}
		text := fmt.Sprintf("%s %s %s about item %d", words[i%8], words[(i/2)%8], words[(i/3)%8], i)
		fmt.Fprintf(&b, "{\"id\":\"m%d\",\"text\":%q,\"label\":%q}\n", i, text, label)
	}
	return b.String()
}

func writeBase(t *testing.T, dir, text string) {
	t.Helper()
	tok, err := tokenizer.Train(func(yield func(string) bool) {
		for _, l := range strings.Split(text, "\n") {
			if !yield(l) {
				return
			}
		}
	}, tokenizer.TrainOptions{VocabSize: 400, MinFrequency: 1, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	tj, err := tok.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Arch: "LlamaForCausalLM", VocabSize: tok.VocabSize(), Hidden: 64, Intermediate: 128, Layers: 2, Heads: 4, KVHeads: 2,
		HeadDim: 16, MaxPositions: 256, RopeTheta: 10000, NormEps: 1e-5, Activation: "silu", BOSTokenID: -1, EOSTokenID: -1, TorchDtype: "float32"}
	if err := seedmodel.Write(dir, cfg, tj, 42); err != nil {
		t.Fatal(err)
	}
}

const recipeYAML = `name: mail-lora
task: classify
base: tiny
data:
  dataset: mail
method:
  kind: lora
  lora:
    rank: 4
    alpha: 8
    targets: [q_proj, v_proj]
train:
  max_steps: 240
  batch_size: 8
  learning_rate: 0.003
  checkpoint_every: 10
  max_seq_len: 32
seed: 11
region: local
`

// TestEndToEnd drives the real binary through the whole foundation: imports,
// a recipe, a run killed with the server (kill -9) and resumed, lineage, and
// a forced re-run that must produce the same adapter bytes.
func TestEndToEnd(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "data")
	srv := startServer(t, dataDir)

	mail := filepath.Join(work, "mail.jsonl")
	os.WriteFile(mail, []byte(corpus(0, 600)), 0o644)
	id1 := strings.TrimSpace(srv.tailor("dataset", "import", mail, "--name", "mail", "--task", "classify"))
	id2 := strings.TrimSpace(srv.tailor("dataset", "import", mail, "--name", "mail", "--task", "classify"))
	if id1 == "" || id1 != id2 {
		t.Fatalf("same file imported twice gave %q and %q", id1, id2)
	}
	more := filepath.Join(work, "more.jsonl")
	os.WriteFile(more, []byte(corpus(600, 640)), 0o644)
	id3 := strings.TrimSpace(srv.tailor("dataset", "import", more, "--name", "mail", "--append"))
	if id3 == id1 {
		t.Fatal("append made no new version")
	}
	var v1, v3 api.DatasetDetail
	srv.tailorJSON(&v1, "dataset", "show", "mail@"+id1)
	srv.tailorJSON(&v3, "dataset", "show", "mail")
	shared := 0
	for _, c := range v1.Version.Chunks {
		if slices.Contains(v3.Version.Chunks, c) {
			shared++
		}
	}
	if v3.Version.Records != 640 || shared == 0 || v3.Version.Parent != id1 {
		t.Fatalf("appended version: %d records, %d of %d chunks shared, parent %s", v3.Version.Records, shared, len(v1.Version.Chunks), v3.Version.Parent)
	}

	baseDir := filepath.Join(work, "tiny")
	writeBase(t, baseDir, corpus(0, 640))
	baseID := strings.TrimSpace(srv.tailor("base", "import", baseDir, "--name", "tiny"))
	rfile := filepath.Join(work, "mail-lora.yaml")
	os.WriteFile(rfile, []byte(recipeYAML), 0o644)
	recipeID := strings.TrimSpace(srv.tailor("recipe", "apply", rfile))
	if again := strings.TrimSpace(srv.tailor("recipe", "apply", rfile)); again != recipeID {
		t.Fatalf("re-applying the same recipe gave a new version %s != %s", again, recipeID)
	}

	runID := strings.TrimSpace(srv.tailor("run", "start", "mail-lora"))
	waitFor(t, srv, runID, "a checkpoint", func(r api.Run) bool { return r.State == "running" && r.Checkpoint != "" && r.Step >= 10 })
	srv.kill()
	workersGone(t, runID)

	srv = startServer(t, dataDir)
	final := waitFor(t, srv, runID, "success", func(r api.Run) bool { return r.State == "succeeded" || r.State == "failed" })
	if final.State != "succeeded" {
		t.Fatalf("run after restart: %s: %s\n%s", final.State, final.Error, srv.logs)
	}
	if final.Attempt < 2 {
		t.Fatalf("run finished in attempt %d; it was not interrupted", final.Attempt)
	}
	logs := srv.tailor("run", "logs", runID)
	if !strings.Contains(logs, "resum") {
		t.Fatalf("run log does not mention resuming:\n%s", logs)
	}

	var lin api.LineageNode
	srv.tailorJSON(&lin, "lineage", runID)
	got := map[string]string{}
	for _, c := range lin.Children {
		got[c.Kind] = c.ID
	}
	if got["recipe"] != recipeID || got["dataset"] != id3 || got["base"] != baseID || got["adapter"] != final.Result || got["engine"] == "" {
		t.Fatalf("lineage children %v; want recipe %s dataset %s base %s adapter %s", got, recipeID, id3, baseID, final.Result)
	}
	if tree := srv.tailor("lineage", final.Result); !strings.Contains(tree, runID) {
		t.Fatalf("lineage by adapter digest:\n%s", tree)
	}

	// Same key: the earlier result comes back unless --force.
	var reused api.Run
	srv.tailorJSON(&reused, "run", "start", "mail-lora")
	if !reused.Reused || reused.ID != runID {
		t.Fatalf("second start did not reuse run %s: %+v", runID, reused)
	}
	// A forced, uninterrupted run must give the same adapter bytes.
	var forced api.Run
	srv.tailorJSON(&forced, "run", "start", "mail-lora", "--force", "--wait")
	if forced.State != "succeeded" || forced.Result != final.Result {
		t.Fatalf("uninterrupted run: state %s result %s; resumed run result %s", forced.State, forced.Result, final.Result)
	}

	if out := srv.tailor("fsck"); !strings.Contains(out, "checked") {
		t.Fatalf("fsck: %s", out)
	}
	var evs []string
	out := srv.tailor("events", "--output", "json")
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e api.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e.Type)
	}
	for _, want := range []string{"dataset.version.created", "base.version.created", "recipe.version.created", "run.state.changed"} {
		if !slices.Contains(evs, want) {
			t.Errorf("events lack %s: %v", want, evs)
		}
	}
}

func waitFor(t *testing.T, srv *server, id, what string, ok func(api.Run) bool) api.Run {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		var r api.Run
		srv.tailorJSON(&r, "run", "show", id)
		if ok(r) {
			return r
		}
		if r.State == "failed" || r.State == "canceled" {
			t.Fatalf("run %s %s while waiting for %s: %s\n%s", id, r.State, what, r.Error, srv.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("run %s: no %s within 5 minutes\n%s", id, what, srv.logs)
	return api.Run{}
}

// workersGone waits until no worker of the run is alive: they must die
// with their server.
func workersGone(t *testing.T, runID string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		out, _ := exec.Command("pgrep", "-f", "worker train --run "+runID).Output()
		if len(strings.TrimSpace(string(out))) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := exec.Command("pgrep", "-af", "worker train --run "+runID).Output()
	t.Fatalf("workers still alive 5s after the server died:\n%s", out)
}
