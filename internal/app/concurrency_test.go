package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
)

func record(id string) string {
	return fmt.Sprintf("{\"id\":%q,\"text\":\"message %s about things\",\"label\":\"ham\"}\n", id, id)
}

// checkChain fails unless the versions of name form one linear chain,
// oldest first, and returns the newest.
func checkChain(t *testing.T, e *env, name string) api.DatasetVersion {
	t.Helper()
	vs, err := e.client.Datasets(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		want := ""
		if i > 0 {
			want = vs[i-1].ID
		}
		if v.Parent != want {
			t.Fatalf("version %d (%s) has parent %q, want %q: the chain forks or breaks", i, v.ID[:12], v.Parent, want)
		}
	}
	return vs[len(vs)-1]
}

// latestIDs reads the record ids of the latest version of name.
func latestIDs(t *testing.T, e *env, name string) map[string]int {
	t.Helper()
	var buf bytes.Buffer
	if err := e.client.DatasetRecords(context.Background(), name, "latest", "", &buf); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var r struct{ ID string }
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		ids[r.ID]++
	}
	return ids
}

// TestConcurrentAppendsKeepEveryRecord is the data loss found by hand:
// concurrent appends all answered "created", and latest lost records.
func TestConcurrentAppendsKeepEveryRecord(t *testing.T) {
	e := newEnv(t, app.Options{})
	ctx := context.Background()
	if _, err := e.client.ImportDataset(ctx, strings.NewReader(record("seed")), api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "a.jsonl"}); err != nil {
		t.Fatal(err)
	}
	const writers = 16
	var wg sync.WaitGroup
	res := make([]api.DatasetImport, writers)
	fails := make([]error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[w], fails[w] = e.client.ImportDataset(ctx, strings.NewReader(record(fmt.Sprint("w", w))),
				api.DatasetImportOptions{Name: "mail", FileName: "b.jsonl", Append: true})
		}()
	}
	wg.Wait()
	for w := range writers {
		if fails[w] != nil || !res[w].Created {
			t.Fatalf("append %d: created=%v err=%v", w, res[w].Created, fails[w])
		}
	}
	latest := checkChain(t, e, "mail")
	if latest.Records != writers+1 {
		t.Errorf("latest has %d records, want %d", latest.Records, writers+1)
	}
	ids := latestIDs(t, e, "mail")
	for w := range writers {
		if n := ids[fmt.Sprint("w", w)]; n != 1 {
			t.Errorf("acknowledged record w%d appears %d times in latest", w, n)
		}
	}
}

// TestConcurrentImportsRecordParents: concurrent imports to a new name all
// recorded an empty parent; each must record the version before it.
func TestConcurrentImportsRecordParents(t *testing.T) {
	e := newEnv(t, app.Options{})
	const writers = 10
	var wg sync.WaitGroup
	fails := make([]error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, fails[w] = e.client.ImportDataset(context.Background(), strings.NewReader(record(fmt.Sprint("only", w))),
				api.DatasetImportOptions{Name: "fresh", Task: "classify", FileName: "a.jsonl"})
		}()
	}
	wg.Wait()
	for w, err := range fails {
		if err != nil {
			t.Fatalf("import %d: %v", w, err)
		}
	}
	vs, _ := e.client.Datasets(context.Background(), "fresh")
	if len(vs) != writers {
		t.Fatalf("%d versions, want %d", len(vs), writers)
	}
	checkChain(t, e, "fresh")
}

// TestExpectParent covers the compare-and-set an import may ask for.
func TestExpectParent(t *testing.T) {
	e := newEnv(t, app.Options{})
	ctx := context.Background()
	imp := func(id, expect string, appendMode bool) (api.DatasetImport, error) {
		o := api.DatasetImportOptions{Name: "cas", Task: "classify", FileName: "a.jsonl", Append: appendMode, ExpectParent: expect}
		return e.client.ImportDataset(ctx, strings.NewReader(record(id)), o)
	}
	first, err := imp("a", api.ExpectNone, false)
	if err != nil {
		t.Fatal(err)
	}
	second, err := imp("b", first.Version.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, expect string
		want         []string
	}{
		{"none when versions exist", api.ExpectNone, []string{"latest version is " + second.Version.ID, "not none"}},
		{"stale parent", first.Version.ID, []string{"latest version is " + second.Version.ID, "not " + first.Version.ID, "send the import again"}},
		{"unknown parent", "feedface", []string{"not feedface"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.trace()
			_, err := imp("c-"+tc.name, tc.expect, true)
			var se *api.StatusError
			if !errors.As(err, &se) || se.Status != 409 || se.Err.Kind != "conflict" {
				t.Fatalf("error %v, want HTTP 409 conflict", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(se.Err.Message, w) {
					t.Errorf("message %q does not say %q", se.Err.Message, w)
				}
			}
			if after := e.trace(); after != before {
				t.Errorf("refused import left a trace: before %+v, after %+v", before, after)
			}
		})
	}
	// Racers with the same expected parent: exactly one wins.
	const racers = 8
	var wg sync.WaitGroup
	fails := make([]error, racers)
	for r := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, fails[r] = imp(fmt.Sprint("race", r), second.Version.ID, true)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range fails {
		var se *api.StatusError
		switch {
		case err == nil:
			won++
		case errors.As(err, &se) && se.Status == 409:
		default:
			t.Fatalf("racer: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d racers won parent %s, want 1", won, second.Version.ID[:12])
	}
	checkChain(t, e, "cas")
}

// TestConcurrentRunStartsMakeOneRun: starts of one recipe with equal run
// keys, at once, make one run; every start answers with its id.
func TestConcurrentRunStartsMakeOneRun(t *testing.T) {
	e := newEnv(t, app.Options{}) // not started: runs stay queued
	ctx := context.Background()
	dir := t.TempDir()
	writeTinyBase(t, dir)
	if _, err := importBaseDir(e, "tiny", dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ImportDataset(ctx, strings.NewReader(record("a")+record("b")), api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "a.jsonl"}); err != nil {
		t.Fatal(err)
	}
	const recipe = "name: once\ntask: classify\nbase: tiny\ndata:\n  dataset: mail\nmethod:\n  kind: head\ntrain:\n  epochs: 1\nseed: 1\nregion: local\n"
	if _, err := e.client.ApplyRecipe(ctx, "once.yaml", []byte(recipe)); err != nil {
		t.Fatal(err)
	}
	const starters = 12
	var wg sync.WaitGroup
	runs := make([]api.Run, starters)
	fails := make([]error, starters)
	for s := range starters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[s], fails[s] = e.client.StartRun(ctx, api.RunStart{Recipe: "once"})
		}()
	}
	wg.Wait()
	created := 0
	for s := range starters {
		if fails[s] != nil {
			t.Fatalf("start %d: %v", s, fails[s])
		}
		if runs[s].ID != runs[0].ID {
			t.Fatalf("start %d got run %s, start 0 got %s", s, runs[s].ID, runs[0].ID)
		}
		if !runs[s].Reused {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d starts say they created the run, want 1", created)
	}
	all, err := e.client.Runs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Fatalf("%d runs stored, want 1", len(all))
	}
	forced, err := e.client.StartRun(ctx, api.RunStart{Recipe: "once", Force: true})
	if err != nil || forced.ID == runs[0].ID || forced.Reused {
		t.Fatalf("forced start: %+v, %v; want a new run", forced, err)
	}
}
