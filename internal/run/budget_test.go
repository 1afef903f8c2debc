package run

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/meter"
	"github.com/tailor-ml/tailor/internal/store"
)

func budgetOf(b meter.Budget) func([]byte) (meter.Budget, error) {
	return func([]byte) (meter.Budget, error) { return b, nil }
}

// TestBudgetMaxSteps: a real child that checkpoints every step is stopped
// at the checkpoint at max_steps, ends budget_exceeded (not failed) with
// an event and a message naming the limit, keeps that checkpoint, and,
// with the budget raised, resumes from it and succeeds.
func TestBudgetMaxSteps(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	f := newFixtureWith(t, st, "steps", Options{BudgetOf: budgetOf(meter.Budget{MaxSteps: 2}), MeterEvery: time.Hour})
	// The run is started in project team-a: it runs there, with team-a's
	// recipe, and its usage is team-a's.
	ctx := store.WithProject(context.Background(), "team-a")
	if _, err := st.PutProject(context.Background(), store.Project{Name: "team-a", CreatedBy: "root"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutRecipeVersion(ctx, store.RecipeVersion{ID: "rid", Name: "r", Normalized: []byte("name: r\n")}, nil); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(Inputs{Recipe: InputRef{Name: "r", ID: "rid"}, Dataset: InputRef{Name: "d", ID: "did"}, Engine: "e"})
	if _, err := f.sched.Submit(ctx, store.Run{ID: "run-b", Key: "k-b", RecipeID: "rid", DatasetID: "did", Inputs: in}); err != nil {
		t.Fatal(err)
	}
	r := waitStateIn(ctx, t, st, "run-b", store.RunBudgetExceeded)
	if r.Checkpoint != "sha256:ckpt2" || r.Step != 2 || r.FinishedAt.IsZero() {
		t.Fatalf("stopped run: checkpoint %q at step %d; want sha256:ckpt2 at 2", r.Checkpoint, r.Step)
	}
	if !strings.Contains(r.Error, "budget max_steps 2 reached: measured step 2") || !strings.Contains(r.Error, "checkpoint at step 2 kept") {
		t.Errorf("message %q does not name the limit, its value and the measured value", r.Error)
	}
	if got := f.pub.transitions("run-b"); !slices.Equal(got, []string{"queued", "running", "budget_exceeded"}) {
		t.Errorf("transitions %v", got)
	}
	ev := f.pub.event("run-b", EventBudgetExceeded)
	if ev == nil || !strings.Contains(string(ev.Data), `"limit":"max_steps"`) || !strings.Contains(string(ev.Data), `"checkpoint":"sha256:ckpt2"`) {
		t.Fatalf("budget event %v", ev)
	}
	u, err := st.RunUsage(context.Background(), "run-b")
	if err != nil {
		t.Fatal(err)
	}
	if u.Project != "team-a" || u.Model != "r" || u.FLOPs != 2e9 || u.WallSeconds <= 0 || u.PeakRSSBytes <= 0 ||
		(u.EnergySource != meter.Measured && u.EnergySource != meter.Estimated) || !strings.Contains(string(u.Exceeded), "max_steps") {
		t.Errorf("usage after the stop: %+v", u)
	}

	// Only a stopped run resumes, and only past its measured usage.
	if _, err := f.sched.RaiseBudget(ctx, "run-b", meter.Budget{MaxSteps: 2}); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("raise to the same limit = %v, want invalid", err)
	}
	if _, err := f.sched.RaiseBudget(ctx, "run-b", meter.Budget{}); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("raise of nothing = %v, want invalid", err)
	}
	if _, err := f.sched.RaiseBudget(store.WithActor(ctx, "alice"), "run-b", meter.Budget{MaxSteps: 10}); err != nil {
		t.Fatal(err)
	}
	r = waitStateIn(ctx, t, st, "run-b", store.RunSucceeded)
	var m map[string]string
	json.Unmarshal(r.Metrics, &m)
	if m["resume"] != "sha256:ckpt2" || r.Attempt != 2 || r.Error != "" || r.Result != "sha256:adapter" {
		t.Fatalf("resumed run: resume %q attempt %d error %q", m["resume"], r.Attempt, r.Error)
	}
	if got := f.pub.transitions("run-b"); !slices.Equal(got, []string{"queued", "running", "budget_exceeded", "queued", "running", "succeeded"}) {
		t.Errorf("transitions %v", got)
	}
	if ev := f.pub.event("run-b", EventBudgetRaised); ev == nil || !strings.Contains(string(ev.Data), `"actor":"alice"`) {
		t.Errorf("raise event %v", ev)
	}
	u, _ = st.RunUsage(context.Background(), "run-b")
	if u.FLOPs != 4e9 || len(u.Exceeded) != 0 || !strings.Contains(string(u.Budget), `"max_steps":10`) {
		t.Errorf("usage after the resume (FLOPs of both attempts): %+v", u)
	}
	if _, err := f.sched.RaiseBudget(ctx, "run-b", meter.Budget{MaxSteps: 20}); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("raising a succeeded run = %v, want conflict", err)
	}
}

