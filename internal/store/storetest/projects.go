package storetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// Project isolation: every noun is written under the same names (and the
// same content ids) in two projects, and each project sees only its own
// rows: lists, lookups by name, by id and through aliases, the events.
// Writes in one project do not move the other's version numbers,
// compare-and-sets or cursors. A context that reads every project
// (store.AllProjects) reads every project's events and writes nothing.

// projectWorld is the two projects the isolation cases write into.
type projectWorld struct {
	s         store.Store
	blue, red context.Context
}

func newProjectWorld(t *testing.T, s store.Store) projectWorld {
	t.Helper()
	for i, name := range []string{"blue", "red"} {
		_, err := s.PutProject(ctx, store.Project{Name: name, CreatedBy: "root", CreatedAt: at(i)}, nil, nil)
		must(t, err)
	}
	return projectWorld{s: s, blue: store.WithProject(ctx, "blue"), red: store.WithProject(ctx, "red")}
}

// both runs fn in blue, then in red, with the project's index (0, 1).
func (w projectWorld) both(t *testing.T, fn func(ctx context.Context, i int) error) {
	t.Helper()
	for i, c := range []context.Context{w.blue, w.red} {
		if err := fn(c, i); err != nil {
			t.Fatalf("%s: %v", store.ProjectFrom(c), err)
		}
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if errs.Kind(err) != "not_found" {
		t.Errorf("%s: error %v, want not found", what, err)
	}
}

func testProjectIsolation(t *testing.T, s store.Store) {
	w := newProjectWorld(t, s)
	cases := []struct {
		name string
		fn   func(t *testing.T, w projectWorld)
	}{
		{"Datasets", isolatedDatasets},
		{"Bases", isolatedBases},
		{"Recipes", isolatedRecipes},
		{"Runs", isolatedRuns},
		{"Models", isolatedModels},
		{"Approvals", isolatedApprovals},
		{"PredictionsFeedback", isolatedFeedback},
		{"SpecsMonitors", isolatedMonitors},
		{"Firings", isolatedFirings},
		{"Copies", isolatedCopies},
		{"Events", isolatedEvents},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, w) })
	}
}

func isolatedDatasets(t *testing.T, w projectWorld) {
	s := w.s
	// The same name and content id in both projects; records tell them apart.
	w.both(t, func(c context.Context, i int) error {
		v := dataset("mail", "mail-1", i)
		_, err := s.PutDatasetVersion(c, v, []store.Event{ev("dataset.version.created", v.ID)})
		return err
	})
	only := dataset("blue-only", "bo", 5)
	_, err := s.PutDatasetVersion(w.blue, only, nil)
	must(t, err)
	// Red's next version of "mail" chains to red's own latest, not blue's.
	next := dataset("mail", "mail-2", 7)
	next.Parent = hexID("mail-1")
	_, err = s.PutDatasetVersion(w.red, next, nil)
	must(t, err)

	blue, err := s.DatasetVersions(w.blue, "")
	must(t, err)
	equal(t, "blue's datasets", blue, []store.DatasetVersion{dataset("mail", "mail-1", 0), only})
	red, err := s.DatasetVersions(w.red, "mail")
	must(t, err)
	equal(t, "red's mail", red, []store.DatasetVersion{dataset("mail", "mail-1", 1), next})
	got, err := s.DatasetVersion(w.blue, "mail", "latest")
	must(t, err)
	equal(t, "blue's latest mail", got, dataset("mail", "mail-1", 0))
	got, err = s.DatasetVersion(w.red, "mail", hexID("mail-1"))
	must(t, err)
	equal(t, "red's mail by id", got, dataset("mail", "mail-1", 1))
	_, err = s.DatasetVersion(w.red, "blue-only", "")
	wantNotFound(t, "blue's dataset by name from red", err)
	_, err = s.DatasetVersion(w.red, "mail", hexID("mail-2")[:12])
	must(t, err)
	_, err = s.DatasetVersion(w.blue, "mail", hexID("mail-2"))
	wantNotFound(t, "red's version id from blue", err)
}

