package app

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/trigger"
)

// gatedOps is a trigger.Ops whose runs end when the test releases them:
// every run succeeds and registers version N of model m. It records the
// calls and the most runs waited on at once.
type gatedOps struct {
	mu        sync.Mutex
	calls     []string
	next      int
	gates     map[string]chan struct{}
	waiting   int
	maxWait   int
	autoGates bool          // runs end at once
	holdStart chan struct{} // when set, StartRun waits until it is closed
}

func newGatedOps(auto bool) *gatedOps {
	return &gatedOps{gates: map[string]chan struct{}{}, autoGates: auto}
}

func (g *gatedOps) record(c string) {
	g.mu.Lock()
	g.calls = append(g.calls, c)
	g.mu.Unlock()
}

func (g *gatedOps) gate(id string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, ok := g.gates[id]
	if !ok {
		ch = make(chan struct{})
		if g.autoGates {
			close(ch)
		}
		g.gates[id] = ch
	}
	return ch
}

func (g *gatedOps) StartRun(_ context.Context, recipe, _ string) (trigger.RunInfo, error) {
	if g.holdStart != nil {
		<-g.holdStart
	}
	g.mu.Lock()
	g.next++
	id := fmt.Sprintf("run-%d", g.next)
	g.calls = append(g.calls, "start "+id)
	g.mu.Unlock()
	return trigger.RunInfo{ID: id, State: "queued"}, nil
}

func (g *gatedOps) StartEval(context.Context, string, string, string) (trigger.RunInfo, error) {
	panic("not used")
}

func (g *gatedOps) WaitRun(ctx context.Context, id string) (trigger.RunInfo, error) {
	g.mu.Lock()
	g.waiting++
	g.maxWait = max(g.maxWait, g.waiting)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}()
	select {
	case <-g.gate(id):
	case <-ctx.Done():
		return trigger.RunInfo{ID: id, State: "running"}, ctx.Err()
	}
	var n int
	fmt.Sscanf(id, "run-%d", &n)
	return trigger.RunInfo{ID: id, State: "succeeded", Model: "m", Version: n, VersionID: fmt.Sprintf("vid%d", n)}, nil
}

func (g *gatedOps) Promote(_ context.Context, model string, version int, alias, reason string) (string, error) {
	g.record(fmt.Sprintf("promote %s v%d %s", model, version, alias))
	return "", nil
}

func (g *gatedOps) Rollback(context.Context, string, string, string) (string, error) {
	panic("not used")
}

func (g *gatedOps) Webhook(_ context.Context, url string, _ bool, _ []byte) (int, error) {
	g.record("webhook " + url)
	return 200, nil
}

// openTestApp opens an App with a recipe "r" stored and ops injected; the
// caller starts it (or not).
func openTestApp(t *testing.T, ops trigger.Ops, now func() time.Time) *App {
	t.Helper()
	a, err := Open(Options{DataDir: t.TempDir(), EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	a.triggers.ops = ops
	if _, _, err := a.store.PutRecipeVersion(context.Background(), store.RecipeVersion{ID: fmt.Sprintf("%064d", 1), Name: "r",
		Normalized: []byte("name: r\n")}, nil); err != nil {
		t.Fatal(err)
	}
	return a
}

func startTestApp(t *testing.T, a *App) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		a.Close()
	})
}

