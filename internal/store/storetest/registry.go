package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

func modelVersion(name, id string, i int) store.ModelVersion {
	return store.ModelVersion{ID: hexID(id), Name: name, BaseID: hexID("base"), Adapter: "sha256:" + hexID("ad"+id),
		RunID: "run-" + id, Task: "classify", Labels: map[string]string{"team": "nlp", "i": fmt.Sprint(i)},
		Lineage: json.RawMessage(`{"recipe":"r@v1"}`), CreatedAt: at(i)}
}

func report(mv, digest string, v store.Verdict, i int) store.EvalReport {
	r := store.EvalReport{ModelVersionID: mv, Digest: "sha256:" + hexID(digest), DatasetID: hexID("eval"), Split: "test",
		Verdict: v, CreatedAt: at(i)}
	if v == store.VerdictFail {
		r.Failed = []string{"accuracy 0.71 < 0.80"}
	}
	return r
}

func testModelVersions(t *testing.T, s store.Store) {
	var stored []store.ModelVersion
	for i, id := range []string{"a", "b", "c"} {
		prev := lastSeq(t, s)
		sent := []store.Event{ev("model.version.registered", id)}
		v := modelVersion("sentiment", id, i)
		if i == 2 {
			v.Adapter, v.RunID, v.Labels, v.Lineage = "", "", map[string]string{}, nil // the base alone
		}
		got, evs, err := s.PutModelVersion(ctx, v, sent)
		must(t, err)
		checkEvents(t, s, prev, sent, evs)
		if got.Version != i+1 {
			t.Errorf("put %s: version %d, want %d", id, got.Version, i+1)
		}
		stored = append(stored, got)
	}
	if stored[2].Labels != nil {
		t.Errorf("empty labels stored as %v, want nil", stored[2].Labels)
	}
	_, _, err := s.PutModelVersion(ctx, modelVersion("sentiment", "b", 7), nil)
	wantKind(t, "duplicate", err, errs.ErrConflict, `"sentiment"`, hexID("b"))
	d, _, err := s.PutModelVersion(ctx, modelVersion("sentiment", "d", 3), nil)
	must(t, err)
	if d.Version != 4 {
		t.Errorf("after duplicate: version %d, want 4", d.Version)
	}
	stored = append(stored, d)
	shared, _, err := s.PutModelVersion(ctx, modelVersion("spam", "a", 4), nil)
	must(t, err)
	if shared.Version != 1 {
		t.Errorf("other name: version %d, want 1", shared.Version)
	}

	tests := []struct {
		ref  string
		want store.ModelVersion
	}{
		{"", d}, {"latest", d}, {"v2", stored[1]}, {"2", stored[1]}, {"v3", stored[2]}, {hexID("a"), stored[0]},
	}
	for _, tc := range tests {
		t.Run("ref "+tc.ref, func(t *testing.T) {
			got, err := s.ModelVersion(ctx, "sentiment", tc.ref)
			must(t, err)
			equal(t, "model version", got, tc.want)
		})
	}
	for _, ref := range []string{"v9", "nope"} {
		_, err := s.ModelVersion(ctx, "sentiment", ref)
		wantKind(t, "ref "+ref, err, errs.ErrNotFound, `"sentiment"`, ref)
	}
	_, err = s.ModelVersion(ctx, "sentiment", "0")
	wantKind(t, "ref 0", err, errs.ErrInvalid, `"sentiment"`, `"0"`)
	_, err = s.ModelVersion(ctx, "missing", "")
	wantKind(t, "unknown name", err, errs.ErrNotFound, `"missing"`)

	byID, err := s.ModelVersionByID(ctx, hexID("a"))
	must(t, err)
	equal(t, "by shared id (oldest row)", byID, stored[0])
	_, err = s.ModelVersionByID(ctx, "nope")
	wantKind(t, "by unknown id", err, errs.ErrNotFound, `"nope"`)

	list, err := s.ModelVersions(ctx, "sentiment")
	must(t, err)
	equal(t, "list sentiment", list, stored)
	list, err = s.ModelVersions(ctx, "")
	must(t, err)
	equal(t, "list all", list, append(append([]store.ModelVersion{}, stored...), shared))
	list, err = s.ModelVersions(ctx, "missing")
	must(t, err)
	if len(list) != 0 {
		t.Errorf("list missing = %v, want empty", list)
	}
}

