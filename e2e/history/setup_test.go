package history

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/tailortest"

	"github.com/tailor-ml/tailor/api"
)

// world names what setup made: the fixed inputs the workload drives.
type world struct {
	// KeyedRecipe is the id of a recipe version over a dataset nobody
	// appends to, so every start of it has the same run key.
	KeyedRecipe string
	// Model has versions v1..v<Versions>; Alias points at v1.
	Model    string
	Alias    string
	Versions int
	// SetupTag is the reason of the setup's alias move.
	SetupTag string
}

const (
	frozenDataset = "frozen"
	promoModel    = "promo"
	keyedName     = "keyed"
)

// recipeText is a tiny classify recipe: few steps on a tiny base.
func recipeText(name string, seed int) string {
	return fmt.Sprintf(`name: %s
task: classify
base: tiny
data:
  dataset: %s
method:
  kind: lora
  lora:
    rank: 2
    alpha: 4
    targets: [q_proj, v_proj]
train:
  max_steps: 4
  batch_size: 4
  learning_rate: 0.003
  checkpoint_every: 2
  max_seq_len: 24
seed: %d
region: local
`, name, frozenDataset, seed)
}

// applyText is the fixed text of workload recipe i, applied again and again.
func applyText(i int) string { return recipeText(fmt.Sprintf("apply-%d", i), 100+i) }

var (
	templateOnce sync.Once
	templateDir  string
	templateW    world
	templateErr  error
)

// template sets up one data dir (base, frozen dataset, trained model
// versions, keyed recipe) once per test binary; each history copies it, so
// the training runs are paid once.
func template(t *testing.T) (string, world) {
	t.Helper()
	templateOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tailor-history-template")
		if err != nil {
			templateErr = err
			return
		}
		templateDir = filepath.Join(dir, "data")
		templateW, templateErr = setupWorld(t, dir)
	})
	if templateErr != nil {
		t.Fatalf("setup: %v", templateErr)
	}
	dst := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", templateDir, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy template data dir: %v: %s", err, out)
	}
	return dst, templateW
}

func setupWorld(t *testing.T, work string) (world, error) {
	start := time.Now()
	srv := startServer(t, filepath.Join(work, "data"))
	defer srv.stop()
	ctx := context.Background()
	c := api.NewClient(srv.Addr(), nil)
	w := world{Model: promoModel, Alias: "champion", Versions: 3, SetupTag: "setup"}

	base := filepath.Join(work, "tiny")
	if err := tailortest.WriteBase(base, tailortest.Corpus(0, 200), tailortest.Micro); err != nil {
		return w, err
	}
	if _, err := c.ImportBaseDir(ctx, "tiny", "", base); err != nil {
		return w, fmt.Errorf("import base: %w", err)
	}
	if _, err := c.ImportDataset(ctx, strings.NewReader(tailortest.Corpus(0, 120)),
		api.DatasetImportOptions{Name: frozenDataset, Task: "classify", FileName: "frozen.jsonl"}); err != nil {
		return w, fmt.Errorf("import %s: %w", frozenDataset, err)
	}
	for v := 1; v <= w.Versions; v++ {
		if _, err := c.ApplyRecipe(ctx, promoModel+".yaml", []byte(recipeText(promoModel, v))); err != nil {
			return w, err
		}
		run, err := c.StartRun(ctx, api.RunStart{Recipe: promoModel})
		if err != nil {
			return w, err
		}
		if run, err = waitRun(ctx, c, run.ID); err != nil {
			return w, err
		}
		if run.State != "succeeded" {
			return w, fmt.Errorf("setup run %s of %s v%d: %s: %s", run.ID, promoModel, v, run.State, run.Error)
		}
	}
	if _, err := c.Promote(ctx, promoModel, api.Promote{Version: "v1", Alias: w.Alias, Reason: w.SetupTag, Actor: "setup",
		Override: true, OverrideReason: "history test: tiny models"}); err != nil {
		return w, fmt.Errorf("promote: %w", err)
	}
	ra, err := c.ApplyRecipe(ctx, keyedName+".yaml", []byte(recipeText(keyedName, 7)))
	if err != nil {
		return w, err
	}
	w.KeyedRecipe = ra.Version.ID
	t.Logf("setup: base, dataset, %d trained model versions, keyed recipe %s in %s", w.Versions, w.KeyedRecipe, time.Since(start).Round(time.Millisecond))
	return w, nil
}

// waitRun polls until the run is finished.
func waitRun(ctx context.Context, c *api.Client, id string) (api.Run, error) {
	for {
		r, err := c.Run(ctx, id)
		if err != nil {
			return r, err
		}
		switch r.State {
		case "succeeded", "failed", "canceled":
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
