package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/meter"
	"github.com/tailor-ml/tailor/internal/store"
)

// Events the scheduler appends.
const (
	// EventStateChanged is every run state change, queued included.
	EventStateChanged = "run.state.changed"
	// EventCancelRequested asks the replica that supervises a running run
	// (the leader) to cancel it; Data is {"actor": who asked}.
	EventCancelRequested = "run.cancel.requested"
)

// Publisher receives events after they are committed (internal/bus.Bus).
type Publisher interface {
	Publish(events ...store.Event)
}

// Options configure a Scheduler. Zero values take the documented defaults.
type Options struct {
	Store     store.Store
	Publisher Publisher
	Executor  Executor
	// Concurrency is how many runs execute at once (default 1).
	Concurrency int
	// Blob (the artifact store's address) and WorkDir are handed to
	// workers in their Spec.
	Blob    string
	WorkDir string
	Logger  *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnSucceeded, when set, is called after a run's success is committed
	// (the application registers the adapter as a model version).
	OnSucceeded func(ctx context.Context, r store.Run)
	// Failpoint, when set, is called at named points ("run.checkpointed":
	// a checkpoint recorded) for fault-injection tests.
	Failpoint func(name string)
	// Meter meters workers (default meter.New with its defaults).
	Meter *meter.Meter
	// MeterEvery is how often a running worker is metered, its usage
	// stored and its budget checked (default 1 s).
	MeterEvery time.Duration
	// BudgetOf returns the budget of a normalized recipe (nil: no budget).
	BudgetOf func(recipe []byte) (meter.Budget, error)
	// CancelWait is how long Cancel waits for the worker of a running run
	// to stop (default 10 s). For a run another replica supervises, it
	// then records the cancel itself (see Cancel).
	CancelWait time.Duration
	// MaxAttempts bounds how often a run whose worker was lost
	// (ErrWorkerLost) is started again (default 5 attempts in all).
	MaxAttempts int
}

// Scheduler starts queued runs and supervises their workers.
type Scheduler struct {
	opts    Options
	wake    chan struct{}
	mu      sync.Mutex
	running map[string]*active
	wg      sync.WaitGroup
}

// active is a run this scheduler launched; guarded by Scheduler.mu.
type active struct {
	proc     Process // nil while the worker is starting
	canceled bool
	// canceledBy is the actor who canceled it (store.ActorFrom of the
	// Cancel call), so the audit log names them, not the scheduler.
	canceledBy string
	meter      *metering
	attempt    int
}