func testEvalReports(t *testing.T, s store.Store) {
	mv, _, err := s.PutModelVersion(ctx, modelVersion("sentiment", "a", 0), nil)
	must(t, err)
	var stored []store.EvalReport
	for i, v := range []store.Verdict{store.VerdictFail, store.VerdictPass} {
		prev := lastSeq(t, s)
		sent := []store.Event{ev("model.report.attached", mv.ID)}
		r, evs, err := s.PutEvalReport(ctx, report(mv.ID, fmt.Sprint(i), v, i), sent)
		must(t, err)
		checkEvents(t, s, prev, sent, evs)
		stored = append(stored, r)
	}
	got, err := s.EvalReports(ctx, mv.ID)
	must(t, err)
	equal(t, "reports", got, stored)
	none, err := s.EvalReports(ctx, "nope")
	must(t, err)
	if len(none) != 0 {
		t.Errorf("reports of unknown version = %v", none)
	}

	tests := []struct {
		name string
		r    store.EvalReport
		kind error
		says []string
	}{
		{"duplicate digest", report(mv.ID, "0", store.VerdictPass, 5), errs.ErrConflict, []string{mv.ID, hexID("0")}},
		{"unknown version", report("nope", "9", store.VerdictPass, 5), errs.ErrNotFound, []string{`"nope"`}},
		{"bad verdict", report(mv.ID, "8", "maybe", 5), errs.ErrInvalid, []string{"maybe"}},
		{"no digest", store.EvalReport{ModelVersionID: mv.ID, Verdict: store.VerdictPass}, errs.ErrInvalid, []string{"digest"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.PutEvalReport(ctx, tc.r, nil)
			wantKind(t, tc.name, err, tc.kind, tc.says...)
		})
	}
	got, err = s.EvalReports(ctx, mv.ID)
	must(t, err)
	equal(t, "reports after refused puts", got, stored)
	back, err := s.ModelVersion(ctx, "sentiment", mv.ID)
	must(t, err)
	equal(t, "model version unchanged by reports", back, mv)
}

func move(alias, from, to string, i int) store.AliasMove {
	return store.AliasMove{Kind: "model", Name: "sentiment", Alias: alias, From: from, To: to, Action: "promote",
		Reason: fmt.Sprintf("move %d", i), Actor: "ana", Time: at(i)}
}

