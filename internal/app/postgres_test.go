package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/seedmodel"
	"github.com/tailor-ml/tailor/internal/store/postgres"
	"github.com/tailor-ml/tailor/internal/store/postgres/pgtest"
)

// TestPostgresStore runs an App on a real PostgreSQL server (Options.Store,
// as `tailor server --store postgres://…`) with real training workers, and
// drives it through the HTTP API: a base and a dataset import, a recipe, a
// run that trains, the model version it registers. Every row is then read
// back from PostgreSQL by a second store, and no SQLite file was made.
func TestPostgresStore(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	url := pg.Database(t)
	t.Setenv(workerEnv, "1")
	dir := t.TempDir()
	a, err := Open(Options{DataDir: dir, EngineVersion: "test", WorkerCommand: []string{os.Args[0]}, Store: url})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		a.Close()
	})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.StoreAddress(); got != url {
		t.Errorf("StoreAddress() = %q, want %q", got, url)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Auth: a.Authority(auth.Options{InsecureLocal: true}), Service: a, Inference: a.Inference()}))
	t.Cleanup(srv.Close)
	c := api.NewClient(srv.URL, nil)

	tok, err := tokenizer.Train(func(yield func(string) bool) { yield("the meeting notes lunch prize cash winner for you") },
		tokenizer.TrainOptions{VocabSize: 280, MinFrequency: 1, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	tj, _ := tok.MarshalJSON()
	cfg := engine.Config{Arch: "LlamaForCausalLM", VocabSize: 288, Hidden: 32, Intermediate: 64, Layers: 1, Heads: 4, KVHeads: 2, HeadDim: 8,
		MaxPositions: 64, RopeTheta: 10000, NormEps: 1e-5, Activation: "silu", BOSTokenID: -1, EOSTokenID: -1, TorchDtype: "float32"}
	baseDir := filepath.Join(t.TempDir(), "tiny")
	if err := seedmodel.Write(baseDir, cfg, tj, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportBaseDir(ctx, "tiny", "", baseDir); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	words := [][]string{{"meeting", "notes", "lunch"}, {"prize", "cash", "winner"}}
	for i := range 120 {
		fmt.Fprintf(&b, "{\"id\":\"m%d\",\"text\":\"the %s for you %d\",\"label\":%q}\n", i, words[i%2][i%3], i, []string{"ham", "spam"}[i%2])
	}
	ds, err := c.ImportDataset(ctx, strings.NewReader(b.String()), api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "mail.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	const recipe = "name: mail\ntask: classify\nbase: tiny\ndata: {dataset: mail}\nmethod: {kind: lora, lora: {rank: 4}}\n" +
		"train: {max_steps: 10, batch_size: 8, learning_rate: 0.01, max_seq_len: 32}\nseed: 1\nregion: local\n"
	if _, err := c.ApplyRecipe(ctx, "mail.yaml", []byte(recipe)); err != nil {
		t.Fatal(err)
	}
	r, err := c.StartRun(ctx, api.RunStart{Recipe: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	var mv api.ModelVersion
	for deadline := time.Now().Add(3 * time.Minute); mv.ID == ""; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("run %s not registered in 3 minutes (state %s)", r.ID, r.State)
		}
		if r, err = c.Run(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if r.State == "failed" || r.State == "canceled" {
			t.Fatalf("run %s %s: %s", r.ID, r.State, r.Error)
		}
		if r.State != "succeeded" {
			continue
		}
		// The version is registered just after the run succeeds.
		vs, err := c.Models(ctx, "mail")
		var se *api.StatusError
		if errors.As(err, &se) && se.Status == http.StatusNotFound {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if v.RunID == r.ID {
				mv = v
			}
		}
	}

	// What the API answered is in PostgreSQL, read by another store.
	st, err := postgres.Open(url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.ModelVersion(ctx, "mail", mv.ID)
	if err != nil || got.RunID != r.ID {
		t.Fatalf("model version %s in PostgreSQL: %+v, %v; want run %s", mv.ID, got, err, r.ID)
	}
	if dv, err := st.DatasetVersion(ctx, "mail", ds.Version.ID); err != nil || dv.Records != 120 {
		t.Fatalf("dataset version %s in PostgreSQL: %+v, %v", ds.Version.ID, dv, err)
	}
	if run, err := st.Run(ctx, r.ID); err != nil || run.State != "succeeded" {
		t.Fatalf("run %s in PostgreSQL: %+v, %v", r.ID, run, err)
	}
	if v, err := st.VerifyAudit(ctx); err != nil || !v.OK() || v.Entries == 0 {
		t.Fatalf("audit chain in PostgreSQL: %+v, %v", v, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tailor.db")); !os.IsNotExist(err) {
		t.Errorf("a SQLite file was made beside the PostgreSQL store: %v", err)
	}
}
