package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
)

// blobPath is where the local store keeps digest d.
func (e *env) blobPath(d string) string {
	return filepath.Join(e.dataDir, "blobs", "sha256", d[7:9], d[7:])
}

// age sets blob d's modification time to ago before now.
func (e *env) age(d string, ago time.Duration) {
	e.t.Helper()
	old := time.Now().Add(-ago)
	if err := os.Chtimes(e.blobPath(d), old, old); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) put(content string) string {
	e.t.Helper()
	d, _, err := e.app.Blobs().Put(context.Background(), strings.NewReader(content))
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func TestGCRemovesOnlyGarbage(t *testing.T) {
	e := newEnv(t, app.Options{})
	ctx := context.Background()
	var body strings.Builder
	for i := range 300 {
		body.WriteString(record(fmt.Sprintf("r%d", i)))
	}
	if _, err := e.client.ImportDataset(ctx, strings.NewReader(body.String()), api.DatasetImportOptions{Name: "d", Task: "classify", FileName: "d.jsonl"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ImportDataset(ctx, strings.NewReader(record("extra")), api.DatasetImportOptions{Name: "d", Append: true, FileName: "e.jsonl", Format: "jsonl"}); err != nil {
		t.Fatal(err)
	}
	// Everything the store holds so far is referenced; make it old too,
	// so only references keep it.
	var all []string
	if err := e.app.Blobs().List(ctx, func(d string, _ int64) error { all = append(all, d); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, d := range all {
		e.age(d, 48*time.Hour)
	}
	old := []string{e.put("garbage one"), e.put("garbage two"), e.put("garbage three")}
	for _, d := range old {
		e.age(d, 2*time.Hour)
	}
	young := e.put("written a minute ago")
	e.age(young, time.Minute)
	revived := e.put("old, then stored again")
	e.age(revived, 2*time.Hour)
	if again := e.put("old, then stored again"); again != revived {
		t.Fatal("same bytes, other digest")
	}

	before := e.trace()
	dry, err := e.client.GC(ctx, api.GCOptions{DryRun: true, Grace: time.Hour, KeepCheckpoints: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Removed != 3 || dry.Young != 2 || !dry.DryRun || e.trace() != before {
		t.Fatalf("dry run: %+v (trace %+v → %+v); want 3 to remove, 2 young, nothing changed", dry, before, e.trace())
	}
	rep, err := e.client.GC(ctx, api.GCOptions{Grace: time.Hour, KeepCheckpoints: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed != 3 || rep.Young != 2 || rep.RemovedBytes != int64(len("garbage one")+len("garbage two")+len("garbage three")) {
		t.Fatalf("gc: %+v; want the 3 old unreferenced blobs removed and 2 young ones kept", rep)
	}
	for _, d := range old {
		if _, err := os.Stat(e.blobPath(d)); !os.IsNotExist(err) {
			t.Errorf("garbage %s still there: %v", d, err)
		}
	}
	for _, d := range []string{young, revived} {
		if _, err := os.Stat(e.blobPath(d)); err != nil {
			t.Errorf("young blob %s removed: %v", d, err)
		}
	}
	fsck, err := e.client.Fsck(ctx)
	if err != nil || len(fsck.Missing)+len(fsck.Bad) != 0 {
		t.Fatalf("fsck after gc: %+v %v", fsck, err)
	}
	if ids := latestIDs(t, e, "d"); len(ids) != 301 {
		t.Fatalf("dataset d has %d records after gc, want 301", len(ids))
	}
	if _, err := e.client.GC(ctx, api.GCOptions{Grace: -time.Second}); err == nil || !strings.Contains(err.Error(), `grace="-1s"`) {
		t.Errorf("negative grace: %v", err)
	}
}

// TestGCDuringImports runs collections with no grace at all while clients
// import and append: a collection may not remove a chunk an import has
// committed but not yet recorded. Every acknowledged record stays readable
// and fsck finds nothing missing.
func TestGCDuringImports(t *testing.T) {
	e := newEnv(t, app.Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var gcs, gcErr = 0, error(nil)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := e.client.GC(ctx, api.GCOptions{}); err != nil && gcErr == nil {
				gcErr = err
			}
			gcs++
		}
	}()
	const clients, appends = 4, 25
	acked := make([][]string, clients)
	var iwg sync.WaitGroup
	for c := range clients {
		iwg.Add(1)
		go func() {
			defer iwg.Done()
			name := fmt.Sprintf("d%d", c)
			for i := range appends {
				id := fmt.Sprintf("c%d-r%d", c, i)
				// Shared content across clients: chunks dedupe, so a
				// collection sees blobs written long before and touched.
				_, err := e.client.ImportDataset(ctx, strings.NewReader(record(id)+record(fmt.Sprintf("shared-%d", i))),
					api.DatasetImportOptions{Name: name, Append: i > 0, Task: "classify", FileName: "x.jsonl", Format: "jsonl", SkipExisting: i > 0})
				if err != nil {
					t.Errorf("import %s: %v", id, err)
					return
				}
				acked[c] = append(acked[c], id)
			}
		}()
	}
	iwg.Wait()
	close(stop)
	wg.Wait()
	if gcErr != nil {
		t.Fatal(gcErr)
	}
	for c := range clients {
		ids := latestIDs(t, e, fmt.Sprintf("d%d", c))
		for _, id := range acked[c] {
			if ids[id] != 1 {
				t.Errorf("acknowledged record %s: %d times in latest", id, ids[id])
			}
		}
	}
	fsck, err := e.client.Fsck(ctx)
	if err != nil || len(fsck.Missing)+len(fsck.Bad) != 0 {
		t.Fatalf("fsck after concurrent gc: %+v %v", fsck, err)
	}
	t.Logf("%d collections ran during %d imports", gcs, clients*appends)
	if gcs < 2 {
		t.Errorf("only %d collections overlapped the imports", gcs)
	}
}