func isolatedBases(t *testing.T, w projectWorld) {
	s := w.s
	w.both(t, func(c context.Context, i int) error {
		for j, id := range []string{"tiny-a", "tiny-b"} {
			if _, _, err := s.PutBaseVersion(c, base("tiny", id, 10*i+j), nil); err != nil {
				return err
			}
		}
		return nil
	})
	// A third version in blue only: red's numbering does not move.
	v3, _, err := s.PutBaseVersion(w.blue, base("tiny", "tiny-c", 3), nil)
	must(t, err)
	if v3.Version != 3 {
		t.Errorf("blue's third tiny is v%d, want v3", v3.Version)
	}
	w.both(t, func(c context.Context, i int) error {
		target := []string{hexID("tiny-a"), hexID("tiny-b")}[i]
		_, err := s.SetAlias(c, store.Alias{Kind: "base", Name: "tiny", Alias: "prod", Target: target, UpdatedAt: at(i)}, nil)
		return err
	})
	for i, c := range []context.Context{w.blue, w.red} {
		p := store.ProjectFrom(c)
		vs, err := s.BaseVersions(c, "tiny")
		must(t, err)
		if want := []int{3, 2}[i]; len(vs) != want || vs[0].Params != int64(135e6+10*i) {
			t.Errorf("%s's bases: %+v, want %d of its own", p, vs, want)
		}
		prod, err := s.BaseVersion(c, "tiny", "prod")
		must(t, err)
		if want := []string{hexID("tiny-a"), hexID("tiny-b")}[i]; prod.ID != want {
			t.Errorf("%s's tiny@prod = %s, want %s", p, prod.ID, want)
		}
		as, err := s.Aliases(c, "base", "")
		must(t, err)
		if len(as) != 1 || as[0].Target != prod.ID {
			t.Errorf("%s's base aliases: %+v", p, as)
		}
	}
	_, err = s.BaseVersion(w.red, "tiny", "v3")
	wantNotFound(t, "blue's v3 from red", err)
	_, err = s.BaseVersion(w.red, "tiny", hexID("tiny-c"))
	wantNotFound(t, "blue's id from red", err)
	_, err = s.Alias(ctx, "base", "tiny", "prod")
	wantNotFound(t, "the default project's alias", err)
}

func isolatedRecipes(t *testing.T, w projectWorld) {
	s := w.s
	w.both(t, func(c context.Context, i int) error {
		_, _, err := s.PutRecipeVersion(c, recipe("spam", "spam-1", i), nil)
		return err
	})
	rv, _, err := s.PutRecipeVersion(w.red, recipe("spam", "spam-2", 4), nil)
	must(t, err)
	if rv.Version != 2 {
		t.Errorf("red's second spam is v%d, want v2", rv.Version)
	}
	got, err := s.RecipeVersionByID(w.blue, hexID("spam-1"))
	must(t, err)
	if got.CreatedAt != at(0) {
		t.Errorf("blue's recipe by id is %+v, not blue's", got)
	}
	_, err = s.RecipeVersionByID(w.blue, hexID("spam-2"))
	wantNotFound(t, "red's recipe id from blue", err)
	_, err = s.RecipeVersion(w.blue, "spam", "v2")
	wantNotFound(t, "red's v2 from blue", err)
	all, err := s.RecipeVersions(w.blue, "")
	must(t, err)
	if len(all) != 1 {
		t.Errorf("blue's recipes: %+v, want its one", all)
	}
}