// TestBudgetMaxStepsEqualToThePlan: a max_steps equal to the steps the run
// plans does not stop it at its last checkpoint: it succeeds (it once
// stopped there, budget_exceeded with nothing left to train).
func TestBudgetMaxStepsEqualToThePlan(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	f := newFixtureWith(t, st, "finish", Options{BudgetOf: budgetOf(meter.Budget{MaxSteps: 3}), MeterEvery: time.Hour})
	in, _ := json.Marshal(Inputs{Recipe: InputRef{Name: "r", ID: "rid"}, Dataset: InputRef{Name: "d", ID: "did"}, Engine: "e"})
	if _, err := f.sched.Submit(context.Background(), store.Run{ID: "run-f", Key: "k-f", RecipeID: "rid", DatasetID: "did", Inputs: in}); err != nil {
		t.Fatal(err)
	}
	if r := waitState(t, st, "run-f", store.RunSucceeded); r.Result != "sha256:adapter" || r.Step != 3 {
		t.Fatalf("run: result %q step %d", r.Result, r.Step)
	}
}

// TestBudgetMaxDuration: a run whose wall time reaches max_duration is
// stopped by the meter between messages.
func TestBudgetMaxDuration(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	f := newFixtureWith(t, st, "hang", Options{BudgetOf: budgetOf(meter.Budget{MaxDuration: time.Nanosecond}), MeterEvery: 5 * time.Millisecond})
	submit(t, f, "run-d")
	r := waitState(t, st, "run-d", store.RunBudgetExceeded)
	if !strings.Contains(r.Error, "budget max_duration 1ns reached") {
		t.Errorf("message %q", r.Error)
	}
	// A stopped run can be given up instead of resumed.
	if r, err := f.sched.Cancel(context.Background(), "run-d"); err != nil || r.State != store.RunCanceled {
		t.Errorf("cancel a stopped run = %+v, %v", r, err)
	}
}

// TestBudgetUsedUpBeforeStart: a queued run whose earlier attempts already
// reached the budget is stopped without starting a worker.
func TestBudgetUsedUpBeforeStart(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	ctx := context.Background()
	if _, err := st.SaveRunUsage(ctx, store.RunUsage{RunID: "run-u", Model: "r", Day: "2026-12-07", CPUSeconds: 7200, CostUSD: 0.5}); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(Inputs{Recipe: InputRef{Name: "r", ID: "rid"}})
	if _, err := st.CreateRun(ctx, store.Run{ID: "run-u", Key: "k", RecipeID: "rid", Inputs: in, State: store.RunQueued, CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	f := newFixtureWith(t, st, "ok", Options{BudgetOf: budgetOf(meter.Budget{MaxCostUSD: 0.25})})
	r := waitState(t, st, "run-u", store.RunBudgetExceeded)
	if r.Attempt != 0 || !strings.Contains(r.Error, "budget max_cost_usd 0.25 reached: measured 0.5 USD") {
		t.Errorf("run %+v", r)
	}
	if got := f.pub.transitions("run-u"); !slices.Equal(got, []string{"budget_exceeded"}) {
		t.Errorf("transitions %v", got)
	}
}
