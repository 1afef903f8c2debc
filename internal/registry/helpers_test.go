package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlite"
)

var ctx = context.Background()

// recorder is a Publisher that checks every event it receives is already
// committed: readable from the store's outbox, and, for alias moves, the
// alias already points at the event's subject.
type recorder struct {
	t  *testing.T
	st store.Store

	mu     sync.Mutex
	events []store.Event
}

func (p *recorder) Publish(evs ...store.Event) {
	p.t.Helper()
	for _, e := range evs {
		got, err := p.st.Events(ctx, e.Seq-1, 1)
		if err != nil || len(got) != 1 || got[0].Seq != e.Seq || got[0].Type != e.Type {
			p.t.Errorf("published %s seq %d before it was committed (store has %v, %v)", e.Type, e.Seq, got, err)
		}
	}
	p.mu.Lock()
	p.events = append(p.events, evs...)
	p.mu.Unlock()
}

func (p *recorder) types() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		out = append(out, e.Type)
	}
	return out
}

// fixture is a registry over a real SQLite store in t.TempDir(), with a
// clock that ticks one second per reading.
type fixture struct {
	st  *sqlite.Store
	pub *recorder
	reg *Registry

	mu  sync.Mutex
	now time.Time
	ids int
}

func newFixture(t *testing.T, requireApproval map[string]bool) *fixture {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "tailor.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, pub: &recorder{t: t, st: st}, now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	f.reg = New(Options{Store: st, Publisher: f.pub, RequireApproval: requireApproval, Now: f.tick,
		NewID: func() string {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.ids++
			return fmt.Sprintf("ap-%d", f.ids)
		}})
	return f
}

func (f *fixture) tick() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(time.Second)
	return f.now
}

func hexOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// input is a model version to register; adapter "" means the base alone.
func input(name, adapter string) store.ModelVersion {
	v := store.ModelVersion{Name: name, BaseID: hexOf("smollm-135m"), Task: "classify",
		Labels: map[string]string{"team": "nlp"}}
	if adapter != "" {
		v.Adapter = "sha256:" + hexOf(adapter)
		v.RunID = "run-" + adapter
	}
	return v
}

// register registers adapters a1, a2, … under name and returns them.
func (f *fixture) register(t *testing.T, name string, n int) []Version {
	t.Helper()
	var out []Version
	for i := range n {
		v, created, err := f.reg.Register(ctx, input(name, fmt.Sprintf("a%d", i+1)))
		if err != nil || !created {
			t.Fatalf("register %d: created %v, %v", i+1, created, err)
		}
		out = append(out, v)
	}
	return out
}

func (f *fixture) report(t *testing.T, v Version, verdict store.Verdict) store.EvalReport {
	t.Helper()
	f.mu.Lock()
	f.ids++
	n := f.ids
	f.mu.Unlock()
	rep := store.EvalReport{Digest: "sha256:" + hexOf(fmt.Sprint("report", n)), DatasetID: hexOf("eval-set"),
		Split: "test", Verdict: verdict}
	if verdict == store.VerdictFail {
		rep.Failed = []string{"accuracy 0.71 < threshold 0.80"}
	}
	got, err := f.reg.AttachReport(ctx, v.ID, rep)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (f *fixture) target(t *testing.T, name, alias string) string {
	t.Helper()
	a, err := f.st.Alias(ctx, Kind, name, alias)
	if errors.Is(err, errs.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return a.Target
}

func promote(name, version, alias string) PromoteRequest {
	return PromoteRequest{Name: name, Version: version, Alias: alias, Reason: "better on the holdout", Actor: "ana"}
}

// wantErr fails unless err has the kind and its message names every part.
func wantErr(t *testing.T, err error, kind string, says ...string) {
	t.Helper()
	if got := errs.Kind(err); got != kind {
		t.Fatalf("error %v: kind %q, want %q", err, got, kind)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