func isolatedRuns(t *testing.T, w projectWorld) {
	s := w.s
	// One run key in both projects: each project gets its own run.
	w.both(t, func(c context.Context, i int) error {
		r := newRun([]string{"run-blue", "run-red"}[i], "same-key", i)
		_, created, _, err := s.CreateRunOnce(c, r, []store.Event{ev("run.state.changed", r.ID)})
		if err == nil && !created {
			t.Errorf("%s: the other project's run with the same key was reused", store.ProjectFrom(c))
		}
		return err
	})
	for i, c := range []context.Context{w.blue, w.red} {
		own, other := []string{"run-blue", "run-red"}[i], []string{"run-red", "run-blue"}[i]
		rs, err := s.Runs(c, store.RunFilter{Key: "same-key"})
		must(t, err)
		if len(rs) != 1 || rs[0].ID != own {
			t.Errorf("%s's runs: %+v, want only %s", store.ProjectFrom(c), rs, own)
		}
		_, err = s.Run(c, other)
		wantNotFound(t, "the other project's run", err)
		running := store.RunRunning
		_, _, err = s.UpdateRun(c, other, store.RunUpdate{State: &running}, nil)
		wantNotFound(t, "update of the other project's run", err)
		_, err = s.AppendRunLog(c, other, at(1), json.RawMessage(`{"step":1}`))
		wantNotFound(t, "log line on the other project's run", err)
		_, err = s.RunLogs(c, other, 0, 0)
		wantNotFound(t, "logs of the other project's run", err)
	}
	r, err := s.Run(w.red, "run-red")
	must(t, err)
	if r.State != store.RunQueued {
		t.Errorf("red's run moved to %s from blue", r.State)
	}
	if rs, _ := s.Runs(ctx, store.RunFilter{}); len(rs) != 0 {
		t.Errorf("the default project sees runs %+v", rs)
	}
}

func isolatedModels(t *testing.T, w projectWorld) {
	s := w.s
	mv := func(i int) store.ModelVersion {
		return store.ModelVersion{ID: hexID("mv"), Name: "spam", Version: 1, BaseID: hexID("b"), Adapter: "sha256:" + hexID("ad"), Task: "classify",
			Region: []string{"eu", "us"}[i], CreatedAt: at(i)}
	}
	w.both(t, func(c context.Context, i int) error {
		v, _, err := s.PutModelVersion(c, mv(i), nil)
		if err == nil && v.Version != 1 {
			t.Errorf("%s's first spam is v%d", store.ProjectFrom(c), v.Version)
		}
		return err
	})
	// The same content id: a report and an alias move in blue only.
	_, _, err := s.PutEvalReport(w.blue, store.EvalReport{ModelVersionID: hexID("mv"), Digest: "sha256:" + hexID("rep"), DatasetID: hexID("d"),
		Split: "test", Verdict: store.VerdictPass, CreatedAt: at(2)}, nil)
	must(t, err)
	_, _, err = s.MoveAlias(w.blue, store.AliasMove{Kind: "model", Name: "spam", Alias: "champion", To: hexID("mv"), Reason: "first",
		Actor: "ana", Time: at(3)}, nil)
	must(t, err)
	only, _, err := s.PutModelVersion(w.blue, store.ModelVersion{ID: hexID("mv2"), Name: "spam", BaseID: hexID("b"), Task: "classify", CreatedAt: at(4)}, nil)
	must(t, err)

	reps, err := s.EvalReports(w.red, hexID("mv"))
	must(t, err)
	if len(reps) != 0 {
		t.Errorf("red sees blue's reports: %+v", reps)
	}
	if reps, _ := s.EvalReports(w.blue, hexID("mv")); len(reps) != 1 {
		t.Errorf("blue's reports: %+v, want 1", reps)
	}
	_, _, err = s.PutEvalReport(w.red, store.EvalReport{ModelVersionID: hexID("mv2"), Digest: "sha256:" + hexID("rep"), Verdict: store.VerdictPass}, nil)
	wantNotFound(t, "a report on blue's version from red", err)
	got, err := s.ModelVersionByID(w.red, hexID("mv"))
	must(t, err)
	equal(t, "red's version by id", got, mv(1))
	_, err = s.ModelVersionByID(w.red, only.ID)
	wantNotFound(t, "blue's version id from red", err)
	_, err = s.ModelVersion(w.red, "spam", "champion")
	wantNotFound(t, "blue's alias from red", err)
	champ, err := s.ModelVersion(w.blue, "spam", "champion")
	must(t, err)
	equal(t, "blue's champion", champ, mv(0))
	if h, _ := s.AliasHistory(w.red, "model", "spam", ""); len(h) != 0 {
		t.Errorf("red sees blue's alias moves: %+v", h)
	}
	// Red's first move of the same alias starts from nothing.
	_, _, err = s.MoveAlias(w.red, store.AliasMove{Kind: "model", Name: "spam", Alias: "champion", To: hexID("mv"), Reason: "first",
		Actor: "bo", Time: at(5)}, nil)
	must(t, err)
	if vs, _ := s.ModelVersions(w.red, ""); len(vs) != 1 {
		t.Errorf("red's models: %+v, want its one", vs)
	}
}

