package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

func testTimes(t *testing.T, s store.Store) {
	zones := []*time.Location{time.UTC, time.FixedZone("X", -7*3600-1800), time.FixedZone("Y", 13*3600)}
	for i, loc := range zones {
		created := time.Date(2024, 2, 29, 23, 59, 59, 999999999-i, loc)
		v := dataset(fmt.Sprint("times-", i), fmt.Sprint(i), 0)
		v.CreatedAt = created
		_, err := s.PutDatasetVersion(ctx, v, nil)
		must(t, err)
		got, err := s.DatasetVersion(ctx, v.Name, v.ID)
		must(t, err)
		if !got.CreatedAt.Equal(created) || got.CreatedAt != created.UTC() {
			t.Errorf("zone %s: stored %v, read back %v", loc, created, got.CreatedAt)
		}
	}
	// A zero CreatedAt is filled in by the store.
	v := dataset("times-now", "now", 0)
	v.CreatedAt = time.Time{}
	_, err := s.PutDatasetVersion(ctx, v, nil)
	must(t, err)
	got, err := s.DatasetVersion(ctx, v.Name, v.ID)
	must(t, err)
	if got.CreatedAt.IsZero() || got.CreatedAt.Location() != time.UTC {
		t.Errorf("zero CreatedAt stored as %v, want a UTC time", got.CreatedAt)
	}
}

func testAliases(t *testing.T, s store.Store) {
	a := store.Alias{Kind: "model", Name: "sentiment", Alias: "champion", Target: "mv-1", UpdatedAt: at(0)}
	prev := lastSeq(t, s)
	sent := []store.Event{ev("alias.moved", "champion")}
	got, err := s.SetAlias(ctx, a, sent)
	must(t, err)
	checkEvents(t, s, prev, sent, got)
	back, err := s.Alias(ctx, "model", "sentiment", "champion")
	must(t, err)
	equal(t, "created alias", back, a)

	b := store.Alias{Kind: "model", Name: "sentiment", Alias: "challenger", Target: "mv-2", UpdatedAt: at(1)}
	c := store.Alias{Kind: "base", Name: "smollm", Alias: "stable", Target: "b-1", UpdatedAt: at(2)}
	for _, x := range []store.Alias{b, c} {
		_, err := s.SetAlias(ctx, x, nil)
		must(t, err)
	}
	moved := a
	moved.Target, moved.UpdatedAt = "mv-3", at(3)
	_, err = s.SetAlias(ctx, moved, []store.Event{ev("alias.moved", "champion")})
	must(t, err)
	back, err = s.Alias(ctx, "model", "sentiment", "champion")
	must(t, err)
	equal(t, "moved alias", back, moved)

	list, err := s.Aliases(ctx, "model", "sentiment")
	must(t, err)
	equal(t, "model aliases", list, []store.Alias{moved, b})
	list, err = s.Aliases(ctx, "base", "smollm")
	must(t, err)
	equal(t, "base aliases", list, []store.Alias{c})

	_, err = s.Alias(ctx, "model", "sentiment", "nope")
	wantKind(t, "missing alias", err, errs.ErrNotFound, `"sentiment"`, `"nope"`)
	_, err = s.Alias(ctx, "base", "sentiment", "champion")
	wantKind(t, "alias of other kind", err, errs.ErrNotFound, "base")
}

func testEvents(t *testing.T, s store.Store) {
	var all []store.Event
	for batch := range 4 {
		var sent []store.Event
		for i := range batch + 1 {
			e := ev("trigger.fired", fmt.Sprintf("t%d.%d", batch, i))
			e.Time = at(batch*10 + i)
			sent = append(sent, e)
		}
		sent[0].Data = nil
		prev := lastSeq(t, s)
		got, err := s.AppendEvents(ctx, sent)
		must(t, err)
		checkEvents(t, s, prev, sent, got)
		for i := range got {
			if !got[i].Time.Equal(sent[i].Time) {
				t.Errorf("event time %v, want %v", got[i].Time, sent[i].Time)
			}
		}
		all = append(all, got...)
	}
	stored, err := s.Events(ctx, 0, 0)
	must(t, err)
	equal(t, "all events", stored, all)
	page, err := s.Events(ctx, all[2].Seq, 3)
	must(t, err)
	equal(t, "page", page, all[3:6])
	tail, err := s.Events(ctx, all[len(all)-1].Seq, 0)
	must(t, err)
	if len(tail) != 0 {
		t.Errorf("events after the last: %v", tail)
	}
	empty, err := s.AppendEvents(ctx, nil)
	must(t, err)
	if len(empty) != 0 {
		t.Errorf("AppendEvents(nil) = %v", empty)
	}
}