func testAliasMoves(t *testing.T, s store.Store) {
	var history []store.AliasMove
	steps := []store.AliasMove{
		move("champion", "", "mv-1", 0),
		move("challenger", "", "mv-2", 1),
		move("champion", "mv-1", "mv-2", 2),
		move("champion", "mv-2", "mv-3", 3),
	}
	steps[3].Override, steps[3].OverrideReason, steps[3].ApprovalID = true, "hotfix", "ap-1"
	for i, m := range steps {
		prev := lastSeq(t, s)
		sent := []store.Event{ev("model.alias.moved", m.Alias)}
		got, evs, err := s.MoveAlias(ctx, m, sent)
		must(t, err)
		checkEvents(t, s, prev, sent, evs)
		if i > 0 && got.Seq <= history[i-1].Seq {
			t.Errorf("move %d seq %d, want > %d", i, got.Seq, history[i-1].Seq)
		}
		m.Seq = got.Seq
		equal(t, fmt.Sprintf("move %d", i), got, m)
		history = append(history, got)
	}
	a, err := s.Alias(ctx, "model", "sentiment", "champion")
	must(t, err)
	equal(t, "champion", a, store.Alias{Kind: "model", Name: "sentiment", Alias: "champion", Target: "mv-3", UpdatedAt: at(3)})

	got, err := s.AliasHistory(ctx, "model", "sentiment", "champion")
	must(t, err)
	equal(t, "champion history", got, []store.AliasMove{history[0], history[2], history[3]})
	got, err = s.AliasHistory(ctx, "model", "sentiment", "")
	must(t, err)
	equal(t, "all history", got, history)
	got, err = s.AliasHistory(ctx, "base", "sentiment", "champion")
	must(t, err)
	if len(got) != 0 {
		t.Errorf("history of other kind = %v", got)
	}

	// Compare-and-set failures change nothing and append nothing.
	before := lastSeq(t, s)
	tests := []struct {
		name string
		m    store.AliasMove
		kind error
		says []string
	}{
		{"stale from", move("champion", "mv-2", "mv-4", 9), errs.ErrConflict, []string{`"mv-3"`, `"mv-2"`}},
		{"create existing", move("champion", "", "mv-4", 9), errs.ErrConflict, []string{`"mv-3"`}},
		{"from on missing alias", move("canary", "mv-1", "mv-4", 9), errs.ErrConflict, []string{`"canary"`, `"mv-1"`}},
		{"same target", move("champion", "mv-3", "mv-3", 9), errs.ErrConflict, []string{"already points at", `"mv-3"`}},
		{"no target", move("champion", "mv-3", "", 9), errs.ErrInvalid, []string{"to"}},
		{"no actor", store.AliasMove{Kind: "model", Name: "sentiment", Alias: "champion", From: "mv-3", To: "mv-4"}, errs.ErrInvalid, []string{"actor"}},
		{"override without reason", store.AliasMove{Kind: "model", Name: "sentiment", Alias: "champion", From: "mv-3", To: "mv-4",
			Actor: "ana", Override: true}, errs.ErrInvalid, []string{"override_reason"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, evs, err := s.MoveAlias(ctx, tc.m, []store.Event{ev("model.alias.moved", "x")})
			wantKind(t, tc.name, err, tc.kind, tc.says...)
			if evs != nil {
				t.Errorf("refused move returned events %v", evs)
			}
		})
	}
	if seq := lastSeq(t, s); seq != before {
		t.Errorf("refused moves appended events: last seq %d, want %d", seq, before)
	}
	got, err = s.AliasHistory(ctx, "model", "sentiment", "")
	must(t, err)
	equal(t, "history after refused moves", got, history)

	// A bad event rolls the move back.
	_, _, err = s.MoveAlias(ctx, move("champion", "mv-3", "mv-4", 9), []store.Event{{Subject: "no type"}})
	wantKind(t, "move with bad event", err, errs.ErrInvalid)
	a, err = s.Alias(ctx, "model", "sentiment", "champion")
	must(t, err)
	if a.Target != "mv-3" {
		t.Errorf("after rolled-back move: champion → %q, want mv-3", a.Target)
	}
	got, err = s.AliasHistory(ctx, "model", "sentiment", "champion")
	must(t, err)
	if len(got) != 3 {
		t.Errorf("after rolled-back move: %d history rows, want 3", len(got))
	}
}

// testAliasMoveRace has several writers move the same alias from the same
// target at once: exactly one compare-and-set wins.
func testAliasMoveRace(t *testing.T, s store.Store) {
	_, _, err := s.MoveAlias(ctx, move("champion", "", "mv-0", 0), nil)
	must(t, err)
	const writers = 6
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := s.MoveAlias(ctx, move("champion", "mv-0", fmt.Sprintf("mv-%d", w+1), w+1), nil)
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	won := 0
	for err := range errc {
		switch {
		case err == nil:
			won++
		case errs.Kind(err) != "conflict":
			t.Errorf("losing move: %v, want a conflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d moves won, want exactly 1", won)
	}
	h, err := s.AliasHistory(ctx, "model", "sentiment", "champion")
	must(t, err)
	if len(h) != 2 {
		t.Errorf("%d history rows, want 2", len(h))
	}
}