func isolatedApprovals(t *testing.T, w projectWorld) {
	s := w.s
	_, _, err := s.PutApproval(w.blue, approval("ap-blue", "spam", hexID("mv"), 0), nil)
	must(t, err)
	_, _, err = s.PutApproval(w.red, approval("ap-red", "spam", hexID("mv"), 1), nil)
	must(t, err)
	_, err = s.Approval(w.red, "ap-blue")
	wantNotFound(t, "blue's approval from red", err)
	_, _, err = s.UpdateApproval(w.red, store.ApprovalUpdate{ID: "ap-blue", IfState: store.ApprovalPending, State: store.ApprovalApproved,
		DecidedBy: "bo"}, nil)
	wantNotFound(t, "deciding blue's approval from red", err)
	as, err := s.Approvals(w.blue, "spam", "")
	must(t, err)
	if len(as) != 1 || as[0].ID != "ap-blue" || as[0].State != store.ApprovalPending {
		t.Errorf("blue's approvals: %+v", as)
	}
}

func isolatedFeedback(t *testing.T, w projectWorld) {
	s := w.s
	// The same request id in both projects.
	w.both(t, func(c context.Context, i int) error {
		return s.PutPredictions(c, []store.Prediction{prediction("req-1", "spam", "primary", i, []string{"blue text", "red text"}[i])})
	})
	must(t, s.PutPredictions(w.blue, []store.Prediction{prediction("req-2", "spam", "primary", 2, "blue only")}))
	_, _, _, err := s.PutFeedback(w.blue, store.Feedback{RequestID: "req-1", Label: "ham", Actor: "ana", Time: at(3)}, nil)
	must(t, err)
	// Red labels its req-1 differently: no conflict with blue's.
	_, created, _, err := s.PutFeedback(w.red, store.Feedback{RequestID: "req-1", Label: "spam", Actor: "bo", Time: at(4)}, nil)
	must(t, err)
	if !created {
		t.Errorf("red's feedback was taken for blue's")
	}
	_, _, _, err = s.PutFeedback(w.red, store.Feedback{RequestID: "req-2", Label: "ham", Actor: "bo"}, nil)
	wantNotFound(t, "feedback from red on blue's request", err)
	_, err = s.Prediction(w.red, "req-2")
	wantNotFound(t, "blue's prediction from red", err)
	for i, c := range []context.Context{w.blue, w.red} {
		p := store.ProjectFrom(c)
		ps, err := s.Predictions(c, store.PredictionFilter{Model: "spam"})
		must(t, err)
		if want := []int{2, 1}[i]; len(ps) != want || ps[0].Text != []string{"blue text", "red text"}[i] {
			t.Errorf("%s's predictions: %+v", p, ps)
		}
		pending, err := s.PendingFeedback(c, "spam", 0)
		must(t, err)
		if len(pending) != 1 || pending[0].Feedback.Label != []string{"ham", "spam"}[i] || pending[0].Prediction.Text != ps[0].Text {
			t.Errorf("%s's pending feedback: %+v", p, pending)
		}
		st, err := s.FeedbackStats(c, "spam")
		must(t, err)
		equal(t, p+"'s feedback stats", st, store.FeedbackStats{Total: 1, Pending: 1})
	}
	_, err = s.MarkFeedback(w.blue, []string{"req-1"}, hexID("acc"), nil)
	must(t, err)
	fs, err := s.Feedbacks(w.red, []string{"req-1"})
	must(t, err)
	if len(fs) != 1 || fs[0].Dataset != "" || fs[0].Label != "spam" {
		t.Errorf("blue's mark reached red's feedback: %+v", fs)
	}
}

