package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

func prediction(req, model, variant string, i int, text string) store.Prediction {
	return store.Prediction{RequestID: req, Time: at(i), Model: model, VersionID: hexID(model), Variant: variant,
		Label: "spam", Probs: map[string]float64{"ham": 0.25, "spam": 0.75}, Text: text, Features: json.RawMessage(`{"bytes":9}`)}
}

// testPredictions: ordered by seq, filtered by model, shadows apart,
// duplicates of (request, variant) skipped.
func testPredictions(t *testing.T, s store.Store) {
	must(t, s.PutPredictions(ctx, []store.Prediction{
		prediction("r1", "spam", "primary", 0, "win money"),
		prediction("r1", "spam", "shadow", 0, "win money"),
		prediction("r2", "other", "primary", 1, ""),
		prediction("r3", "spam", "canary", 2, "lunch?"),
	}))
	must(t, s.PutPredictions(ctx, []store.Prediction{prediction("r1", "spam", "primary", 5, "again")}))
	all, err := s.Predictions(ctx, store.PredictionFilter{})
	must(t, err)
	if len(all) != 3 || all[0].RequestID != "r1" || all[1].RequestID != "r2" || all[2].RequestID != "r3" {
		t.Fatalf("predictions: %+v", all)
	}
	if all[0].Text != "win money" || all[0].Probs["spam"] != 0.75 || !all[0].Time.Equal(at(0)) || string(all[0].Features) != `{"bytes":9}` {
		t.Errorf("round trip: %+v", all[0])
	}
	spam, err := s.Predictions(ctx, store.PredictionFilter{Model: "spam", After: all[0].Seq})
	must(t, err)
	if len(spam) != 1 || spam[0].RequestID != "r3" {
		t.Errorf("spam after r1: %+v", spam)
	}
	withShadow, err := s.Predictions(ctx, store.PredictionFilter{Model: "spam", Shadow: true})
	must(t, err)
	if len(withShadow) != 3 {
		t.Errorf("with shadows: %d, want 3", len(withShadow))
	}
	p, err := s.Prediction(ctx, "r1")
	must(t, err)
	if p.Variant != "primary" {
		t.Errorf("prediction r1 variant %q, want the primary", p.Variant)
	}
	_, err = s.Prediction(ctx, "nope")
	wantKind(t, "unknown request", err, errs.ErrNotFound, `"nope"`)
	err = s.PutPredictions(ctx, []store.Prediction{{RequestID: "x", Model: "spam"}})
	wantKind(t, "no variant", err, errs.ErrInvalid, "variant")
}

// testFeedback: once per request, conflicting labels refused, pending and
// marked, stats.
func testFeedback(t *testing.T, s store.Store) {
	must(t, s.PutPredictions(ctx, []store.Prediction{
		prediction("a", "spam", "primary", 0, "text a"),
		prediction("b", "spam", "primary", 1, ""), // input not kept
		prediction("c", "spam", "primary", 2, "text c"),
	}))
	prev := lastSeq(t, s)
	f, created, evs, err := s.PutFeedback(ctx, store.Feedback{RequestID: "a", Label: "ham", Actor: "ana", Time: at(3)},
		[]store.Event{ev("feedback.received", "a")})
	must(t, err)
	if !created || f.Model != "spam" || len(evs) != 1 {
		t.Fatalf("first feedback: created=%v %+v events %d", created, f, len(evs))
	}
	checkEvents(t, s, prev, []store.Event{ev("feedback.received", "a")}, evs)
	tests := []struct {
		name string
		f    store.Feedback
		kind error
	}{
		{"different label", store.Feedback{RequestID: "a", Label: "spam"}, errs.ErrConflict},
		{"unknown request", store.Feedback{RequestID: "zz", Label: "ham"}, errs.ErrNotFound},
		{"label and completion", store.Feedback{RequestID: "c", Label: "ham", Completion: "x"}, errs.ErrInvalid},
		{"neither", store.Feedback{RequestID: "c"}, errs.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := lastSeq(t, s)
			_, _, _, err := s.PutFeedback(ctx, tc.f, []store.Event{ev("feedback.received", tc.f.RequestID)})
			wantKind(t, tc.name, err, tc.kind, fmt.Sprintf("%q", tc.f.RequestID))
			if lastSeq(t, s) != before {
				t.Errorf("refused feedback appended events")
			}
		})
	}
	again, created, evs, err := s.PutFeedback(ctx, store.Feedback{RequestID: "a", Label: "ham", Actor: "bob"}, []store.Event{ev("x", "a")})
	must(t, err)
	if created || len(evs) != 0 || again.Actor != "ana" {
		t.Errorf("repeated feedback: created=%v events=%d %+v, want the first row", created, len(evs), again)
	}
	for _, id := range []string{"b", "c"} {
		_, _, _, err := s.PutFeedback(ctx, store.Feedback{RequestID: id, Label: "spam", Time: at(4)}, nil)
		must(t, err)
	}
	st, err := s.FeedbackStats(ctx, "spam")
	must(t, err)
	if st != (store.FeedbackStats{Total: 3, Pending: 3, NoText: 1}) {
		t.Errorf("stats %+v", st)
	}
	pending, err := s.PendingFeedback(ctx, "spam", 0)
	must(t, err)
	if len(pending) != 2 || pending[0].Feedback.RequestID != "a" || pending[0].Prediction.Text != "text a" || pending[1].Feedback.RequestID != "c" {
		t.Fatalf("pending: %+v", pending)
	}
	_, err = s.MarkFeedback(ctx, []string{"a", "c"}, "ds-1", nil)
	must(t, err)
	_, err = s.MarkFeedback(ctx, []string{"a"}, "ds-2", nil)
	must(t, err)
	fs, err := s.Feedbacks(ctx, []string{"c", "a", "missing"})
	must(t, err)
	if len(fs) != 2 || fs[0].Dataset != "ds-1" || fs[1].Dataset != "ds-1" {
		t.Errorf("marked feedback: %+v (a marked twice must keep its first dataset)", fs)
	}
	st, err = s.FeedbackStats(ctx, "spam")
	must(t, err)
	if st.Pending != 1 || st.NoText != 1 {
		t.Errorf("stats after marking: %+v", st)
	}
}