// New returns a scheduler; call Start to begin executing runs.
func New(opts Options) *Scheduler {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Meter == nil {
		opts.Meter = meter.New(meter.Options{})
	}
	if opts.MeterEvery <= 0 {
		opts.MeterEvery = time.Second
	}
	if opts.CancelWait <= 0 {
		opts.CancelWait = 10 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	return &Scheduler{opts: opts, wake: make(chan struct{}, 1), running: map[string]*active{}}
}

// Start re-queues runs left running by a previous server process (or by a
// previous leader: among replicas only the leader runs a Scheduler, and
// starts it when it begins to lead, so every running run is one nobody
// supervises any more), then starts queued runs until ctx ends: when woken
// (Wake: a run queued here, or an event of a run queued on another
// replica) and every 2 s. It returns at once; Wait blocks until the loop
// and every supervised worker have finished. Start may be called again
// after Wait returned, for the next leadership term. It works on the runs
// of every project (store.InProjects), each in its own project.
func (s *Scheduler) Start(ctx context.Context) error {
	err := store.InProjects(ctx, s.opts.Store, func(ctx context.Context, project string) error {
		stale, err := s.opts.Store.Runs(ctx, store.RunFilter{States: []store.RunState{store.RunRunning}})
		if err != nil {
			return fmt.Errorf("recover runs of project %s: %w", project, err)
		}
		for _, r := range stale {
			msg := "server restarted or leader changed; run re-queued"
			if r.Checkpoint != "" {
				msg = fmt.Sprintf("server restarted or leader changed; resuming from checkpoint at step %d", r.Step)
			}
			if err := s.transition(ctx, r.ID, store.RunRunning, store.RunQueued, store.RunUpdate{}, msg); err != nil {
				return fmt.Errorf("recover run %s: %w", r.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go s.loop(ctx)
	s.Wake()
	return nil
}

// Wait blocks until the scheduler loop and all supervisors have returned.
func (s *Scheduler) Wait() { s.wg.Wait() }

// Wake makes the scheduler look for queued runs now.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Submit stores a new queued run and wakes the scheduler.
func (s *Scheduler) Submit(ctx context.Context, r store.Run) (store.Run, error) {
	r.State = store.RunQueued
	r.CreatedAt = s.opts.Now().UTC()
	evs, err := s.opts.Store.CreateRun(ctx, r, []store.Event{s.stateEvent(r.ID, "", store.RunQueued, 0, "")})
	if err != nil {
		return store.Run{}, fmt.Errorf("queue run: %w", err)
	}
	s.publish(evs)
	s.newUsage(ctx, r)
	return s.queued(ctx, r.ID)
}

// queued reads run id back as the caller's write left it, queued, and
// then wakes the scheduler. Read after the wake, the run could already be
// running, and what the caller answers would depend on that race.
func (s *Scheduler) queued(ctx context.Context, id string) (store.Run, error) {
	r, err := s.opts.Store.Run(ctx, id)
	s.Wake()
	return r, err
}

// SubmitOnce is Submit unless a queued, running or succeeded run already
// has r.Key: then it returns that run and false, atomically, so concurrent
// starts of one key make one run.
func (s *Scheduler) SubmitOnce(ctx context.Context, r store.Run) (store.Run, bool, error) {
	r.State = store.RunQueued
	r.CreatedAt = s.opts.Now().UTC()
	got, created, evs, err := s.opts.Store.CreateRunOnce(ctx, r, []store.Event{s.stateEvent(r.ID, "", store.RunQueued, 0, "")})
	if err != nil {
		return store.Run{}, false, fmt.Errorf("queue run: %w", err)
	}
	if !created {
		return got, false, nil
	}
	s.publish(evs)
	s.newUsage(ctx, r)
	got, err = s.queued(ctx, r.ID)
	return got, true, err
}

// Cancel stops a queued or running run, or gives up a run stopped at its
// budget (its checkpoint is then released to gc like any canceled run's).
// Canceling a finished run is a conflict.
//
// A running run that this scheduler does not supervise runs on another
// replica, the leader: Cancel appends EventCancelRequested, which the
// leader's CancelRequested acts on, and waits CancelWait for the run to
// end. When it has not (no leader supervises it: the leader died, or is
// cut off), Cancel records the cancel itself, compare-and-set from
// running: a new leader then does not resume the run, and a late result
// from a worker still alive is refused by the same compare-and-set.
func (s *Scheduler) Cancel(ctx context.Context, id string) (store.Run, error) {
	r, err := s.opts.Store.Run(ctx, id)
	if err != nil {
		return store.Run{}, err
	}
	switch r.State {
	case store.RunQueued:
		err := s.transition(ctx, id, store.RunQueued, store.RunCanceled, store.RunUpdate{FinishedAt: ptr(s.opts.Now().UTC())}, "canceled before it started")
		if errors.Is(err, errs.ErrConflict) {
			return s.Cancel(ctx, id) // it started meanwhile
		}
		if err != nil {
			return store.Run{}, err
		}
	case store.RunBudgetExceeded:
		if err := s.transition(ctx, id, store.RunBudgetExceeded, store.RunCanceled, store.RunUpdate{}, "canceled; it had stopped at its budget"); err != nil {
			return store.Run{}, err
		}
	case store.RunRunning:
		s.mu.Lock()
		a := s.running[id]
		if a != nil {
			a.canceled, a.canceledBy = true, store.ActorFrom(ctx)
			if a.proc != nil { // else launch kills it as soon as it starts
				a.proc.Kill()
			}
		}
		s.mu.Unlock()
		if a == nil {
			// Another replica (the leader) supervises it: ask it through
			// the store and the bus, and wait for it below.
			data, _ := json.Marshal(map[string]string{"actor": store.ActorFrom(ctx)})
			evs, err := s.opts.Store.AppendEvents(ctx, []store.Event{{Type: EventCancelRequested, Subject: id, Time: s.opts.Now().UTC(), Data: data}})
			if err != nil {
				return store.Run{}, err
			}
			s.publish(evs)
		}
		// The supervisor records the canceled state when the worker exits.
		for deadline := time.Now().Add(s.opts.CancelWait); ; time.Sleep(20 * time.Millisecond) {
			r, err = s.opts.Store.Run(ctx, id)
			if err != nil || r.State.Terminal() {
				return r, err
			}
			if time.Now().After(deadline) {
				break
			}
		}
		if a == nil {
			msg := fmt.Sprintf("canceled; no replica confirmed the cancel within %s, so it was recorded without one", s.opts.CancelWait)
			err := s.transition(ctx, id, store.RunRunning, store.RunCanceled, store.RunUpdate{FinishedAt: ptr(s.opts.Now().UTC())}, msg)
			if err != nil && !errors.Is(err, errs.ErrConflict) { // a conflict: it ended meanwhile
				return store.Run{}, err
			}
		}
	default:
		return store.Run{}, errs.Conflict("run %s already %s; nothing to cancel", id, r.State)
	}
	return s.opts.Store.Run(ctx, id)
}

// Supervises reports whether this scheduler runs the worker of run id.
func (s *Scheduler) Supervises(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[id] != nil
}

// CancelRequested handles an EventCancelRequested committed by any
// replica: when this scheduler supervises the run, it kills its worker and
// records the cancel under the actor who asked. It reports whether it did.
func (s *Scheduler) CancelRequested(e store.Event) bool {
	var d struct{ Actor string }
	_ = json.Unmarshal(e.Data, &d)
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.running[e.Subject]
	if a == nil || a.canceled {
		return false
	}
	a.canceled, a.canceledBy = true, d.Actor
	if a.proc != nil {
		a.proc.Kill()
	}
	return true
}

// newUsage stores a new run's usage row with the project it was started in.
func (s *Scheduler) newUsage(ctx context.Context, r store.Run) {
	if _, err := s.opts.Store.SaveRunUsage(ctx, newUsageRow(ctx, r)); err != nil {
		s.opts.Logger.Error("save run usage", "run", r.ID, "err", err)
	}
}

func (s *Scheduler) loop(ctx context.Context) {
	defer s.wg.Done()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		if err := s.launchQueued(ctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.Error("launch queued runs", "err", err)
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for _, a := range s.running {
				if a.proc != nil {
					a.proc.Kill()
				}
			}
			s.mu.Unlock()
			return
		case <-s.wake:
		case <-tick.C:
		}
	}
}

// launchQueued starts queued runs of every project, oldest first over
// all of them (ties in project name order, then queue order), each in its
// own project, while slots are free.
func (s *Scheduler) launchQueued(ctx context.Context) error {
	type queuedRun struct {
		ctx     context.Context
		project string
		run     store.Run
	}
	var queued []queuedRun
	err := store.InProjects(ctx, s.opts.Store, func(ctx context.Context, project string) error {
		rs, err := s.opts.Store.Runs(ctx, store.RunFilter{States: []store.RunState{store.RunQueued}})
		for _, r := range rs {
			queued = append(queued, queuedRun{ctx, project, r})
		}
		return err
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(queued, func(a, b queuedRun) int {
		return a.run.CreatedAt.Compare(b.run.CreatedAt)
	})
	for _, q := range queued {
		s.mu.Lock()
		free := len(s.running) < s.opts.Concurrency
		s.mu.Unlock()
		if !free {
			return nil
		}
		if err := s.launch(q.ctx, q.run); err != nil {
			s.opts.Logger.Error("launch run", "project", q.project, "run", q.run.ID, "err", err)
		}
	}
	return nil
}

func (s *Scheduler) launch(ctx context.Context, r store.Run) error {
	spec, err := s.spec(ctx, r)
	if err != nil {
		return s.fail(ctx, r.ID, store.RunQueued, err)
	}
	m, err := s.startMetering(ctx, r, spec.Recipe)
	if err != nil {
		return s.fail(ctx, r.ID, store.RunQueued, err)
	}
	if e := m.budget.Check(m.prior, r.Step); e != nil {
		// Earlier attempts used the budget up: stop before starting.
		return s.budgetExceeded(ctx, r.ID, store.RunQueued, e, m.prior)
	}
	now := s.opts.Now().UTC()
	attempt := r.Attempt + 1
	u := store.RunUpdate{Attempt: &attempt}
	if r.StartedAt.IsZero() {
		u.StartedAt = &now
	}
	msg := fmt.Sprintf("attempt %d started", attempt)
	if spec.Resume != "" {
		msg = fmt.Sprintf("attempt %d resuming from checkpoint at step %d", attempt, r.Step)
	}
	// Register the run before it is marked running, so a Cancel that sees
	// the running state always finds it here (its process may not exist yet).
	a := &active{meter: m, attempt: attempt}
	spec.Attempt = attempt
	s.mu.Lock()
	s.running[r.ID] = a
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		delete(s.running, r.ID)
		s.mu.Unlock()
	}
	if err := s.transition(ctx, r.ID, store.RunQueued, store.RunRunning, u, msg); err != nil {
		forget()
		if errors.Is(err, errs.ErrConflict) {
			return nil // canceled or taken meanwhile
		}
		return err
	}
	proc, err := s.opts.Executor.Start(ctx, spec)
	if err != nil {
		forget()
		return s.fail(ctx, r.ID, store.RunRunning, err)
	}
	s.track(m, proc, s.opts.Now())
	s.mu.Lock()
	a.proc = proc
	if a.canceled {
		proc.Kill() // canceled while starting; supervise records it
	}
	s.mu.Unlock()
	s.wg.Add(1)
	go s.supervise(ctx, r.ID, a)
	return nil
}

func (s *Scheduler) spec(ctx context.Context, r store.Run) (Spec, error) {
	var in Inputs
	if err := json.Unmarshal(r.Inputs, &in); err != nil {
		return Spec{}, fmt.Errorf("run %s has unreadable inputs: %w", r.ID, err)
	}
	rv, err := s.opts.Store.RecipeVersionByID(ctx, r.RecipeID)
	if err != nil {
		return Spec{}, err
	}
	return Spec{RunID: r.ID, Key: r.Key, Inputs: in, Recipe: rv.Normalized, Resume: r.Checkpoint,
		Blob: s.opts.Blob, WorkDir: s.opts.WorkDir}, nil
}

// supervise records a worker's messages and its exit.
func (s *Scheduler) supervise(ctx context.Context, id string, a *active) {
	defer s.wg.Done()
	done, exited := make(chan struct{}), make(chan struct{})
	s.wg.Add(1)
	go s.meterLoop(ctx, id, a, done, exited)
	var result *Message
	for m := range a.proc.Messages() {
		if a.meter.stopped() != nil {
			continue // stopped at a limit: what the worker did past it is not recorded
		}
		s.onMessage(id, a, m)
		if m.Type == MsgResult {
			mm := m
			result = &mm
			continue
		}
		if err := s.record(context.WithoutCancel(ctx), id, m); err != nil {
			s.opts.Logger.Error("record worker message", "run", id, "err", err)
		}
	}
	werr := a.proc.Wait()
	close(done)
	<-exited
	usage := s.finishMetering(context.WithoutCancel(ctx), a)
	exceeded := a.meter.stopped()
	s.mu.Lock()
	delete(s.running, id)
	canceled, canceledBy := a.canceled, a.canceledBy
	s.mu.Unlock()
	defer s.Wake()
	bg := context.WithoutCancel(ctx)
	now := s.opts.Now().UTC()
	switch {
	case ctx.Err() != nil:
		// The server is shutting down: leave the run running; the next
		// server re-queues it and it resumes from its checkpoint.
		return
	case canceled:
		by := bg
		if canceledBy != "" {
			by = store.WithActor(bg, canceledBy)
		}
		_ = s.transition(by, id, store.RunRunning, store.RunCanceled, store.RunUpdate{FinishedAt: &now}, "canceled")
	case exceeded != nil && (werr != nil || result == nil):
		if err := s.budgetExceeded(bg, id, store.RunRunning, exceeded, usage); err != nil {
			s.opts.Logger.Error("record budget stop", "run", id, "err", err)
		}
	case errors.Is(werr, ErrWorkerLost) && a.attempt < s.opts.MaxAttempts:
		if err := s.requeueLost(bg, id, a.attempt, werr); err != nil {
			s.opts.Logger.Error("re-queue run after its worker was lost", "run", id, "err", err)
		}
	case werr != nil:
		_ = s.fail(bg, id, store.RunRunning, werr)
	case result == nil:
		_ = s.fail(bg, id, store.RunRunning, errors.New("worker exited without a result"))
	default:
		u := store.RunUpdate{Result: &result.Digest, Metrics: result.Metrics, FinishedAt: &now}
		if result.Step > 0 {
			u.Step = &result.Step
		}
		if err := s.transition(bg, id, store.RunRunning, store.RunSucceeded, u, "succeeded: result "+result.Digest); err != nil {
			s.opts.Logger.Error("record run success", "run", id, "err", err)
			return
		}
		if s.opts.OnSucceeded != nil {
			if r, err := s.opts.Store.Run(bg, id); err == nil {
				s.opts.OnSucceeded(bg, r)
			}
		}
	}
}

func (s *Scheduler) record(ctx context.Context, id string, m Message) error {
	var u store.RunUpdate
	switch m.Type {
	case MsgProgress:
		u.Step, u.TotalSteps = &m.Step, &m.TotalSteps
	case MsgCheckpoint:
		u.Step, u.Checkpoint = &m.Step, &m.Digest
	}
	if u.Step != nil {
		if _, _, err := s.opts.Store.UpdateRun(ctx, id, u, nil); err != nil {
			return err
		}
	}
	line := logLine{Step: m.Step, TotalSteps: m.TotalSteps, Loss: m.Loss, LR: m.LR,
		TokensPerS: m.TokensPerS, ETASeconds: m.ETASeconds, Message: m.Message}
	if m.Type == MsgCheckpoint {
		line.Checkpoint = m.Digest
		line.Message = fmt.Sprintf("checkpoint at step %d", m.Step)
	}
	if err := s.log(ctx, id, line); err != nil {
		return err
	}
	if m.Type == MsgCheckpoint && s.opts.Failpoint != nil {
		s.opts.Failpoint("run.checkpointed")
	}
	return nil
}

// logLine is the JSON shape of a run log line (api.Progress on the wire).
type logLine struct {
	Step       int64   `json:"step,omitempty"`
	TotalSteps int64   `json:"total_steps,omitempty"`
	Loss       float64 `json:"loss,omitempty"`
	LR         float64 `json:"lr,omitempty"`
	TokensPerS float64 `json:"tokens_per_s,omitempty"`
	ETASeconds float64 `json:"eta_s,omitempty"`
	Message    string  `json:"message,omitempty"`
	State      string  `json:"state,omitempty"`
	Checkpoint string  `json:"checkpoint,omitempty"`
}

func (s *Scheduler) log(ctx context.Context, id string, l logLine) error {
	data, _ := json.Marshal(l)
	_, err := s.opts.Store.AppendRunLog(ctx, id, s.opts.Now().UTC(), data)
	return err
}

func (s *Scheduler) fail(ctx context.Context, id string, from store.RunState, cause error) error {
	msg := cause.Error()
	now := s.opts.Now().UTC()
	return s.transition(ctx, id, from, store.RunFailed, store.RunUpdate{Error: &msg, FinishedAt: &now}, "failed: "+msg)
}

// transition moves a run from one state to another (compare-and-set), logs
// the message, and publishes the committed state event.
func (s *Scheduler) transition(ctx context.Context, id string, from, to store.RunState, u store.RunUpdate, msg string, extra ...store.Event) error {
	u.IfState, u.State = &from, &to
	attempt := 0
	if u.Attempt != nil {
		attempt = *u.Attempt
	}
	errText := ""
	if u.Error != nil {
		errText = *u.Error
	}
	_, evs, err := s.opts.Store.UpdateRun(ctx, id, u, append([]store.Event{s.stateEvent(id, from, to, attempt, errText)}, extra...))
	if err != nil {
		return err
	}
	s.publish(evs)
	return s.log(ctx, id, logLine{State: string(to), Message: msg})
}

func (s *Scheduler) stateEvent(id string, from, to store.RunState, attempt int, errText string) store.Event {
	data, _ := json.Marshal(map[string]any{"from": from, "to": to, "attempt": attempt, "error": errText})
	return store.Event{Type: EventStateChanged, Subject: id, Time: s.opts.Now().UTC(), Data: data}
}

func (s *Scheduler) publish(evs []store.Event) {
	if s.opts.Publisher != nil && len(evs) > 0 {
		s.opts.Publisher.Publish(evs...)
	}
}

func ptr[T any](v T) *T { return &v }
