package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

func firing(trigger string, seq int64, i int) store.Firing {
	return store.Firing{Trigger: trigger, EventSeq: seq, EventType: "feedback.accumulated", SpecID: hexID("spec" + trigger), SpecVersion: 1,
		State: store.FiringPending, Results: json.RawMessage(`[]`), Reason: "120 new labelled records", CreatedAt: at(i), UpdatedAt: at(i)}
}

// testFirings: a claim is idempotent on (trigger, event seq) and comes
// with its events in one transaction; a second claim returns the stored
// firing and appends nothing; updates are compare-and-set on state and
// step.
func testFirings(t *testing.T, s store.Store) {
	prev := lastSeq(t, s)
	f := firing("retrain", 7, 1)
	got, created, evs, err := s.ClaimFiring(ctx, f, []store.Event{ev("trigger.fired", "retrain")})
	must(t, err)
	if !created || len(evs) != 1 {
		t.Fatalf("first claim: created=%v events %d", created, len(evs))
	}
	checkEvents(t, s, prev, []store.Event{ev("trigger.fired", "retrain")}, evs)
	equal(t, "claimed", got, f)
	stored, err := s.Firing(ctx, "retrain", 7)
	must(t, err)
	equal(t, "stored", stored, f)

	prev = lastSeq(t, s)
	again := firing("retrain", 7, 5)
	again.Reason = "another process"
	got, created, evs, err = s.ClaimFiring(ctx, again, []store.Event{ev("trigger.fired", "retrain")})
	must(t, err)
	if created || len(evs) != 0 || got.Reason != f.Reason || !got.CreatedAt.Equal(f.CreatedAt) {
		t.Fatalf("second claim: created=%v events %d firing %+v; want the first one back", created, len(evs), got)
	}
	if lastSeq(t, s) != prev {
		t.Error("second claim appended events")
	}
	// The same event fires another trigger independently.
	_, created, _, err = s.ClaimFiring(ctx, firing("notify", 7, 2), nil)
	must(t, err)
	if !created {
		t.Error("another trigger on the same event was not claimed")
	}

	// Advancing is a compare-and-set on (state, step).
	run := got
	run.State, run.Results = store.FiringRunning, json.RawMessage(`[{"action":"retrain","run_id":"run-1"}]`)
	run.UpdatedAt = at(3)
	after, evs, err := s.UpdateFiring(ctx, run, store.FiringPending, 0, []store.Event{ev("trigger.action.started", "retrain")})
	must(t, err)
	if after.State != store.FiringRunning || after.Step != 0 || string(after.Results) != string(run.Results) || !after.UpdatedAt.Equal(at(3)) || len(evs) != 1 {
		t.Fatalf("after update: %+v, %d events", after, len(evs))
	}
	prev = lastSeq(t, s)
	stale := after
	stale.Step = 1
	_, _, err = s.UpdateFiring(ctx, stale, store.FiringRunning, 1, []store.Event{ev("trigger.action.done", "retrain")})
	wantKind(t, "stale step", err, errs.ErrConflict, `"retrain"`, "step 0")
	_, _, err = s.UpdateFiring(ctx, stale, store.FiringPending, 0, nil)
	wantKind(t, "stale state", err, errs.ErrConflict, "running")
	if lastSeq(t, s) != prev {
		t.Error("refused update appended events")
	}
	done := after
	done.State, done.Step = store.FiringDone, 1
	done.Results = json.RawMessage(`[{"action":"retrain","run_id":"run-1","outcome":"run run-1 succeeded"}]`)
	_, _, err = s.UpdateFiring(ctx, done, store.FiringRunning, 0, nil)
	must(t, err)
	_, _, err = s.UpdateFiring(ctx, firing("nope", 1, 1), store.FiringPending, 0, nil)
	wantKind(t, "missing firing", err, errs.ErrNotFound, `"nope"`)
	_, err = s.Firing(ctx, "retrain", 8)
	wantKind(t, "missing", err, errs.ErrNotFound, `"retrain"`, "8")

	// Lists: by trigger, by state, the newest n.
	for i, seq := range []int64{9, 12, 15} {
		sk := firing("retrain", seq, 10+i)
		if i == 1 {
			sk.State = store.FiringSkipped
		}
		_, _, _, err := s.ClaimFiring(ctx, sk, nil)
		must(t, err)
	}
	all, err := s.Firings(ctx, store.FiringFilter{Trigger: "retrain"})
	must(t, err)
	if seqs := firingSeqs(all); seqs != "7 9 12 15" {
		t.Errorf("retrain firings %s", seqs)
	}
	if all[0].State != store.FiringDone || all[0].Step != 1 {
		t.Errorf("first firing after updates: %+v", all[0])
	}
	last, err := s.Firings(ctx, store.FiringFilter{Trigger: "retrain", States: []store.FiringState{store.FiringPending, store.FiringDone}, Last: 2})
	must(t, err)
	if seqs := firingSeqs(last); seqs != "9 15" {
		t.Errorf("newest 2 pending or done: %s", seqs)
	}
	every, err := s.Firings(ctx, store.FiringFilter{})
	must(t, err)
	if len(every) != 5 {
		t.Errorf("all firings: %d, want 5", len(every))
	}

	_, _, _, err = s.ClaimFiring(ctx, store.Firing{Trigger: "x", EventSeq: 1, SpecID: "s", EventType: "e", State: "sleeping"}, nil)
	wantKind(t, "bad state", err, errs.ErrInvalid, "sleeping")
	_, _, _, err = s.ClaimFiring(ctx, store.Firing{Trigger: "x", EventSeq: 1, SpecID: "s", EventType: "e", State: store.FiringPending, Results: json.RawMessage(`{}`)}, nil)
	wantKind(t, "results not an array", err, errs.ErrInvalid, "array")
}