func (a *App) emitFeedback(t *testing.T, records int) int64 {
	t.Helper()
	evs, err := a.store.AppendEvents(context.Background(), []store.Event{a.event("feedback.accumulated", "dv", map[string]any{"model": "m", "records": records})})
	if err != nil {
		t.Fatal(err)
	}
	a.publish(evs)
	return evs[0].Seq
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func firings(t *testing.T, a *App, name string) []store.Firing {
	t.Helper()
	fs, err := a.store.Firings(context.Background(), store.FiringFilter{Trigger: name})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// The success path through the real loop and store: retrain (the run
// succeeds and registers a version) then promote_if_pass; each step's
// result is stored, with its events.
func TestTriggerLoopRetrainPromote(t *testing.T) {
	ops := newGatedOps(true)
	a := openTestApp(t, ops, nil)
	startTestApp(t, a)
	ctx := context.Background()
	if _, err := a.ApplyTrigger(ctx, "t.yaml", []byte("name: t\non: {event: feedback, model: m}\ndo:\n  - retrain: {recipe: r}\n  - promote_if_pass: {alias: champion}\n")); err != nil {
		t.Fatal(err)
	}
	seq := a.emitFeedback(t, 5)
	waitFor(t, "the firing to finish", func() bool {
		fs := firings(t, a, "t")
		return len(fs) == 1 && fs[0].State.Terminal()
	})
	f := firings(t, a, "t")[0]
	var rs []trigger.Result
	if err := json.Unmarshal(f.Results, &rs); err != nil {
		t.Fatal(err)
	}
	if f.State != store.FiringDone || f.Step != 2 || f.EventSeq != seq || len(rs) != 2 || rs[0].RunID != "run-1" || rs[0].Version != 1 ||
		!rs[1].Promoted || rs[1].Alias != "champion" {
		t.Fatalf("firing %+v results %+v", f, rs)
	}
	counts := map[string]int{}
	evs, _ := a.store.Events(ctx, 0, 0)
	for _, e := range evs {
		counts[e.Type]++
	}
	if counts[eventTriggerFired] != 1 || counts[eventActionDone] != 2 || counts[eventTriggerDone] != 1 || counts[eventActionFailed] != 0 {
		t.Errorf("events %v", counts)
	}
	// The loop's own changes are audited as the trigger's system actor.
	es, err := a.store.AuditEntries(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	byLoop := 0
	for _, e := range es {
		switch e.Action {
		case eventTriggerFired, eventActionDone, eventTriggerDone:
			byLoop++
			if e.Actor != triggerActor {
				t.Errorf("audit entry %d (%s) by %q, want %q", e.Seq, e.Action, e.Actor, triggerActor)
			}
		}
	}
	if byLoop != 4 {
		t.Errorf("%d audit entries for the loop's 4 events", byLoop)
	}
	ops.mu.Lock()
	defer ops.mu.Unlock()
	if want := fmt.Sprint([]string{"start run-1", "promote m v1 champion"}); fmt.Sprint(ops.calls) != want {
		t.Errorf("calls %v, want %s", ops.calls, want)
	}
}

// With max_concurrent 1 a second firing waits, pending, until the first
// is done; with 2 both run at once.
func TestTriggerMaxConcurrent(t *testing.T) {
	for _, limit := range []int{1, 2} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			ops := newGatedOps(false)
			a := openTestApp(t, ops, nil)
			startTestApp(t, a)
			spec := fmt.Sprintf("name: t\non: {event: feedback}\ndo:\n  - retrain: {recipe: r}\nlimits: {max_concurrent: %d}\n", limit)
			if _, err := a.ApplyTrigger(context.Background(), "t.yaml", []byte(spec)); err != nil {
				t.Fatal(err)
			}
			a.emitFeedback(t, 1)
			a.emitFeedback(t, 1)
			waitFor(t, "two firings", func() bool { return len(firings(t, a, "t")) == 2 })
			waitFor(t, "runs to wait on", func() bool {
				ops.mu.Lock()
				defer ops.mu.Unlock()
				return ops.waiting == limit
			})
			time.Sleep(100 * time.Millisecond) // a wrong dispatcher would start the second by now
			fs := firings(t, a, "t")
			if limit == 1 && (fs[0].State != store.FiringRunning || fs[1].State != store.FiringPending) {
				t.Fatalf("with max_concurrent 1: %s and %s, want running and pending", fs[0].State, fs[1].State)
			}
			close(ops.gate("run-1"))
			close(ops.gate("run-2"))
			waitFor(t, "both done", func() bool {
				fs := firings(t, a, "t")
				return fs[0].State == store.FiringDone && fs[1].State == store.FiringDone
			})
			ops.mu.Lock()
			defer ops.mu.Unlock()
			if ops.maxWait != limit {
				t.Errorf("at most %d runs waited on at once, want %d", ops.maxWait, limit)
			}
		})
	}
}