func isolatedMonitors(t *testing.T, w projectWorld) {
	s := w.s
	w.both(t, func(c context.Context, i int) error {
		_, _, err := s.PutSpec(c, store.SpecVersion{Kind: "monitor", ID: hexID("mon"), Name: "spam", Normalized: []byte("window: 10\n"), CreatedAt: at(i)}, nil)
		return err
	})
	_, _, err := s.PutSpec(w.blue, store.SpecVersion{Kind: "monitor", ID: hexID("mon2"), Name: "spam", Normalized: []byte("window: 20\n"), CreatedAt: at(2)}, nil)
	must(t, err)
	red, err := s.Spec(w.red, "monitor", "spam", "latest")
	must(t, err)
	if red.ID != hexID("mon") || red.Version != 1 {
		t.Errorf("red's latest monitor: %+v", red)
	}
	if vs, _ := s.Specs(w.red, "monitor", ""); len(vs) != 1 {
		t.Errorf("red's monitors: %+v, want its one", vs)
	}
	_, err = s.Spec(w.red, "monitor", "spam", hexID("mon2"))
	wantNotFound(t, "blue's monitor version from red", err)

	st := store.MonitorState{Name: "spam", SpecID: hexID("mon"), VersionID: hexID("mv"), Cursor: 7, UpdatedAt: at(3)}
	win := store.MonitorWindow{VersionID: hexID("mv"), FirstSeq: 1, LastSeq: 7, Count: 7, Result: json.RawMessage(`{}`), Time: at(3)}
	_, err = s.SaveMonitorState(w.blue, st, -1, []store.MonitorWindow{win}, nil)
	must(t, err)
	_, err = s.MonitorState(w.red, "spam")
	wantNotFound(t, "blue's monitor state from red", err)
	// Red's first save compares with "no state yet", not with blue's cursor.
	st.Cursor = 3
	_, err = s.SaveMonitorState(w.red, st, -1, nil, nil)
	must(t, err)
	if ws, _ := s.MonitorWindows(w.red, "spam", -1, 0); len(ws) != 0 {
		t.Errorf("red sees blue's windows: %+v", ws)
	}
	ws, err := s.MonitorWindows(w.blue, "spam", -1, 0)
	must(t, err)
	if len(ws) != 1 || ws[0].Index != 0 {
		t.Errorf("blue's windows: %+v", ws)
	}
	got, err := s.MonitorState(w.blue, "spam")
	must(t, err)
	if got.Cursor != 7 {
		t.Errorf("blue's cursor %d after red's save, want 7", got.Cursor)
	}
}

func isolatedFirings(t *testing.T, w projectWorld) {
	s := w.s
	// One trigger name and event seq in both projects: two claims.
	w.both(t, func(c context.Context, i int) error {
		_, created, _, err := s.ClaimFiring(c, firing("retrain", 42, i), nil)
		if err == nil && !created {
			t.Errorf("%s's claim returned the other project's firing", store.ProjectFrom(c))
		}
		return err
	})
	f := firing("retrain", 42, 0)
	f.State, f.Step = store.FiringRunning, 1
	_, _, err := s.UpdateFiring(w.blue, f, store.FiringPending, 0, nil)
	must(t, err)
	got, err := s.Firing(w.red, "retrain", 42)
	must(t, err)
	if got.State != store.FiringPending || got.Step != 0 {
		t.Errorf("blue's update reached red's firing: %+v", got)
	}
	_, _, _, err = s.ClaimFiring(w.blue, firing("blue-only", 43, 1), nil)
	must(t, err)
	_, err = s.Firing(w.red, "blue-only", 43)
	wantNotFound(t, "blue's firing from red", err)
	_, _, err = s.UpdateFiring(w.red, firing("blue-only", 43, 1), store.FiringPending, 0, nil)
	wantNotFound(t, "updating blue's firing from red", err)
	fs, err := s.Firings(w.red, store.FiringFilter{})
	must(t, err)
	if len(fs) != 1 || fs[0].Trigger != "retrain" {
		t.Errorf("red's firings: %+v", fs)
	}
}

