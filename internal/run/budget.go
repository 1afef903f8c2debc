package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/meter"
	"github.com/tailor-ml/tailor/internal/store"
)

// Events of metering.
const (
	// EventBudgetExceeded is published when a run is stopped at a limit of
	// its budget; its data names the limit, its value, the measured value,
	// and the checkpoint kept.
	EventBudgetExceeded = "run.budget.exceeded"
	// EventBudgetRaised is published when a stopped run's budget is raised
	// and it is queued to resume.
	EventBudgetRaised = "run.budget.raised"
)

// metering is one attempt's meter and budget; guarded by its own mutex
// (the supervisor, the metering ticker and Cancel touch it).
type metering struct {
	mu       sync.Mutex
	row      store.RunUsage // as stored, with the usage of earlier attempts
	prior    meter.Usage    // earlier attempts
	budget   meter.Budget
	tracker  *meter.Tracker // nil when the process cannot be metered here
	start    time.Time      // when the attempt's worker started
	step     int64
	total    int64   // the steps the attempt plans (its progress messages' total)
	flops    float64 // reported by the worker, for an unmetered one
	exceeded *meter.Exceeded
}

// usage returns the run's usage so far: earlier attempts plus this one.
// A worker this machine cannot read /proc for (another executor's) is
// metered by wall time and the FLOPs it reports only.
func (m *metering) usage(now time.Time) meter.Usage {
	if m.tracker == nil {
		return m.prior.Add(m.unmetered(now))
	}
	return m.prior.Add(m.tracker.Sample(now))
}

func (m *metering) unmetered(now time.Time) meter.Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.start.IsZero() {
		return meter.Usage{}
	}
	return meter.Usage{WallSeconds: now.Sub(m.start).Seconds(), FLOPs: m.flops}
}

// check records and returns the first limit u at step reaches, once.
func (m *metering) check(u meter.Usage, step int64) *meter.Exceeded {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exceeded != nil {
		return nil
	}
	m.exceeded = m.budget.Check(u, step)
	return m.exceeded
}

func (m *metering) stopped() *meter.Exceeded {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.exceeded
}

func usageOf(r store.RunUsage) meter.Usage {
	return meter.Usage{CPUSeconds: r.CPUSeconds, WallSeconds: r.WallSeconds, FLOPs: r.FLOPs, PeakRSSBytes: r.PeakRSSBytes,
		EnergyKWh: r.EnergyKWh, EnergySource: r.EnergySource, CostUSD: r.CostUSD}
}

func withUsage(r store.RunUsage, u meter.Usage) store.RunUsage {
	r.CPUSeconds, r.WallSeconds, r.FLOPs, r.PeakRSSBytes = u.CPUSeconds, u.WallSeconds, u.FLOPs, u.PeakRSSBytes
	r.EnergyKWh, r.EnergySource, r.CostUSD = u.EnergyKWh, u.EnergySource, u.CostUSD
	return r
}

// modelOf names the model a run trains (its recipe) or evaluates.
func modelOf(in Inputs) string {
	if in.Kind != KindTrain && in.Model.Name != "" {
		return in.Model.Name
	}
	return in.Recipe.Name
}

// newUsageRow is the usage row a new run starts with: its project (from
// ctx), model and day.
func newUsageRow(ctx context.Context, r store.Run) store.RunUsage {
	var in Inputs
	_ = json.Unmarshal(r.Inputs, &in) // a run with unreadable inputs fails at launch
	return store.RunUsage{RunID: r.ID, Project: store.ProjectFrom(ctx), Model: modelOf(in), Day: r.CreatedAt.UTC().Format(time.DateOnly),
		UpdatedAt: r.CreatedAt}
}

// usageRow returns the stored usage row of r, or a new one for a run
// created before metering.
func (s *Scheduler) usageRow(ctx context.Context, r store.Run) (store.RunUsage, error) {
	row, err := s.opts.Store.RunUsage(ctx, r.ID)
	if errors.Is(err, errs.ErrNotFound) {
		return newUsageRow(ctx, r), nil
	}
	return row, err
}

