package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

func ptr[T any](v T) *T { return &v }

func testRuns(t *testing.T, s store.Store) {
	r := newRun("run-1", "key-1", 0)
	r.Metrics = json.RawMessage(`{"loss":0.5}`)
	r.Attempt, r.Step = 2, 17
	r.Checkpoint, r.Result, r.Error = "sha256:"+hexID("ck"), "sha256:"+hexID("res"), "none yet"
	r.StartedAt = at(1)
	prev := lastSeq(t, s)
	sent := []store.Event{ev("run.created", r.ID)}
	got, err := s.CreateRun(ctx, r, sent)
	must(t, err)
	checkEvents(t, s, prev, sent, got)
	back, err := s.Run(ctx, r.ID)
	must(t, err)
	equal(t, "run", back, r)

	bare := store.Run{ID: "run-2", Key: "key-2", CreatedAt: at(2), State: store.RunQueued}
	_, err = s.CreateRun(ctx, bare, nil)
	must(t, err)
	back, err = s.Run(ctx, bare.ID)
	must(t, err)
	equal(t, "bare run", back, bare)

	_, err = s.CreateRun(ctx, newRun("run-1", "other", 3), []store.Event{ev("run.created", "run-1")})
	wantKind(t, "duplicate run", err, errs.ErrConflict, `"run-1"`)
	if seq := lastSeq(t, s); seq != got[0].Seq {
		t.Errorf("failed CreateRun appended an event: last seq %d, want %d", seq, got[0].Seq)
	}
	_, err = s.Run(ctx, "run-404")
	wantKind(t, "missing run", err, errs.ErrNotFound, `"run-404"`)
}

func testRunFilter(t *testing.T, s store.Store) {
	states := []store.RunState{store.RunQueued, store.RunRunning, store.RunSucceeded, store.RunFailed, store.RunCanceled, store.RunQueued}
	var ids []string
	for i, st := range states {
		r := newRun(fmt.Sprintf("run-%d", i), fmt.Sprintf("key-%d", i%2), i)
		r.State = st
		_, err := s.CreateRun(ctx, r, nil)
		must(t, err)
		ids = append(ids, r.ID)
	}
	tests := []struct {
		name string
		f    store.RunFilter
		want []string
	}{
		{"all", store.RunFilter{}, ids},
		{"queued", store.RunFilter{States: []store.RunState{store.RunQueued}}, []string{"run-0", "run-5"}},
		{"running or failed", store.RunFilter{States: []store.RunState{store.RunFailed, store.RunRunning}}, []string{"run-1", "run-3"}},
		{"key", store.RunFilter{Key: "key-1"}, []string{"run-1", "run-3", "run-5"}},
		{"key and state", store.RunFilter{Key: "key-1", States: []store.RunState{store.RunQueued, store.RunFailed}}, []string{"run-3", "run-5"}},
		{"no match", store.RunFilter{Key: "key-9"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runs, err := s.Runs(ctx, tc.f)
			must(t, err)
			var got []string
			for _, r := range runs {
				got = append(got, r.ID)
			}
			equal(t, "run ids", got, tc.want)
		})
	}
}