// testEventsAtomic checks that a failed change appends no event and that a
// bad event rolls back the change it came with.
func testEventsAtomic(t *testing.T, s store.Store) {
	good := ev("x.happened", "s")
	bad := store.Event{Subject: "no type"}
	before := lastSeq(t, s)

	_, err := s.AppendEvents(ctx, []store.Event{good, bad, good})
	wantKind(t, "event without type", err, errs.ErrInvalid)
	_, err = s.AppendEvents(ctx, []store.Event{good, {Type: "x", Data: json.RawMessage(`{`)}})
	wantKind(t, "event with bad JSON", err, errs.ErrInvalid)

	v := dataset("atomic", "one", 0)
	_, err = s.PutDatasetVersion(ctx, v, []store.Event{good, bad})
	wantKind(t, "put with bad event", err, errs.ErrInvalid)
	_, err = s.DatasetVersion(ctx, "atomic", v.ID)
	wantKind(t, "version after rolled-back put", err, errs.ErrNotFound)

	_, _, err = s.PutBaseVersion(ctx, base("atomic", "one", 0), []store.Event{bad})
	wantKind(t, "base with bad event", err, errs.ErrInvalid)
	_, err = s.CreateRun(ctx, newRun("r", "k", 0), []store.Event{bad})
	wantKind(t, "run with bad event", err, errs.ErrInvalid)
	_, err = s.Run(ctx, "r")
	wantKind(t, "run after rolled-back create", err, errs.ErrNotFound)
	_, err = s.SetAlias(ctx, store.Alias{Kind: "model", Name: "m", Alias: "a", Target: "t"}, []store.Event{bad})
	wantKind(t, "alias with bad event", err, errs.ErrInvalid)
	_, err = s.Alias(ctx, "model", "m", "a")
	wantKind(t, "alias after rolled-back set", err, errs.ErrNotFound)
	if seq := lastSeq(t, s); seq != before {
		t.Errorf("failed writes appended events: last seq %d, want %d", seq, before)
	}

	// The base version number was not used up by the rolled-back insert.
	b, _, err := s.PutBaseVersion(ctx, base("atomic", "one", 0), nil)
	must(t, err)
	if b.Version != 1 {
		t.Errorf("version after rollback %d, want 1", b.Version)
	}
}

func testInvalid(t *testing.T, s store.Store) {
	_, err := s.PutDatasetVersion(ctx, store.DatasetVersion{ID: "x"}, nil)
	wantKind(t, "dataset without name", err, errs.ErrInvalid, "name")
	_, _, err = s.PutBaseVersion(ctx, store.BaseVersion{Name: "b"}, nil)
	wantKind(t, "base without id", err, errs.ErrInvalid, "id")
	_, _, err = s.PutRecipeVersion(ctx, store.RecipeVersion{ID: "r"}, nil)
	wantKind(t, "recipe without name", err, errs.ErrInvalid, "name")
	_, err = s.CreateRun(ctx, store.Run{Key: "k"}, nil)
	wantKind(t, "run without id", err, errs.ErrInvalid, "id")
	r := newRun("r", "k", 0)
	r.State = "sleeping"
	_, err = s.CreateRun(ctx, r, nil)
	wantKind(t, "run with unknown state", err, errs.ErrInvalid, "sleeping")
	r = newRun("r", "k", 0)
	r.Inputs = json.RawMessage(`{"a":`)
	_, err = s.CreateRun(ctx, r, nil)
	wantKind(t, "run with bad inputs", err, errs.ErrInvalid, "inputs")
	_, err = s.CreateRun(ctx, newRun("ok", "k", 0), nil)
	must(t, err)
	_, _, err = s.UpdateRun(ctx, "ok", store.RunUpdate{State: ptr(store.RunState("bogus"))}, nil)
	wantKind(t, "update to unknown state", err, errs.ErrInvalid, "bogus")
	_, err = s.SetAlias(ctx, store.Alias{Kind: "model", Name: "m", Alias: "a"}, nil)
	wantKind(t, "alias without target", err, errs.ErrInvalid, "target")
}

// testConcurrent runs several writers at once: each creates runs, appends
// log lines and events. No row may be lost and no Seq duplicated.
func testConcurrent(t *testing.T, s store.Store) {
	const writers, runsEach, logsEach = 6, 4, 8
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- writeRuns(s, w, runsEach, logsEach)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.Runs(ctx, store.RunFilter{})
	must(t, err)
	if len(runs) != writers*runsEach {
		t.Fatalf("%d runs, want %d", len(runs), writers*runsEach)
	}
	for _, r := range runs {
		logs, err := s.RunLogs(ctx, r.ID, 0, 0)
		must(t, err)
		if len(logs) != logsEach {
			t.Fatalf("run %s: %d log lines, want %d", r.ID, len(logs), logsEach)
		}
		for i, l := range logs {
			if l.Seq != int64(i+1) {
				t.Fatalf("run %s line %d has seq %d", r.ID, i, l.Seq)
			}
		}
	}
	evs, err := s.Events(ctx, 0, 0)
	must(t, err)
	if want := writers * runsEach * 2; len(evs) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Fatalf("event seq %d after %d", evs[i].Seq, evs[i-1].Seq)
		}
	}
}

func writeRuns(s store.Store, w, runs, logs int) error {
	for i := range runs {
		id := fmt.Sprintf("w%d-r%d", w, i)
		if _, err := s.CreateRun(ctx, newRun(id, fmt.Sprint(w), i), []store.Event{ev("run.created", id)}); err != nil {
			return err
		}
		for j := range logs {
			if _, err := s.AppendRunLog(ctx, id, at(j), json.RawMessage(fmt.Sprintf(`{"step":%d}`, j))); err != nil {
				return err
			}
		}
		if _, err := s.AppendEvents(ctx, []store.Event{ev("run.logged", id)}); err != nil {
			return err
		}
	}
	return nil
}