// budgetOf is the budget in force for a run: its recipe's, with the
// fields raised for it replacing the recipe's.
func (s *Scheduler) budgetOf(recipe []byte, row store.RunUsage) (meter.Budget, error) {
	var b meter.Budget
	if s.opts.BudgetOf != nil {
		var err error
		if b, err = s.opts.BudgetOf(recipe); err != nil {
			return b, err
		}
	}
	if len(row.Budget) > 0 {
		var raised meter.Budget
		if err := json.Unmarshal(row.Budget, &raised); err != nil {
			return b, fmt.Errorf("run %s: stored budget: %w", row.RunID, err)
		}
		b = b.Override(raised)
	}
	return b, nil
}

// startMetering prepares an attempt's meter: earlier attempts' usage and
// the budget in force.
func (s *Scheduler) startMetering(ctx context.Context, r store.Run, recipe []byte) (*metering, error) {
	row, err := s.usageRow(ctx, r)
	if err != nil {
		return nil, err
	}
	b, err := s.budgetOf(recipe, row)
	if err != nil {
		return nil, err
	}
	return &metering{row: row, prior: usageOf(row), budget: b, step: r.Step}, nil
}

// track starts metering proc, when it runs on this machine.
func (s *Scheduler) track(m *metering, proc Process, start time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.start = start
	if mp, ok := proc.(Metered); ok {
		m.tracker = s.opts.Meter.Track(mp.Pid(), start)
	}
}

// meterLoop samples the attempt every MeterEvery, stores the run's usage,
// and kills the worker when a limit is reached, until done closes; it
// closes exited when it returns, so the final usage is stored after its
// last sample.
func (s *Scheduler) meterLoop(ctx context.Context, id string, a *active, done <-chan struct{}, exited chan<- struct{}) {
	defer s.wg.Done()
	defer close(exited)
	t := time.NewTicker(s.opts.MeterEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		m := a.meter
		m.mu.Lock()
		step := m.step
		m.mu.Unlock()
		u := m.usage(s.opts.Now())
		s.saveUsage(context.WithoutCancel(ctx), m, u)
		if e := m.check(u, step); e != nil {
			s.stopAtLimit(id, a, e)
		}
	}
}

// onMessage updates the meter from a worker message and applies the
// step limit at checkpoints, so the checkpoint at the limit is kept.
func (s *Scheduler) onMessage(id string, a *active, msg Message) {
	m := a.meter
	m.mu.Lock()
	if msg.Step > 0 {
		m.step = max(m.step, msg.Step)
	}
	m.total = max(m.total, msg.TotalSteps)
	if msg.FLOPs > 0 {
		m.flops = max(m.flops, msg.FLOPs)
		if m.tracker != nil {
			m.tracker.SetFLOPs(msg.FLOPs)
		}
	}
	step, limit, total := m.step, m.budget.MaxSteps, m.total
	m.mu.Unlock()
	// A run whose last step is within the limit is not stopped there:
	// its training is done and what is left (evaluation, writing the
	// result) takes no steps.
	done := total > 0 && step >= total && total <= limit
	if limit > 0 && !done && (msg.Type == MsgCheckpoint && step >= limit || msg.Type == MsgProgress && step > limit) {
		if e := m.check(m.usage(s.opts.Now()), step); e != nil {
			s.stopAtLimit(id, a, e)
		}
	}
}

func (s *Scheduler) stopAtLimit(id string, a *active, e *meter.Exceeded) {
	s.opts.Logger.Info("run reached its budget; stopping it", "run", id, "limit", e.Limit, "value", e.Value, "measured", e.Measured)
	s.mu.Lock()
	if a.proc != nil {
		a.proc.Kill()
	}
	s.mu.Unlock()
}

// finishMetering records the attempt's final usage (rusage of the exited
// worker) and returns the run's usage.
func (s *Scheduler) finishMetering(ctx context.Context, a *active) meter.Usage {
	m := a.meter
	now := s.opts.Now()
	u := m.prior.Add(m.unmetered(now))
	if m.tracker != nil {
		cpu, rss := 0.0, int64(0)
		if mp, ok := a.proc.(Metered); ok {
			cpu, rss, _ = mp.ExitUsage()
		}
		u = m.prior.Add(m.tracker.Finish(now, cpu, rss))
	}
	s.saveUsage(ctx, m, u)
	return u
}