func isolatedCopies(t *testing.T, w projectWorld) {
	s := w.s
	v := dataset("mail-us", "mail-1", 0)
	v.Region = "us"
	_, err := s.PutDatasetCopy(w.blue, v, copyOf(store.CopyDataset, "mail-us", v.ID, "us", "mail", "eu", 0), nil)
	must(t, err)
	_, err = s.CopySource(w.red, store.CopyDataset, "mail-us", v.ID)
	wantNotFound(t, "blue's copy record from red", err)
	if cs, _ := s.CopiesOf(w.red, store.CopyDataset, "mail", v.ID); len(cs) != 0 {
		t.Errorf("red sees blue's copies: %+v", cs)
	}
	c, err := s.CopySource(w.blue, store.CopyDataset, "mail-us", v.ID)
	must(t, err)
	if c.SourceName != "mail" {
		t.Errorf("blue's copy record: %+v", c)
	}
	// Red may make the same copy under the same name.
	_, err = s.PutDatasetCopy(w.red, v, copyOf(store.CopyDataset, "mail-us", v.ID, "us", "mail", "eu", 1), nil)
	must(t, err)
}

func isolatedEvents(t *testing.T, w projectWorld) {
	s := w.s
	head := lastSeqAll(t, s)
	w.both(t, func(c context.Context, i int) error {
		_, err := s.AppendEvents(c, []store.Event{ev("note.added", "same-subject"), {Type: "note.added", Subject: store.ProjectFrom(c), Project: "forged"}})
		return err
	})
	for _, c := range []context.Context{w.blue, w.red} {
		p := store.ProjectFrom(c)
		evs, err := s.Events(c, head, 0)
		must(t, err)
		if len(evs) != 2 || evs[1].Subject != p {
			t.Fatalf("%s's events after %d: %+v, want its own two", p, head, evs)
		}
		for _, e := range evs {
			if e.Project != p {
				t.Errorf("%s's event %d says project %q", p, e.Seq, e.Project)
			}
		}
	}
	if evs, _ := s.Events(ctx, head, 0); len(evs) != 0 {
		t.Errorf("the default project sees %+v", evs)
	}
	all, err := s.Events(store.WithAllProjects(ctx), head, 0)
	must(t, err)
	var got []string
	for _, e := range all {
		got = append(got, e.Project+"/"+e.Subject)
	}
	equal(t, "every project's events, in seq order", got, []string{"blue/same-subject", "blue/blue", "red/same-subject", "red/red"})

	// A context reading every project writes nothing.
	everyone := store.WithAllProjects(ctx)
	_, err = s.AppendEvents(everyone, []store.Event{ev("note.added", "x")})
	wantKind(t, "append under AllProjects", err, errs.ErrInvalid, store.AllProjects)
	_, err = s.PutDatasetVersion(everyone, dataset("x", "x", 0), nil)
	wantKind(t, "put under AllProjects", err, errs.ErrInvalid)
	if n := lastSeqAll(t, s); n != all[len(all)-1].Seq {
		t.Errorf("refused writes appended events up to %d", n)
	}
	if vs, _ := s.DatasetVersions(everyone, ""); len(vs) != 0 {
		t.Errorf("a non-event read under AllProjects saw %+v", vs)
	}
}

// lastSeqAll is the Seq of the newest event of any project (0 when none).
func lastSeqAll(t *testing.T, s store.Store) int64 {
	t.Helper()
	evs, err := s.Events(store.WithAllProjects(ctx), 0, 0)
	must(t, err)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}