// testScheduleFirings: a tick is claimed once per trigger, and its firing
// takes the seq of its own event.
func testScheduleFirings(t *testing.T, s store.Store) {
	f := firing("nightly", 0, 1)
	f.EventType, f.Tick = "schedule", at(60)
	got, created, evs, err := s.ClaimFiring(ctx, f, []store.Event{ev("trigger.fired", "nightly")})
	must(t, err)
	if !created || got.EventSeq != evs[0].Seq || !got.Tick.Equal(at(60)) {
		t.Fatalf("tick claim: created=%v %+v events %+v", created, got, evs)
	}
	prev := lastSeq(t, s)
	again, created, evs, err := s.ClaimFiring(ctx, f, []store.Event{ev("trigger.fired", "nightly")})
	must(t, err)
	if created || len(evs) != 0 || again.EventSeq != got.EventSeq || lastSeq(t, s) != prev {
		t.Fatalf("second tick claim: created=%v %+v", created, again)
	}
	// Concurrent claims of one tick make one firing.
	next := f
	next.Tick = at(120)
	var wg sync.WaitGroup
	var mu sync.Mutex
	made := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, c, _, err := s.ClaimFiring(ctx, next, []store.Event{ev("trigger.fired", "nightly")})
			if err != nil && !errors.Is(err, errs.ErrUnavailable) {
				t.Error(err)
			}
			mu.Lock()
			if c {
				made++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if made != 1 {
		t.Errorf("%d concurrent claims of one tick created a firing, want 1", made)
	}
	_, _, _, err = s.ClaimFiring(ctx, firing("nightly", 0, 1), nil)
	wantKind(t, "no seq, no tick", err, errs.ErrInvalid, "tick")
}

// testTriggerCursor: absent at first, then only moves forward.
func testTriggerCursor(t *testing.T, s store.Store) {
	_, err := s.TriggerCursor(ctx)
	wantKind(t, "no cursor", err, errs.ErrNotFound)
	must(t, s.SaveTriggerCursor(ctx, 10))
	must(t, s.SaveTriggerCursor(ctx, 4))
	got, err := s.TriggerCursor(ctx)
	must(t, err)
	if got != 10 {
		t.Errorf("cursor %d after saving 10 then 4, want 10", got)
	}
	must(t, s.SaveTriggerCursor(ctx, 11))
	if got, _ := s.TriggerCursor(ctx); got != 11 {
		t.Errorf("cursor %d, want 11", got)
	}
}

func firingSeqs(fs []store.Firing) string {
	seqs := make([]string, len(fs))
	for i, f := range fs {
		seqs[i] = fmt.Sprint(f.EventSeq)
	}
	return strings.Join(seqs, " ")
}
