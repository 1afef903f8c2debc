package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// TestGCReleasesOldCheckpoints: the last checkpoint of a run finished
// longer ago than KeepCheckpoints is released (the run forgets it) and
// removed; a recent run's is kept, and so is every run's result.
func TestGCReleasesOldCheckpoints(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	a, err := Open(Options{DataDir: t.TempDir(), EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	put := func(s string) string {
		d, _, err := a.blobs.Put(ctx, strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if _, _, err := a.store.PutRecipeVersion(ctx, store.RecipeVersion{ID: "rid", Name: "r", Normalized: []byte("name: r\n"), CreatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	runs := map[string]time.Duration{"run-old": 30 * 24 * time.Hour, "run-new": time.Hour}
	ckpt := map[string]string{}
	for id, ago := range runs {
		ckpt[id] = put("checkpoint of " + id)
		r := store.Run{ID: id, Key: "k-" + id, RecipeID: "rid", DatasetID: "d", Inputs: []byte(`{}`), State: store.RunSucceeded,
			Checkpoint: ckpt[id], Result: put("result of " + id), CreatedAt: now.Add(-ago), FinishedAt: now.Add(-ago)}
		if _, err := a.store.CreateRun(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Blob times are real (the clock above is not): no grace keeps them.
	dry, err := a.GC(ctx, api.GCOptions{DryRun: true, KeepCheckpoints: 7 * 24 * time.Hour})
	if err != nil || dry.Checkpoints != 1 || dry.Removed != 1 {
		t.Fatalf("dry run: %+v %v; want one checkpoint released and removed", dry, err)
	}
	if r, _ := a.store.Run(ctx, "run-old"); r.Checkpoint == "" {
		t.Fatal("a dry run released a checkpoint")
	}
	rep, err := a.GC(ctx, api.GCOptions{KeepCheckpoints: 7 * 24 * time.Hour})
	if err != nil || rep.Checkpoints != 1 || rep.Removed != 1 || rep.Examples[0] != ckpt["run-old"] {
		t.Fatalf("gc: %+v %v; want run-old's checkpoint released and removed", rep, err)
	}
	old, _ := a.store.Run(ctx, "run-old")
	recent, _ := a.store.Run(ctx, "run-new")
	if old.Checkpoint != "" || old.Result == "" || recent.Checkpoint != ckpt["run-new"] {
		t.Fatalf("after gc: run-old checkpoint %q result %q; run-new checkpoint %q", old.Checkpoint, old.Result, recent.Checkpoint)
	}
	fsck, err := a.Fsck(ctx)
	if err != nil || len(fsck.Missing)+len(fsck.Bad) != 0 {
		t.Fatalf("fsck: %+v %v", fsck, err)
	}
}

// TestStoreWithoutAges: over a blob store that cannot tell when a blob was
// written (no blob.Toucher), imports still commit their staged blobs, and
// GC refuses rather than delete what a worker may be about to report.
func TestStoreWithoutAges(t *testing.T) {
	a, err := Open(Options{DataDir: t.TempDir(), EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.blobs = ageless{a.blobs}
	ctx := context.Background()
	for range 2 { // the second import finds every blob stored
		if _, err := a.ImportDataset(ctx, strings.NewReader("{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\",\"label\":\"y\"}\n"),
			api.DatasetImportOptions{Name: "d", Task: "classify", FileName: "d.jsonl"}); err != nil {
			t.Fatal(err)
		}
	}
	if fsck, err := a.Fsck(ctx); err != nil || len(fsck.Missing)+len(fsck.Bad) != 0 {
		t.Fatalf("fsck: %+v %v", fsck, err)
	}
	if _, err := a.GC(ctx, api.GCOptions{DryRun: true}); !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("gc over a store without ages: %v, want unavailable", err)
	}
}

// ageless hides a store's Touch and ModTime.
type ageless struct{ blob.Store }