func testSpecs(t *testing.T, s store.Store) {
	for i, id := range []string{"one", "two"} {
		v, _, err := s.PutSpec(ctx, store.SpecVersion{Kind: "monitor", Name: "spam", ID: hexID(id), Normalized: []byte(id), CreatedAt: at(i)}, nil)
		must(t, err)
		if v.Version != i+1 {
			t.Errorf("version %d, want %d", v.Version, i+1)
		}
	}
	_, _, err := s.PutSpec(ctx, store.SpecVersion{Kind: "trigger", Name: "spam", ID: hexID("one"), CreatedAt: at(3)}, nil)
	must(t, err) // other kind, same name and id
	_, _, err = s.PutSpec(ctx, store.SpecVersion{Kind: "monitor", Name: "spam", ID: hexID("one")}, nil)
	wantKind(t, "duplicate", err, errs.ErrConflict, `"spam"`)
	for ref, want := range map[string]string{"": "two", "latest": "two", "v1": "one", "2": "two", hexID("one"): "one"} {
		v, err := s.Spec(ctx, "monitor", "spam", ref)
		must(t, err)
		if string(v.Normalized) != want {
			t.Errorf("ref %q: %s, want %s", ref, v.Normalized, want)
		}
	}
	_, err = s.Spec(ctx, "monitor", "spam", "v9")
	wantKind(t, "missing", err, errs.ErrNotFound, `"spam"`)
	list, err := s.Specs(ctx, "monitor", "")
	must(t, err)
	if len(list) != 2 {
		t.Errorf("monitor specs: %d, want 2", len(list))
	}
}

// testMonitorState: the cursor is a compare-and-set, windows get the next
// indexes, events come in the same transaction.
func testMonitorState(t *testing.T, s store.Store) {
	_, err := s.MonitorState(ctx, "spam")
	wantKind(t, "no state", err, errs.ErrNotFound, `"spam"`)
	st := store.MonitorState{Name: "spam", SpecID: hexID("m"), VersionID: hexID("v1"), Profile: "sha256:" + hexID("p"), Cursor: 10,
		State: json.RawMessage(`{"n":1}`), UpdatedAt: at(1)}
	win := func(first, last int64, drifted bool) store.MonitorWindow {
		return store.MonitorWindow{VersionID: st.VersionID, FirstSeq: first, LastSeq: last, Count: int(last - first + 1), Drifted: drifted,
			Result: json.RawMessage(`{"drifted":` + fmt.Sprint(drifted) + `}`), Time: at(int(last))}
	}
	_, err = s.SaveMonitorState(ctx, st, -1, []store.MonitorWindow{win(1, 5, false), win(6, 10, true)}, nil)
	must(t, err)
	got, err := s.MonitorState(ctx, "spam")
	must(t, err)
	equal(t, "state", got, st)
	prev := lastSeq(t, s)
	st.Cursor = 20
	_, err = s.SaveMonitorState(ctx, st, 5, []store.MonitorWindow{win(11, 20, true)}, []store.Event{ev("monitor.drift.detected", "spam")})
	var stale error = err
	wantKind(t, "stale cursor", stale, errs.ErrConflict, `"spam"`)
	if lastSeq(t, s) != prev {
		t.Errorf("refused save appended events")
	}
	evs, err := s.SaveMonitorState(ctx, st, 10, []store.MonitorWindow{win(11, 20, true)}, []store.Event{ev("monitor.drift.detected", "spam")})
	must(t, err)
	checkEvents(t, s, prev, []store.Event{ev("monitor.drift.detected", "spam")}, evs)
	ws, err := s.MonitorWindows(ctx, "spam", -1, 0)
	must(t, err)
	if len(ws) != 3 || ws[0].Index != 0 || ws[2].Index != 2 || ws[2].FirstSeq != 11 || !ws[2].Drifted || ws[0].Drifted {
		t.Fatalf("windows: %+v", ws)
	}
	later, err := s.MonitorWindows(ctx, "spam", 0, 1)
	must(t, err)
	if len(later) != 1 || later[0].Index != 1 {
		t.Errorf("windows after 0, limit 1: %+v", later)
	}
	_, err = s.SaveMonitorState(ctx, st, 20, []store.MonitorWindow{{Result: json.RawMessage(`{`)}}, nil)
	if !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("bad window JSON: %v", err)
	}
}