func testUpdateRun(t *testing.T, s store.Store) {
	r := newRun("run-1", "k", 0)
	_, err := s.CreateRun(ctx, r, nil)
	must(t, err)

	start := time.Date(2025, 3, 14, 16, 0, 0, 1, time.FixedZone("CET", 3600))
	prev := lastSeq(t, s)
	sent := []store.Event{ev("run.state.changed", r.ID)}
	after, got, err := s.UpdateRun(ctx, r.ID, store.RunUpdate{
		IfState: ptr(store.RunQueued), State: ptr(store.RunRunning), Attempt: ptr(1), StartedAt: &start,
	}, sent)
	must(t, err)
	checkEvents(t, s, prev, sent, got)
	want := r
	want.State, want.Attempt, want.StartedAt = store.RunRunning, 1, start.UTC()
	equal(t, "after start", after, want)
	back, err := s.Run(ctx, r.ID)
	must(t, err)
	equal(t, "stored after start", back, want)

	// Compare-and-set against a stale state fails, changes nothing and
	// appends no event.
	seq := lastSeq(t, s)
	_, _, err = s.UpdateRun(ctx, r.ID, store.RunUpdate{IfState: ptr(store.RunQueued), State: ptr(store.RunCanceled)},
		[]store.Event{ev("run.state.changed", r.ID)})
	wantKind(t, "stale compare-and-set", err, errs.ErrConflict, `"run-1"`, "running")
	back, err = s.Run(ctx, r.ID)
	must(t, err)
	equal(t, "after failed CAS", back, want)
	if got := lastSeq(t, s); got != seq {
		t.Errorf("failed CAS appended an event: seq %d, want %d", got, seq)
	}

	// Progress without a condition; nil fields stay.
	after, _, err = s.UpdateRun(ctx, r.ID, store.RunUpdate{Step: ptr(int64(50)), Metrics: json.RawMessage(`{"loss":0.25}`),
		Checkpoint: ptr("sha256:" + hexID("ck"))}, nil)
	must(t, err)
	want.Step, want.Metrics, want.Checkpoint = 50, json.RawMessage(`{"loss":0.25}`), "sha256:"+hexID("ck")
	equal(t, "after progress", after, want)

	fin := at(30)
	after, _, err = s.UpdateRun(ctx, r.ID, store.RunUpdate{IfState: ptr(store.RunRunning), State: ptr(store.RunFailed),
		Error: ptr("out of memory"), FinishedAt: &fin, TotalSteps: ptr(int64(200)), Result: ptr("sha256:" + hexID("res"))}, nil)
	must(t, err)
	want.State, want.Error, want.FinishedAt, want.TotalSteps, want.Result = store.RunFailed, "out of memory", fin, 200, "sha256:"+hexID("res")
	equal(t, "after finish", after, want)
	back, err = s.Run(ctx, r.ID)
	must(t, err)
	equal(t, "stored after finish", back, want)

	_, _, err = s.UpdateRun(ctx, "run-404", store.RunUpdate{State: ptr(store.RunRunning)}, nil)
	wantKind(t, "update missing", err, errs.ErrNotFound, `"run-404"`)
}

func testRunLogs(t *testing.T, s store.Store) {
	for _, id := range []string{"a", "b"} {
		_, err := s.CreateRun(ctx, newRun(id, "k", 0), nil)
		must(t, err)
	}
	var want []store.RunLog
	for i := range 5 {
		data := json.RawMessage(fmt.Sprintf(`{"step":%d,"loss":%g}`, i, 1/float64(i+1)))
		l, err := s.AppendRunLog(ctx, "a", at(i), data)
		must(t, err)
		if l.Seq != int64(i+1) || l.RunID != "a" {
			t.Errorf("append %d: got run %q seq %d, want a %d", i, l.RunID, l.Seq, i+1)
		}
		want = append(want, store.RunLog{RunID: "a", Seq: int64(i + 1), Time: at(i), Data: data})
	}
	lb, err := s.AppendRunLog(ctx, "b", at(0), json.RawMessage(`{"message":"hi"}`))
	must(t, err)
	if lb.Seq != 1 {
		t.Errorf("first log of b: seq %d, want 1", lb.Seq)
	}
	tests := []struct {
		name         string
		after        int64
		limit        int
		wantFrom, to int // want[wantFrom:to]
	}{
		{"all", 0, 0, 0, 5},
		{"after 2", 2, 0, 2, 5},
		{"page", 2, 2, 2, 4},
		{"limit past end", 3, 10, 3, 5},
		{"after last", 5, 0, 5, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.RunLogs(ctx, "a", tc.after, tc.limit)
			must(t, err)
			if tc.wantFrom == tc.to {
				if len(got) != 0 {
					t.Errorf("got %d lines, want none", len(got))
				}
				return
			}
			equal(t, "lines", got, want[tc.wantFrom:tc.to])
		})
	}
	_, err = s.AppendRunLog(ctx, "run-404", at(0), json.RawMessage(`{}`))
	wantKind(t, "append to missing run", err, errs.ErrNotFound, `"run-404"`)
	_, err = s.RunLogs(ctx, "run-404", 0, 0)
	wantKind(t, "logs of missing run", err, errs.ErrNotFound, `"run-404"`)
	for _, bad := range []string{``, `[1]`, `"x"`, `{"a":`} {
		_, err = s.AppendRunLog(ctx, "a", at(0), json.RawMessage(bad))
		wantKind(t, "log data "+bad, err, errs.ErrInvalid, `"a"`)
	}
	got, err := s.RunLogs(ctx, "a", 0, 0)
	must(t, err)
	if len(got) != 5 {
		t.Errorf("after bad appends: %d lines, want 5", len(got))
	}
}
