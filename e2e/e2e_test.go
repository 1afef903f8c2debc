package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/tailortest"

	"github.com/tailor-ml/tailor/api"
)

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
	os.WriteFile(mail, []byte(tailortest.Corpus(0, 600)), 0o644)
	id1 := strings.TrimSpace(srv.tailor("dataset", "import", mail, "--name", "mail", "--task", "classify"))
	id2 := strings.TrimSpace(srv.tailor("dataset", "import", mail, "--name", "mail", "--task", "classify"))
	if id1 == "" || id1 != id2 {
		t.Fatalf("same file imported twice gave %q and %q", id1, id2)
	}
	more := filepath.Join(work, "more.jsonl")
	os.WriteFile(more, []byte(tailortest.Corpus(600, 640)), 0o644)
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
	must(t, tailortest.WriteBase(baseDir, tailortest.Corpus(0, 640), tailortest.Small))
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

	registryAndServing(t, srv, rfile, final.Result)
	srv = adaptation(t, srv, work, dataDir)

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

// registryAndServing promotes the trained model, serves it over the
// OpenAI-compatible API, refuses a model whose gates fail, overrides with a
// reason, and rolls back.
func registryAndServing(t *testing.T, srv *server, rfile, adapter string) {
	t.Helper()
	var models []api.ModelVersion
	srv.tailorJSON(&models, "model", "list")
	if len(models) != 1 || models[0].Name != "mail-lora" || models[0].Adapter != adapter || models[0].Verdict != "pass" || len(models[0].Reports) != 2 { // one report per run: the resumed and the forced one
		t.Fatalf("registered models: %+v", models)
	}
	srv.tailor("model", "promote", "mail-lora", "v1", "--alias", "champion", "--reason", "first model")
	if md := srv.tailor("eval", "show", "mail-lora@champion"); !strings.Contains(md, "Baselines") || !strings.Contains(md, "macro_f1") {
		t.Fatalf("eval show:\n%s", md)
	}
	// An eval run: the champion on another split, its report attached to
	// the version; the same eval again is the same run.
	if md := srv.tailor("eval", "run", "mail-lora@champion", "--dataset", "mail", "--split", "validation", "--wait"); !strings.Contains(md, "macro_f1") {
		t.Fatalf("eval run:\n%s", md)
	}
	var ev1, ev2 api.Run
	srv.tailorJSON(&ev1, "eval", "run", "mail-lora@v1", "--dataset", "mail", "--split", "validation")
	srv.tailorJSON(&ev2, "eval", "run", "mail-lora", "--dataset", "mail", "--split", "validation")
	if !ev1.Reused || ev2.ID != ev1.ID || ev1.State != "succeeded" {
		t.Fatalf("repeated eval run: %+v then %+v, want the same succeeded run", ev1, ev2)
	}
	var v1 api.ModelVersion
	srv.tailorJSON(&v1, "model", "show", "mail-lora@v1")
	if n := len(v1.Reports); n != 3 || v1.Reports[2].Split != "validation" || v1.Reports[2].DatasetID == "" {
		t.Fatalf("reports after the eval run: %+v", v1.Reports)
	}

	var cls struct {
		Model string `json:"model"`
		Data  []struct {
			Label  string             `json:"label"`
			Scores map[string]float64 `json:"scores"`
		} `json:"data"`
	}
	hdr := post(t, srv, "/v1/classify", `{"model":"mail-lora","input":["win free money offer","meeting notes project review"]}`, &cls)
	if hdr.Get("X-Tailor-Model-Version") != "mail-lora@v1" || len(cls.Data) != 2 {
		t.Fatalf("classify: %s %+v", hdr.Get("X-Tailor-Model-Version"), cls)
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	get(t, srv, "/v1/models", &list)
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	for _, want := range []string{"tiny", "tiny@v1", "mail-lora", "mail-lora@v1", "mail-lora@champion"} {
		if !slices.Contains(ids, want) {
			t.Errorf("GET /v1/models lacks %s: %v", want, ids)
		}
	}
	var comp struct {
		Choices []struct {
			Text string `json:"text"`
		} `json:"choices"`
	}
	post(t, srv, "/v1/completions", `{"model":"tiny","prompt":"meeting notes","max_tokens":4}`, &comp)
	if len(comp.Choices) != 1 {
		t.Fatalf("completion: %+v", comp)
	}

	// Exports: the PEFT adapter, a merged Hugging Face classifier folder;
	// GGUF is for causal LMs only.
	out := filepath.Join(t.TempDir(), "export")
	srv.tailor("model", "export", "mail-lora@champion", "--format", "peft", "--out", out+"/peft")
	srv.tailor("model", "export", "mail-lora@champion", "--format", "merged", "--out", out+"/merged")
	for _, f := range []string{"peft/adapter_config.json", "peft/adapter_model.safetensors", "merged/config.json", "merged/model.safetensors", "merged/tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("export: %v", err)
		}
	}
	if conf, _ := os.ReadFile(filepath.Join(out, "merged/config.json")); !strings.Contains(string(conf), "LlamaForSequenceClassification") || !strings.Contains(string(conf), `"num_labels": 2`) {
		t.Errorf("merged config: %s", conf)
	}
	if _, stderr, code := srv.tailorCode("model", "export", "mail-lora", "--format", "gguf", "--out", out+"/gguf"); code != 3 || !strings.Contains(stderr, "causal LM") {
		t.Errorf("gguf export of a classifier: exit %d %s", code, stderr)
	}

	// A second version whose gate cannot pass: promotion is refused.
	strict := strings.Replace(recipeYAML, "seed: 11\n", "seed: 12\neval:\n  gates:\n    - latency_p95_ms: 0.000001\n", 1)
	os.WriteFile(rfile, []byte(strict), 0o644)
	srv.tailor("recipe", "apply", rfile)
	var r2 api.Run
	srv.tailorJSON(&r2, "run", "start", "mail-lora", "--wait")
	var v2 api.ModelVersion
	srv.tailorJSON(&v2, "model", "show", "mail-lora@v2")
	if v2.Verdict != "fail" || v2.RunID != r2.ID {
		t.Fatalf("strict model: %+v", v2)
	}
	_, stderr, code := srv.tailorCode("model", "promote", "mail-lora", "v2", "--alias", "champion", "--reason", "try")
	if code != 6 || !strings.Contains(stderr, "p95_ms") || !strings.Contains(stderr, "override") {
		t.Fatalf("promoting a failing model: exit %d, %s", code, stderr)
	}
	srv.tailor("model", "promote", "mail-lora", "v2", "--alias", "champion", "--reason", "latency measured on a loaded box",
		"--override", "--override-reason", "gate too strict for CI")
	waitVersion(t, srv, "mail-lora@v2")
	srv.tailor("model", "rollback", "mail-lora", "--alias", "champion", "--reason", "back to v1")
	waitVersion(t, srv, "mail-lora@v1")
	var moves []api.AliasMove
	srv.tailorJSON(&moves, "model", "history", "mail-lora")
	if len(moves) != 3 || !moves[1].Override || moves[1].OverrideReason != "gate too strict for CI" || moves[2].Action != "rollback" {
		t.Fatalf("alias history: %+v", moves)
	}
}

// waitVersion waits until classify answers from the given model version:
// the server swaps adapters when an alias moves.
func waitVersion(t *testing.T, srv *server, want string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		hdr := post(t, srv, "/v1/classify", `{"model":"mail-lora","input":"free prize"}`, nil)
		if hdr.Get("X-Tailor-Model-Version") == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("mail-lora never served %s", want)
}

func post(t *testing.T, srv *server, path, body string, out any) http.Header {
	t.Helper()
	resp, err := http.Post("http://"+srv.addr+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, resp, path, out)
}

func get(t *testing.T, srv *server, path string, out any) http.Header {
	t.Helper()
	resp, err := http.Get("http://" + srv.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, resp, path, out)
}

func decode(t *testing.T, resp *http.Response, path string, out any) http.Header {
	t.Helper()
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d: %s", path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, raw)
		}
	}
	return resp.Header
}
