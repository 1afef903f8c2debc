package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// testDatasetParentCAS checks that PutDatasetVersion's parent is a
// compare-and-set: a stale or missing parent is refused with a
// *StaleParentError naming the newest version, and nothing is written.
func testDatasetParentCAS(t *testing.T, s store.Store) {
	v1 := dataset("mail", "one", 0)
	_, err := s.PutDatasetVersion(ctx, v1, nil)
	must(t, err)
	v2 := dataset("mail", "two", 1)
	v2.Parent = v1.ID
	_, err = s.PutDatasetVersion(ctx, v2, nil)
	must(t, err)
	tests := []struct {
		name, parent string
	}{
		{"stale parent", v1.ID},
		{"no parent while versions exist", ""},
		{"unknown parent", hexID("nowhere")},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prev := lastSeq(t, s)
			v := dataset("mail", fmt.Sprint("late", i), 2)
			v.Parent = tc.parent
			_, err := s.PutDatasetVersion(ctx, v, []store.Event{ev("dataset.version.created", v.ID)})
			wantKind(t, tc.name, err, errs.ErrConflict, `"mail"`)
			var stale *store.StaleParentError
			if !errors.As(err, &stale) || stale.Latest != v2.ID || stale.Expected != tc.parent {
				t.Fatalf("error %v: want a *StaleParentError with latest %s, expected %q", err, v2.ID, tc.parent)
			}
			if _, err := s.DatasetVersion(ctx, "mail", v.ID); !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("refused version was stored (lookup: %v)", err)
			}
			if seq := lastSeq(t, s); seq != prev {
				t.Errorf("refused put appended events: last seq %d, want %d", seq, prev)
			}
		})
	}
	// A first version of another name needs the empty parent.
	other := dataset("fresh", "one", 3)
	other.Parent = v2.ID
	_, err = s.PutDatasetVersion(ctx, other, nil)
	var stale *store.StaleParentError
	if !errors.As(err, &stale) || stale.Latest != "" {
		t.Fatalf("first version with a parent: %v, want a *StaleParentError with no latest", err)
	}
}

// testDatasetParentRace has writers race to append to the same parent, in
// rounds: in every round exactly one wins, so the versions form one chain.
func testDatasetParentRace(t *testing.T, s store.Store) {
	const writers, rounds = 8, 10
	parent := ""
	for r := range rounds {
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := dataset("race", fmt.Sprintf("r%d-w%d", r, w), r)
				v.Parent = parent
				_, errs[w] = s.PutDatasetVersion(ctx, v, []store.Event{ev("dataset.version.created", v.ID)})
			}()
		}
		wg.Wait()
		won := 0
		for w, err := range errs {
			var stale *store.StaleParentError
			switch {
			case err == nil:
				won++
			case errors.As(err, &stale):
			default:
				t.Fatalf("round %d writer %d: %v", r, w, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d writers won the same parent, want 1", r, won)
		}
		latest, err := s.DatasetVersion(ctx, "race", "latest")
		must(t, err)
		if latest.Parent != parent {
			t.Fatalf("round %d: latest's parent %q, want %q", r, latest.Parent, parent)
		}
		parent = latest.ID
	}
	all, err := s.DatasetVersions(ctx, "race")
	must(t, err)
	if len(all) != rounds {
		t.Fatalf("%d versions, want %d", len(all), rounds)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Parent != all[i-1].ID {
			t.Fatalf("version %d's parent %s, want %s", i, all[i].Parent, all[i-1].ID)
		}
	}
}

// testRunOnce checks CreateRunOnce: one run per key while one is queued,
// running or succeeded; a new run after failure or cancel; one winner
// among concurrent callers.
func testRunOnce(t *testing.T, s store.Store) {
	first := newRun("run-a", "k1", 0)
	got, created, evs, err := s.CreateRunOnce(ctx, first, []store.Event{ev("run.created", first.ID)})
	must(t, err)
	if !created || got.ID != first.ID || len(evs) != 1 {
		t.Fatalf("first: created=%v id=%s events=%d", created, got.ID, len(evs))
	}
	for _, st := range []store.RunState{store.RunQueued, store.RunRunning, store.RunSucceeded} {
		t.Run(string(st), func(t *testing.T) {
			_, _, err := s.UpdateRun(ctx, first.ID, store.RunUpdate{State: ptr(st)}, nil)
			must(t, err)
			prev := lastSeq(t, s)
			got, created, evs, err := s.CreateRunOnce(ctx, newRun("run-b-"+string(st), "k1", 1), []store.Event{ev("run.created", "x")})
			must(t, err)
			if created || got.ID != first.ID || got.State != st || len(evs) != 0 {
				t.Errorf("created=%v id=%s state=%s events=%d, want the existing run", created, got.ID, got.State, len(evs))
			}
			if seq := lastSeq(t, s); seq != prev {
				t.Errorf("deduplicated create appended events")
			}
		})
	}
	for i, st := range []store.RunState{store.RunFailed, store.RunCanceled} {
		t.Run(string(st), func(t *testing.T) {
			key := fmt.Sprint("k-", st)
			r := newRun("run-c"+fmt.Sprint(i), key, 2)
			r.State = st
			_, err := s.CreateRun(ctx, r, nil)
			must(t, err)
			got, created, _, err := s.CreateRunOnce(ctx, newRun("run-d"+fmt.Sprint(i), key, 3), nil)
			must(t, err)
			if !created || got.ID != "run-d"+fmt.Sprint(i) {
				t.Errorf("after a %s run: created=%v id=%s, want a new run", st, created, got.ID)
			}
		})
	}
	const callers = 16
	var wg sync.WaitGroup
	ids := make([]string, callers)
	fails := make([]error, callers)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, _, err := s.CreateRunOnce(ctx, newRun(fmt.Sprint("race-", c), "k-race", 4), nil)
			ids[c], fails[c] = r.ID, err
		}()
	}
	wg.Wait()
	for c := range callers {
		must(t, fails[c])
		if ids[c] != ids[0] {
			t.Fatalf("caller %d got run %s, caller 0 got %s: one key made two runs", c, ids[c], ids[0])
		}
	}
	runs, err := s.Runs(ctx, store.RunFilter{Key: "k-race"})
	must(t, err)
	if len(runs) != 1 {
		t.Fatalf("%d runs with key k-race, want 1", len(runs))
	}
	_, _, _, err = s.CreateRunOnce(ctx, newRun("no-key", "", 5), nil)
	wantKind(t, "empty key", err, errs.ErrInvalid, "key")
}