// Schedule triggers claim each due cron tick once; ticks missed meanwhile
// collapse into the latest.
func TestTriggerSchedule(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 12, 1, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(hm string) {
		mu.Lock()
		defer mu.Unlock()
		now, _ = time.Parse(time.RFC3339, "2026-12-06T"+hm+":30Z")
	}
	a := openTestApp(t, newGatedOps(true), clock)
	defer a.Close() // never started: scheduleStep is driven by hand
	ctx := context.Background()
	if _, err := a.ApplyTrigger(ctx, "s.yaml", []byte("name: s\non: {event: schedule, cron: \"*/5 * * * *\"}\ndo:\n  - webhook: {url: \"https://hooks.example.com/x\"}\n")); err != nil {
		t.Fatal(err)
	}
	ticks := func() []string {
		var out []string
		for _, f := range firings(t, a, "s") {
			out = append(out, f.Tick.Format("15:04"))
		}
		return out
	}
	steps := []struct {
		at   string
		want string
		next string
	}{
		{"12:03", "[]", "12:05"},
		{"12:07", "[12:05]", "12:10"},
		{"12:08", "[12:05]", "12:10"}, // claimed already
		{"12:31", "[12:05 12:30]", "12:35"},
	}
	for _, s := range steps {
		set(s.at)
		next, err := a.triggers.scheduleStep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(ticks()); got != s.want || next.Format("15:04") != s.next {
			t.Errorf("at %s: ticks %s next %s; want %s next %s", s.at, got, next.Format("15:04"), s.want, s.next)
		}
	}
	fs := firings(t, a, "s")
	evs, _ := a.store.Events(ctx, fs[0].EventSeq-1, 1)
	if len(evs) != 1 || evs[0].Type != eventTriggerFired || fs[0].EventType != "schedule" || fs[0].State != store.FiringPending {
		t.Errorf("schedule firing %+v, its event %+v", fs[0], evs)
	}
}

// A dispatch that listed a firing while it was executing must not run its
// step again when the execution ends before the dispatch gets to it: the
// stale copy says running at step 0 with no run recorded, the store says
// done.
func TestDispatchDoesNotRepeatAFinishedStep(t *testing.T) {
	ops := newGatedOps(true)
	ops.holdStart = make(chan struct{})
	a := openTestApp(t, ops, nil)
	var armed atomic.Bool
	listed, resume := make(chan struct{}), make(chan struct{})
	a.triggers.listed = func(fs []store.Firing) {
		if len(fs) == 1 && fs[0].State == store.FiringRunning && string(fs[0].Results) == "[]" && armed.CompareAndSwap(true, false) {
			close(listed)
			<-resume
		}
	}
	startTestApp(t, a)
	if _, err := a.ApplyTrigger(context.Background(), "t.yaml", []byte("name: t\non: {event: feedback}\ndo:\n  - retrain: {recipe: r}\n")); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	a.emitFeedback(t, 1)
	waitFor(t, "the firing to be running", func() bool {
		fs := firings(t, a, "t")
		return len(fs) == 1 && fs[0].State == store.FiringRunning
	})
	a.triggers.wakeDispatch()
	<-listed // a dispatch holds a copy that says running, step 0, no run yet
	close(ops.holdStart)
	waitFor(t, "the execution to end and release the firing", func() bool {
		fs := firings(t, a, "t")
		a.triggers.mu.Lock()
		defer a.triggers.mu.Unlock()
		return len(fs) == 1 && fs[0].State == store.FiringDone && len(a.triggers.active) == 0
	})
	close(resume)
	time.Sleep(200 * time.Millisecond) // a dispatch acting on its stale copy starts run-2 by now
	ops.mu.Lock()
	defer ops.mu.Unlock()
	if want := fmt.Sprint([]string{"start run-1"}); fmt.Sprint(ops.calls) != want {
		t.Fatalf("calls %v, want %s: a finished step ran again", ops.calls, want)
	}
}
