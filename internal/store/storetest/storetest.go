// Package storetest is the conformance suite every store.Store backend must
// pass (sqlite and postgres). A backend's test calls Run with a
// function that opens a fresh, empty store; Run closes it when the subtest
// ends.
//
// The suite checks every method, the not-found and conflict kinds, version
// numbering and reference resolution, run filters and compare-and-set, run
// log paging, aliases, model versions and their eval reports, alias moves
// (compare-and-set, history), approvals (compare-and-set, decision and move
// in one transaction), trigger firings (idempotent claims, compare-and-set
// steps) and their cursor, projects and API tokens (roles per project,
// revocation), run and request usage (usage.go), the event outbox
// (strictly increasing Seq, appended atomically with the change it
// describes), concurrent writers, the audit log (one chained entry per
// event, in the same transaction), model version regions and cross-region
// copies (copies.go), leases and fenced writes (leader.go), and project
// isolation: every noun under the same names in two projects, neither
// seeing the other (projects.go). MigrateProjects (migrate.go) checks the
// upgrade of a schema 8 database to per-project nouns on an SQL engine.
//
// This package imports internal/store, internal/store/sqlstore (the SQL
// engines' audit columns and time layout, for MigrateProjects) and
// internal/errs (plus testing).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/store"
)

// Run runs the suite. open must return a new, empty store for each call.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"DatasetVersions", testDatasets},
		{"BaseVersions", testBases},
		{"RecipeVersions", testRecipes},
		{"TimeRoundTrip", testTimes},
		{"DatasetParentCAS", testDatasetParentCAS},
		{"DatasetParentRace", testDatasetParentRace},
		{"Runs", testRuns},
		{"RunOnce", testRunOnce},
		{"RunFilter", testRunFilter},
		{"UpdateRun", testUpdateRun},
		{"RunLogs", testRunLogs},
		{"Aliases", testAliases},
		{"ModelVersions", testModelVersions},
		{"EvalReports", testEvalReports},
		{"AliasMoves", testAliasMoves},
		{"AliasMoveRace", testAliasMoveRace},
		{"Approvals", testApprovals},
		{"Predictions", testPredictions},
		{"Feedback", testFeedback},
		{"Specs", testSpecs},
		{"MonitorState", testMonitorState},
		{"Firings", testFirings},
		{"ScheduleFirings", testScheduleFirings},
		{"TriggerCursor", testTriggerCursor},
		{"Events", testEvents},
		{"EventsAtomic", testEventsAtomic},
		{"InvalidInput", testInvalid},
		{"ConcurrentWriters", testConcurrent},
		{"Audit", testAudit},
		{"AuditConcurrent", testAuditConcurrent},
		{"ModelRegion", testModelRegion},
		{"Copies", testCopies},
		{"Usage", testUsage}, // usage.go
		{"Projects", testProjects},
		{"Tokens", testTokens},
		{"Leases", testLeases},                     // leader.go
		{"LeaseInvalid", testLeaseInvalid},         // leader.go
		{"FencedWrites", testFencedWrites},         // leader.go
		{"LeaseRace", testLeaseRace},               // leader.go
		{"ProjectIsolation", testProjectIsolation}, // projects.go
		{"AuditProjects", testAuditProjects},       // audit.go
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

var ctx = context.Background()

// t0 is a fixed time with nanoseconds; fixtures count up from it.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func at(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

// hexID returns a 64-character id derived from s.
func hexID(s string) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 64)
	h := uint64(14695981039346656037)
	for i := range b {
		for j := 0; j < len(s); j++ {
			h = (h ^ uint64(s[j])) * 1099511628211
		}
		h = (h ^ uint64(i)) * 1099511628211
		b[i] = digits[h>>60]
	}
	return string(b)
}

func ev(typ, subject string) store.Event {
	return store.Event{Type: typ, Subject: subject, Data: json.RawMessage(`{"subject":"` + subject + `"}`)}
}

func dataset(name, id string, i int) store.DatasetVersion {
	return store.DatasetVersion{ID: hexID(id), Name: name, Task: "classify", Manifest: "sha256:" + hexID("m"+id),
		Records: int64(100 + i), Bytes: int64(1000 * (i + 1)), Region: "eu", Owner: "ana", CreatedAt: at(i)}
}

func base(name, id string, i int) store.BaseVersion {
	return store.BaseVersion{ID: hexID(id), Name: name, Arch: "LlamaForCausalLM", Params: int64(135e6 + i),
		Manifest: "sha256:" + hexID("bm"+id), Region: "eu", CreatedAt: at(i)}
}

func recipe(name, id string, i int) store.RecipeVersion {
	return store.RecipeVersion{ID: hexID(id), Name: name, Normalized: []byte(fmt.Sprintf("task: classify\nseed: %d\n", i)),
		CreatedAt: at(i)}
}

func newRun(id, key string, i int) store.Run {
	return store.Run{ID: id, Key: key, RecipeID: hexID("r"), DatasetID: hexID("d"), BaseID: hexID("b"),
		EngineVersion: "tailor-engine/1", Inputs: json.RawMessage(`{"recipe":"r@v1"}`), State: store.RunQueued,
		TotalSteps: 100, CreatedAt: at(i)}
}

// wantKind fails unless err wraps kind and its message names every part.
func wantKind(t *testing.T, what string, err, kind error, names ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: error %v, want kind %v", what, err, kind)
		return
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("%s: error %q does not name %q", what, err, n)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// lastSeq returns the Seq of the newest event (0 when none).
func lastSeq(t *testing.T, s store.Store) int64 {
	t.Helper()
	evs, err := s.Events(ctx, 0, 0)
	must(t, err)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// checkEvents checks that returned events got increasing Seqs after prev,
// kept their fields, and are readable from the store.
func checkEvents(t *testing.T, s store.Store, prev int64, sent, got []store.Event) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("returned %d events, want %d", len(got), len(sent))
	}
	for i := range got {
		if got[i].Seq <= prev {
			t.Errorf("event %d seq %d, want > %d", i, got[i].Seq, prev)
		}
		prev = got[i].Seq
		// #nosec G602 -- len(got) == len(sent) is checked above (t.Fatalf otherwise)
		if got[i].Type != sent[i].Type || got[i].Subject != sent[i].Subject || string(got[i].Data) != string(sent[i].Data) {
			t.Errorf("event %d = %+v, sent %+v", i, got[i], sent[i])
		}
		if got[i].Time.IsZero() {
			t.Errorf("event %d has zero time", i)
		}
	}
	if len(got) == 0 {
		return
	}
	stored, err := s.Events(ctx, got[0].Seq-1, len(got))
	must(t, err)
	equal(t, "stored events", stored, got)
}
