package storetest

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlstore"
)

// Schema8Rows is the file of rows in every noun table as schema 8 wrote
// them, in SQLite's SQL; an engine with another blob literal rewrites it.
const Schema8Rows = "../sqlite/testdata/schema8_rows.sql"

// projectTables are the tables migration 0009 gives a project column.
var projectTables = []string{"dataset_versions", "base_versions", "recipe_versions", "runs", "aliases", "events", "model_versions",
	"eval_reports", "alias_history", "approvals", "predictions", "feedback", "specs", "monitor_state", "monitor_windows",
	"trigger_firings", "region_copies"}

// Schema8 is a store an engine opened with its migrations up to 8 only.
type Schema8 struct {
	Store store.Store
	// Exec runs one statement on Store's database ('?' placeholders).
	Exec func(ctx context.Context, query string, args ...any) error
}

// Upgraded is the same database opened again with every migration.
type Upgraded struct {
	Store store.Store
	// QueryRow scans one row of a query ('?' placeholders) into dest.
	QueryRow func(ctx context.Context, query string, dest ...any) error
}

// MigrateProjects checks schema 9's migration (every noun gains a project)
// and schema 11's (the audit chain per project) on an engine: it loads
// rows (Schema8Rows in the engine's SQL) into every noun table of old,
// writes events and their chained audit entries as schema 8 did (one by
// a token acting in project blue while the nouns were still shared),
// closes it and calls reopen. Then each row is in the default project,
// reads there find them, another project sees none, the audit chain
// still verifies, and new rows continue the old sequences.
func MigrateProjects(t *testing.T, old Schema8, rows string, reopen func() Upgraded) {
	t.Helper()
	ctx := context.Background()
	if err := old.Exec(ctx, rows); err != nil {
		t.Fatalf("%s: %v", Schema8Rows, err)
	}
	var prev string
	befores := map[[2]string]string{}
	for i, e := range []struct{ typ, subject, project string }{
		{"dataset.version.created", "mail", store.DefaultProject},
		{"model.alias.moved", "spam", "blue"},
		{"model.alias.moved", "spam", store.DefaultProject},
	} {
		ev := store.Event{Seq: int64(i + 1), Type: e.typ, Subject: e.subject, Time: time.Date(2026, 1, 7, 0, 0, i, 0, time.UTC),
			Data: json.RawMessage(`{"n":` + string(rune('0'+i)) + `}`)}
		if err := old.Exec(ctx, `INSERT INTO events (seq, type, subject, time, data) VALUES (?, ?, ?, ?, ?)`,
			ev.Seq, ev.Type, ev.Subject, ev.Time.Format(sqlstore.TimeLayout), string(ev.Data)); err != nil {
			t.Fatal(err)
		}
		a := store.AuditEntry{Seq: ev.Seq, Time: ev.Time, Actor: "ana", Project: e.project, Action: ev.Type, EventSeq: ev.Seq,
			After: store.AuditAfter(ev), PrevHash: prev}
		a.ObjectKind, a.ObjectID = store.AuditObject(ev)
		key := [2]string{a.ObjectKind, a.ObjectID}
		a.Before, befores[key] = befores[key], a.After
		a.Hash = store.AuditHash(a)
		prev = a.Hash
		if err := old.Exec(ctx, `INSERT INTO audit_log (`+sqlstore.AuditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.Seq, a.Time.Format(sqlstore.TimeLayout), a.Actor, a.Project, a.Action, a.ObjectKind, a.ObjectID, a.EventSeq, a.Before, a.After,
			a.PrevHash, a.Hash); err != nil {
			t.Fatal(err)
		}
	}
	// Verified by the rule schema 8 wrote it under (Before across
	// projects), entry by entry: VerifyAudit needs schema 11's audit_scope.
	entries, err := old.Store.AuditEntries(store.WithAllProjects(ctx), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	pre := store.NewAuditVerifierFrom(math.MaxInt64)
	for _, e := range entries {
		pre.Add(e)
	}
	if v := pre.Result(); !v.OK() || v.Entries != 3 {
		t.Fatalf("the schema 8 chain does not verify before the upgrade: %+v", v)
	}
	if err := old.Store.Close(); err != nil {
		t.Fatal(err)
	}

	up := reopen()
	s := up.Store
	for _, tbl := range projectTables {
		var n, inDefault int
		// #nosec G202 -- table names come from the constant list above
		if err := up.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN project = 'default' THEN 1 ELSE 0 END), 0) FROM `+tbl, &n, &inDefault); err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		if n == 0 || inDefault != n {
			t.Errorf("%s after the upgrade: %d rows, %d in default; want every row kept, in default", tbl, n, inDefault)
		}
	}
	v, err := s.VerifyAudit(ctx)
	if err != nil || !v.OK() || v.Entries != 3 {
		t.Fatalf("audit after the upgrade: %+v, %v; want 3 entries verifying", v, err)
	}
	if r, err := s.RecipeVersionByID(ctx, "r1"); err != nil || string(r.Normalized) != "task: classify\n" {
		t.Errorf("recipe r1's bytes after the upgrade: %q, %v", r.Normalized, err)
	}

	// Reads in default find the old rows; another project finds none.
	blue := store.WithProject(ctx, "blue")
	checks := []struct {
		name string
		read func(c context.Context) error
	}{
		{"dataset mail", func(c context.Context) error { _, err := s.DatasetVersion(c, "mail", "latest"); return err }},
		{"base tiny v1", func(c context.Context) error { _, err := s.BaseVersion(c, "tiny", "v1"); return err }},
		{"recipe r1", func(c context.Context) error { _, err := s.RecipeVersionByID(c, "r1"); return err }},
		{"run run-1", func(c context.Context) error { _, err := s.Run(c, "run-1"); return err }},
		{"run-1 logs", func(c context.Context) error { _, err := s.RunLogs(c, "run-1", 0, 0); return err }},
		{"model spam v1", func(c context.Context) error { _, err := s.ModelVersion(c, "spam", "v1"); return err }},
		{"alias spam champion", func(c context.Context) error { _, err := s.Alias(c, "model", "spam", "champion"); return err }},
		{"approval ap-1", func(c context.Context) error { _, err := s.Approval(c, "ap-1"); return err }},
		{"prediction req-1", func(c context.Context) error { _, err := s.Prediction(c, "req-1"); return err }},
		{"monitor spam", func(c context.Context) error { _, err := s.MonitorState(c, "spam"); return err }},
		{"monitor spec spam", func(c context.Context) error { _, err := s.Spec(c, "monitor", "spam", ""); return err }},
		{"firing retrain/1", func(c context.Context) error { _, err := s.Firing(c, "retrain", 1); return err }},
		{"copy mail-us", func(c context.Context) error { _, err := s.CopySource(c, "dataset", "mail-us", "d2"); return err }},
	}
	for _, tc := range checks {
		if err := tc.read(ctx); err != nil {
			t.Errorf("%s in default after the upgrade: %v", tc.name, err)
		}
		if err := tc.read(blue); err == nil {
			t.Errorf("%s is visible in blue after the upgrade", tc.name)
		}
	}
	if reps, err := s.EvalReports(ctx, "mv1"); err != nil || len(reps) != 1 {
		t.Errorf("eval reports of mv1: %+v, %v", reps, err)
	}
	if h, err := s.AliasHistory(ctx, "model", "spam", "champion"); err != nil || len(h) != 1 {
		t.Errorf("alias history: %+v, %v", h, err)
	}
	if st, err := s.FeedbackStats(ctx, "spam"); err != nil || st.Total != 1 || st.Pending != 1 {
		t.Errorf("feedback stats: %+v, %v", st, err)
	}
	evs, err := s.Events(ctx, 0, 0)
	if err != nil || len(evs) != 3 || evs[2].Project != store.DefaultProject {
		t.Fatalf("events in default after the upgrade: %+v, %v", evs, err)
	}

	// New rows continue the old sequences, and the chain goes on.
	next := store.DatasetVersion{ID: "d3", Name: "mail", Task: "classify", Manifest: "sha256:dm3", Region: "eu", Owner: "ana", Parent: "d2"}
	got, err := s.PutDatasetVersion(ctx, next, []store.Event{{Type: "dataset.version.created", Subject: "mail"}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Seq != 4 {
		t.Errorf("the first event after the upgrade has seq %d, want 4", got[0].Seq)
	}
	var seq int64
	if err := up.QueryRow(ctx, `SELECT seq FROM dataset_versions WHERE id = 'd3'`, &seq); err != nil || seq != 3 {
		t.Errorf("the new dataset version has seq %d, %v; want 3", seq, err)
	}
	if v, err := s.VerifyAudit(ctx); err != nil || !v.OK() || v.Entries != 4 {
		t.Errorf("audit after a new change: %+v, %v", v, err)
	}
	// After the upgrade an object's Before is its last After in the same
	// project: blue's spam follows blue's entry 2, not default's entry 3.
	if _, err := s.AppendEvents(store.WithProject(ctx, "blue"), []store.Event{{Type: "model.alias.moved", Subject: "spam"}}); err != nil {
		t.Fatal(err)
	}
	es, err := s.AuditEntries(store.WithAllProjects(ctx), 0, 0)
	if err != nil || len(es) != 5 {
		t.Fatalf("audit entries: %d, %v", len(es), err)
	}
	if es[4].Before != es[1].After || es[4].Before == es[2].After {
		t.Errorf("blue's spam after the upgrade: before %q, want blue's entry 2's after %q", es[4].Before, es[1].After)
	}
	if v, err := s.VerifyAudit(ctx); err != nil || !v.OK() || v.Entries != 5 {
		t.Errorf("audit over both rules: %+v, %v", v, err)
	}
}

// ReadSchema8Rows reads Schema8Rows relative to an engine package's
// directory (internal/store/<engine>).
func ReadSchema8Rows(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(Schema8Rows)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
