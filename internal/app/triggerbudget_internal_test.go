package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/store"
)

// TestTriggerBudgetRefusesFiring: once the runs a trigger started have
// used its budget, the next event is refused: the firing is recorded as
// skipped with the limit, its value and the measured value, and a
// trigger.skipped event; nothing more is started.
func TestTriggerBudgetRefusesFiring(t *testing.T) {
	ops := newGatedOps(true)
	a := openTestApp(t, ops, nil)
	startTestApp(t, a)
	ctx := context.Background()
	spec := "name: t\non: {event: feedback, model: m}\ndo:\n  - retrain: {recipe: r}\nlimits: {budget: {max_cost_usd: 0.05, period: 1h}}\n"
	if _, err := a.ApplyTrigger(ctx, "t.yaml", []byte(spec)); err != nil {
		t.Fatal(err)
	}
	a.emitFeedback(t, 5)
	waitFor(t, "the first firing to finish", func() bool {
		fs := firings(t, a, "t")
		return len(fs) == 1 && fs[0].State.Terminal()
	})
	if f := firings(t, a, "t")[0]; f.State != store.FiringDone {
		t.Fatalf("first firing %+v", f)
	}
	// The scheduler meters the run it started (here run-1, from the
	// trigger's ops) into the store: within the budget, the trigger fires.
	if _, err := a.store.SaveRunUsage(ctx, store.RunUsage{RunID: "run-1", Model: "r", CPUSeconds: 60, CostUSD: 0.01, EnergyKWh: 1e-4,
		EnergySource: "estimated"}); err != nil {
		t.Fatal(err)
	}
	a.emitFeedback(t, 5)
	waitFor(t, "the second firing to finish", func() bool {
		fs := firings(t, a, "t")
		return len(fs) == 2 && fs[1].State.Terminal()
	})
	if f := firings(t, a, "t")[1]; f.State != store.FiringDone {
		t.Fatalf("second firing, within the budget: %+v", f)
	}
	// run-2 brings the sum past 0.05 USD: the third event is refused.
	if _, err := a.store.SaveRunUsage(ctx, store.RunUsage{RunID: "run-2", Model: "r", CPUSeconds: 600, CostUSD: 0.07, EnergyKWh: 1e-3,
		EnergySource: "estimated"}); err != nil {
		t.Fatal(err)
	}
	a.emitFeedback(t, 5)
	waitFor(t, "the third firing", func() bool { return len(firings(t, a, "t")) == 3 })
	f := firings(t, a, "t")[2]
	if f.State != store.FiringSkipped || !strings.Contains(f.Reason, "over budget") ||
		!strings.Contains(f.Reason, "budget max_cost_usd 0.05 reached: measured 0.08 USD") {
		t.Fatalf("third firing %+v, want skipped over budget", f)
	}
	evs, _ := a.store.Events(ctx, 0, 0)
	var skipped int
	for _, e := range evs {
		if e.Type == eventTriggerSkipped && strings.Contains(string(e.Data), "over budget") {
			skipped++
		}
	}
	if skipped != 1 {
		t.Errorf("%d trigger.skipped events over budget, want 1", skipped)
	}
	ops.mu.Lock()
	defer ops.mu.Unlock()
	if calls, _ := json.Marshal(ops.calls); strings.Count(string(calls), "start") != 2 {
		t.Errorf("calls %s, want two starts", calls)
	}
}

func TestRunIDs(t *testing.T) {
	got := runIDs(json.RawMessage(`[{"action":"retrain","run_id":"run-a"},{"action":"rebase","run_id":"run-b",
		"compare":{"old":{"run_id":"run-c"},"new":{"run_id":"run-d"}}},{"action":"webhook"}]`))
	if strings.Join(got, ",") != "run-a,run-b,run-c,run-d" {
		t.Errorf("runIDs = %v", got)
	}
	if runIDs(json.RawMessage(`not json`)) != nil {
		t.Error("runIDs of broken JSON is not empty")
	}
}