func (s *Scheduler) saveUsage(ctx context.Context, m *metering, u meter.Usage) {
	m.mu.Lock()
	row := withUsage(m.row, u)
	if m.exceeded != nil {
		row.Exceeded, _ = json.Marshal(m.exceeded)
	}
	row.UpdatedAt = s.opts.Now().UTC()
	m.mu.Unlock()
	if _, err := s.opts.Store.SaveRunUsage(ctx, row); err != nil {
		s.opts.Logger.Error("save run usage", "run", row.RunID, "err", err)
	}
}

// budgetExceeded moves a run from `from` to budget_exceeded: the message
// and event name the limit, its value and the measured value; the last
// checkpoint stays.
func (s *Scheduler) budgetExceeded(ctx context.Context, id string, from store.RunState, e *meter.Exceeded, u meter.Usage) error {
	r, err := s.opts.Store.Run(ctx, id)
	if err != nil {
		return err
	}
	msg := e.Error()
	if r.Checkpoint != "" {
		msg += fmt.Sprintf("; checkpoint at step %d kept", r.Step)
	}
	msg += "; raise the budget to resume (tailor run resume " + id + " --max-…)"
	now := s.opts.Now().UTC()
	data, _ := json.Marshal(map[string]any{"limit": e.Limit, "value": e.Value, "measured": e.Measured, "energy_source": u.EnergySource,
		"checkpoint": r.Checkpoint, "step": r.Step, "usage": u})
	ev := store.Event{Type: EventBudgetExceeded, Subject: id, Time: now, Data: data}
	return s.transition(ctx, id, from, store.RunBudgetExceeded, store.RunUpdate{Error: &msg, FinishedAt: &now}, msg, ev)
}

// RaiseBudget raises the budget of a run stopped at its budget and queues
// it to resume from its last checkpoint. Fields of b that are set replace
// the recipe's (and any raised before); the run keeps its key and recipe,
// so lineage still names the recipe it was started with, and the raise is
// recorded in the run's usage, its log and a run.budget.raised event.
func (s *Scheduler) RaiseBudget(ctx context.Context, id string, b meter.Budget) (store.Run, error) {
	if b.IsZero() {
		return store.Run{}, errs.Invalid("run %s: raise which limit? set max_steps, max_duration, max_cost_usd or max_energy_kwh", id)
	}
	r, err := s.opts.Store.Run(ctx, id)
	if err != nil {
		return store.Run{}, err
	}
	if r.State != store.RunBudgetExceeded {
		return store.Run{}, errs.Conflict("run %s is %s, not budget_exceeded; only a run stopped at its budget resumes", id, r.State)
	}
	rv, err := s.opts.Store.RecipeVersionByID(ctx, r.RecipeID)
	if err != nil {
		return store.Run{}, err
	}
	row, err := s.usageRow(ctx, r)
	if err != nil {
		return store.Run{}, err
	}
	var raised meter.Budget
	if len(row.Budget) > 0 {
		if err := json.Unmarshal(row.Budget, &raised); err != nil {
			return store.Run{}, fmt.Errorf("run %s: stored budget: %w", id, err)
		}
	}
	raised = raised.Override(b)
	row.Budget, _ = json.Marshal(raised)
	eff, err := s.budgetOf(rv.Normalized, row)
	if err != nil {
		return store.Run{}, err
	}
	if e := eff.Check(usageOf(row), r.Step); e != nil {
		return store.Run{}, errs.Invalid("run %s: the raised budget is still reached (%v); raise %s above the measured value", id, e, e.Limit)
	}
	row.Exceeded = nil
	row.UpdatedAt = s.opts.Now().UTC()
	if _, err := s.opts.Store.SaveRunUsage(ctx, row); err != nil {
		return store.Run{}, err
	}
	msg := "budget raised to " + eff.String() + "; queued to resume"
	if r.Checkpoint != "" {
		msg += fmt.Sprintf(" from the checkpoint at step %d", r.Step)
	}
	data, _ := json.Marshal(map[string]any{"budget": eff, "checkpoint": r.Checkpoint, "step": r.Step, "actor": store.ActorFrom(ctx)})
	ev := store.Event{Type: EventBudgetRaised, Subject: id, Time: s.opts.Now().UTC(), Data: data}
	empty, zero := "", time.Time{}
	if err := s.transition(ctx, id, store.RunBudgetExceeded, store.RunQueued, store.RunUpdate{Error: &empty, FinishedAt: &zero}, msg, ev); err != nil {
		return store.Run{}, err
	}
	return s.queued(ctx, id)
}
