package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/trigger"
)

// specTrigger is the kind of trigger specs in the store.
const specTrigger = "trigger"

// Trigger events.
const (
	eventTriggerCreated = "trigger.version.created"
	eventTriggerFired   = "trigger.fired"
	eventTriggerSkipped = "trigger.skipped"
	eventActionDone     = "trigger.action.done"
	eventActionFailed   = "trigger.action.failed"
	eventTriggerDone    = "trigger.done"
)

// triggerCursorEvery: the cursor is saved after every event a trigger may
// react to, and after this many others (a restart handles at most these
// again, harmlessly: claims are idempotent).
const triggerCursorEvery = 256

// triggerRecheck is how often the dispatcher looks for firings to start
// even when nothing woke it (a safety net for a failed store call).
const triggerRecheck = 30 * time.Second

// ApplyTrigger parses, validates and stores a trigger spec; the same text
// again is the same version. Recipes it retrains must exist, and webhook
// targets must pass the address check now (they are checked again on
// every delivery).
func (a *App) ApplyTrigger(ctx context.Context, fileName string, src []byte) (api.TriggerApply, error) {
	if fileName == "" {
		fileName = "trigger.yaml"
	}
	s, err := trigger.ParseSpec(fileName, src)
	if err != nil {
		return api.TriggerApply{}, err
	}
	for i, act := range s.Do {
		switch {
		case act.Retrain != nil:
			if _, err := a.store.RecipeVersion(ctx, act.Retrain.Recipe, "latest"); err != nil {
				return api.TriggerApply{}, fmt.Errorf("%s: do[%d].retrain.recipe: %w (apply the recipe first)", fileName, i, err)
			}
		case act.Webhook != nil:
			err := trigger.CheckTarget(ctx, net.DefaultResolver, act.Webhook.URL, act.Webhook.AllowPrivate)
			if err != nil && !errors.Is(err, errs.ErrUnavailable) { // a name that does not resolve yet may later
				return api.TriggerApply{}, fmt.Errorf("%s: do[%d].webhook.url: %w", fileName, i, err)
			}
		}
	}
	norm, err := s.Normalize()
	if err != nil {
		return api.TriggerApply{}, err
	}
	v, created, err := a.putSpec(ctx, specTrigger, s.Name, norm, eventTriggerCreated, map[string]any{"event": s.On.Event})
	if created {
		a.triggers.wake()
	}
	return api.TriggerApply{Version: v, Created: created}, err
}

// activeTrigger is the newest version of one trigger, and when its first
// version was applied (it reacts to nothing older).
type activeTrigger = storedSpec[*trigger.Spec]

// triggerSpecs returns the newest version of every trigger, by name.
func (a *App) triggerSpecs(ctx context.Context) ([]activeTrigger, error) {
	return newestSpecs(ctx, a.store, specTrigger, trigger.ParseSpec)
}

// Triggers lists every trigger with a summary of its firings.
func (a *App) Triggers(ctx context.Context) ([]api.TriggerStatus, error) {
	specs, err := a.triggerSpecs(ctx)
	if err != nil {
		return nil, err
	}
	out := []api.TriggerStatus{}
	for _, s := range specs {
		st, err := a.triggerStatus(ctx, s.version, s.spec)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Trigger returns one trigger.
func (a *App) Trigger(ctx context.Context, name string) (api.TriggerStatus, error) {
	v, err := a.store.Spec(ctx, specTrigger, name, "latest")
	if err != nil {
		return api.TriggerStatus{}, err
	}
	s, err := trigger.ParseSpec(v.Name, specYAML(v.Normalized))
	if err != nil {
		return api.TriggerStatus{}, err
	}
	return a.triggerStatus(ctx, v, s)
}

func (a *App) triggerStatus(ctx context.Context, v store.SpecVersion, s *trigger.Spec) (api.TriggerStatus, error) {
	out := api.TriggerStatus{Spec: toAPISpec(v), Event: s.On.Event}
	fs, err := a.store.Firings(ctx, store.FiringFilter{Trigger: v.Name})
	if err != nil {
		return out, err
	}
	out.Firings = len(fs)
	for _, f := range fs {
		switch f.State {
		case store.FiringPending, store.FiringRunning:
			out.Running++
		case store.FiringSkipped:
			out.Skipped++
		case store.FiringFailed:
			out.Failed++
		}
	}
	if len(fs) > 0 {
		last := toAPIFiring(fs[len(fs)-1])
		out.Last = &last
	}
	return out, nil
}

// TriggerHistory lists a trigger's firings, oldest first.
func (a *App) TriggerHistory(ctx context.Context, name string) ([]api.Firing, error) {
	if _, err := a.store.Spec(ctx, specTrigger, name, "latest"); err != nil {
		return nil, err
	}
	fs, err := a.store.Firings(ctx, store.FiringFilter{Trigger: name})
	if err != nil {
		return nil, err
	}
	out := make([]api.Firing, len(fs))
	for i, f := range fs {
		out[i] = toAPIFiring(f)
	}
	return out, nil
}

func toAPIFiring(f store.Firing) api.Firing {
	out := api.Firing{Trigger: f.Trigger, EventSeq: f.EventSeq, Tick: f.Tick, EventType: f.EventType, SpecID: f.SpecID,
		SpecVersion: f.SpecVersion, State: string(f.State), Step: f.Step, Reason: f.Reason, Error: f.Error,
		CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt, Results: []api.ActionResult{}}
	_ = json.Unmarshal(f.Results, &out.Results) // trigger.Result is api.ActionResult
	return out
}

// triggers runs the triggers: it follows committed events from its stored
// cursor, claims a firing for every match (exactly once per trigger and
// event), fires schedule triggers on their cron, and executes firings step
// by step, each step's result stored before the next, up to each trigger's
// max_concurrent. A trigger acts in its own project: events are followed
// across every project and each is matched against the triggers of the
// project it happened in, and firings are dispatched per project, so a
// trigger in blue retrains blue's recipe.
type triggers struct {
	a        *App
	ops      trigger.Ops
	wakeCh   chan struct{}
	tickCh   chan struct{}
	mu       sync.Mutex
	active   map[firingKey]bool // executing in this process
	wg       sync.WaitGroup
	specs    map[string][]activeTrigger // cache by project; absent: load again
	unsaved  int                        // events handled since the cursor was saved
	lastSeen int64
	// listed, when set (tests), is called after dispatch has read the
	// firings it will act on.
	listed func([]store.Firing)
}

type firingKey struct {
	project string
	trigger string
	seq     int64
}

func newTriggers(a *App) *triggers {
	return &triggers{a: a, ops: &triggerOps{a: a}, wakeCh: make(chan struct{}, 1), tickCh: make(chan struct{}, 1),
		active: map[firingKey]bool{}}
}

// wake makes the dispatcher and the scheduler look again.
func (t *triggers) wake() {
	for _, ch := range []chan struct{}{t.wakeCh, t.tickCh} {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// start runs the event follower, the dispatcher and the schedule until
// ctx ends or the bus closes. The leader starts them anew in each of its
// terms (leader.go), from the stored cursor and firings.
func (t *triggers) start(ctx context.Context) {
	t.specs, t.unsaved, t.lastSeen = nil, 0, 0
	for _, loop := range []func(context.Context){t.follow, t.dispatchLoop, t.scheduleLoop} {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			loop(ctx)
		}()
	}
}

// wait waits for the loops and the executing firings to stop.
func (t *triggers) wait() { t.wg.Wait() }

// follow handles events of every project from the stored cursor (one
// cursor over the one event sequence) on until ctx ends or the bus closes;
// each event is handled in its own project.
func (t *triggers) follow(ctx context.Context) {
	a := t.a
	cursor, err := a.store.TriggerCursor(ctx)
	if errors.Is(err, errs.ErrNotFound) {
		cursor = 0 // never ran: every stored event, each trigger ignoring those older than itself
	} else if err != nil {
		a.logger.Error("triggers: read cursor; following new events only", "err", err)
		cursor = -1
	}
	bus.Follow(store.WithAllProjects(ctx), a.bus, a.store, a.logger, 256, cursor, func(e store.Event) {
		t.handle(store.WithProject(ctx, e.Project), e)
	})
	if t.lastSeen > 0 && t.unsaved > 0 {
		_ = a.store.SaveTriggerCursor(context.WithoutCancel(ctx), t.lastSeen)
	}
}

// handle claims the firings one event causes and moves the cursor past it.
func (t *triggers) handle(ctx context.Context, e store.Event) {
	a := t.a
	if e.Type == eventTriggerCreated {
		delete(t.specs, store.ProjectFrom(ctx))
	}
	relevant := false
	for _, typ := range trigger.EventTypes {
		relevant = relevant || e.Type == typ
	}
	if relevant {
		specs, err := t.loadSpecs(ctx)
		if err != nil {
			a.logger.Error("triggers: load specs", "err", err)
		}
		ev := trigger.Event{Seq: e.Seq, Type: e.Type, Subject: e.Subject, Time: e.Time, Data: e.Data}
		for _, s := range specs {
			if e.Time.Before(s.since) {
				continue // older than the trigger
			}
			if ok, reason := trigger.Match(s.spec, ev); ok {
				t.claimRetrying(ctx, s, e.Seq, e.Type, time.Time{}, reason)
			}
		}
	}
	t.lastSeen = e.Seq
	t.unsaved++
	if relevant || t.unsaved >= triggerCursorEvery {
		if err := a.store.SaveTriggerCursor(ctx, e.Seq); err != nil {
			if ctx.Err() == nil {
				a.logger.Warn("triggers: save cursor", "seq", e.Seq, "err", err)
			}
			return
		}
		t.unsaved = 0
	}
}

// loadSpecs returns the active triggers of ctx's project.
func (t *triggers) loadSpecs(ctx context.Context) ([]activeTrigger, error) {
	p := store.ProjectFrom(ctx)
	if specs, ok := t.specs[p]; ok {
		return specs, nil
	}
	specs, err := t.a.triggerSpecs(ctx)
	if err != nil {
		return nil, err
	}
	if t.specs == nil {
		t.specs = map[string][]activeTrigger{}
	}
	t.specs[p] = specs
	return specs, nil
}

// claimRetrying claims a firing, retrying a busy store a few times: the
// cursor moves past the event afterwards.
func (t *triggers) claimRetrying(ctx context.Context, s activeTrigger, seq int64, eventType string, tick time.Time, reason string) {
	for attempt := 0; ; attempt++ {
		err := t.claim(ctx, s, seq, eventType, tick, reason)
		if err == nil || ctx.Err() != nil {
			return
		}
		if attempt == 4 {
			t.a.logger.Error("triggers: claim firing; event not acted on", "trigger", s.version.Name, "event", seq, "err", err)
			return
		}
		t.a.logger.Warn("triggers: claim firing; retrying", "trigger", s.version.Name, "event", seq, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
}

// claim records that s fires on event seq (or schedule tick), in the same
// transaction as trigger.fired — or, within the debounce of its last
// firing or past its budget (triggerbudget.go), as skipped with the
// reason, with trigger.skipped. A claim of a key already claimed changes
// nothing.
func (t *triggers) claim(ctx context.Context, s activeTrigger, seq int64, eventType string, tick time.Time, reason string) error {
	a := t.a
	now := a.opts.Now().UTC()
	name := s.version.Name
	state, typ := store.FiringPending, eventTriggerFired
	if d := s.spec.DebounceDuration(); d > 0 {
		last, err := a.store.Firings(ctx, store.FiringFilter{Trigger: name, Last: 1,
			States: []store.FiringState{store.FiringPending, store.FiringRunning, store.FiringDone, store.FiringFailed}})
		if err != nil {
			return err
		}
		if len(last) == 1 && last[0].EventSeq != seq && now.Sub(last[0].CreatedAt) < d {
			state, typ = store.FiringSkipped, eventTriggerSkipped
			reason = fmt.Sprintf("debounced: %s; the trigger fired %s ago (event %d), within its debounce of %s",
				reason, now.Sub(last[0].CreatedAt).Round(time.Second), last[0].EventSeq, d)
		}
	}
	if b := s.spec.Limits.Budget; b != nil && state == store.FiringPending {
		e, err := a.triggerBudgetReached(ctx, name, b, now)
		if err != nil {
			return err
		}
		if e != nil {
			state, typ = store.FiringSkipped, eventTriggerSkipped
			reason = budgetSkipReason(reason, e, b)
		}
	}
	data := map[string]any{"trigger": name, "event_type": eventType, "spec_version": s.version.Version, "reason": reason}
	if seq > 0 {
		data["event_seq"] = seq
	}
	if !tick.IsZero() {
		data["tick"] = tick
	}
	f := store.Firing{Trigger: name, EventSeq: seq, Tick: tick, EventType: eventType, SpecID: s.version.ID, SpecVersion: s.version.Version,
		State: state, Reason: reason, Results: json.RawMessage(`[]`), CreatedAt: now, UpdatedAt: now}
	got, created, evs, err := a.store.ClaimFiring(ctx, f, []store.Event{a.event(typ, name, data)})
	if err != nil {
		return err
	}
	a.publish(evs)
	if created {
		a.logger.Info("trigger "+string(got.State), "trigger", name, "event", got.EventSeq, "reason", reason)
		if got.State == store.FiringPending {
			t.wakeDispatch()
		}
	}
	return nil
}

func (t *triggers) wakeDispatch() {
	select {
	case t.wakeCh <- struct{}{}:
	default:
	}
}

// dispatchLoop starts (and, after a restart, resumes) firings until ctx
// ends, then waits for the executing ones to stop.
func (t *triggers) dispatchLoop(ctx context.Context) {
	tk := time.NewTicker(triggerRecheck)
	defer tk.Stop()
	for {
		if err := t.dispatch(ctx); err != nil && ctx.Err() == nil {
			t.a.logger.Error("triggers: dispatch", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		case <-t.wakeCh:
		}
	}
}

// dispatch resumes every running firing not executing here, and starts
// pending ones, oldest first, while their trigger runs fewer than its
// max_concurrent: each project's in turn, in that project.
func (t *triggers) dispatch(ctx context.Context) error {
	return store.InProjects(ctx, t.a.store, func(ctx context.Context, _ string) error { return t.dispatchIn(ctx) })
}

// dispatchIn dispatches the firings of ctx's project.
func (t *triggers) dispatchIn(ctx context.Context) error {
	a := t.a
	fs, err := a.store.Firings(ctx, store.FiringFilter{States: []store.FiringState{store.FiringPending, store.FiringRunning}})
	if err != nil {
		return err
	}
	if t.listed != nil {
		t.listed(fs)
	}
	running := map[string]int{}
	for _, f := range fs {
		if f.State == store.FiringRunning {
			running[f.Trigger]++
		}
	}
	for _, f := range fs {
		key := firingKey{store.ProjectFrom(ctx), f.Trigger, f.EventSeq}
		// Claim the key, then read the firing again: fs may predate the
		// end of an execution that released the key since, and acting on
		// that stale copy would repeat its step. An execution releases the
		// key only after storing its last step, so this read sees it.
		t.mu.Lock()
		busy := t.active[key]
		t.active[key] = true
		t.mu.Unlock()
		if busy {
			continue
		}
		release := func() {
			t.mu.Lock()
			delete(t.active, key)
			t.mu.Unlock()
		}
		f, err := a.store.Firing(ctx, f.Trigger, f.EventSeq)
		if err != nil || (f.State != store.FiringPending && f.State != store.FiringRunning) {
			release()
			continue
		}
		spec, err := t.firingSpec(ctx, f)
		if err != nil {
			release()
			a.logger.Error("triggers: firing spec", "trigger", f.Trigger, "event", f.EventSeq, "err", err)
			continue
		}
		if f.State == store.FiringPending {
			if running[f.Trigger] >= spec.WithDefaults().Limits.MaxConcurrent {
				release()
				continue
			}
			next := f
			next.State, next.UpdatedAt = store.FiringRunning, a.opts.Now().UTC()
			if f, _, err = a.store.UpdateFiring(ctx, next, store.FiringPending, 0, nil); err != nil {
				release()
				a.logger.Warn("triggers: start firing", "trigger", f.Trigger, "event", f.EventSeq, "err", err)
				continue
			}
			running[f.Trigger]++
		} else {
			a.logger.Info("trigger firing resumed", "trigger", f.Trigger, "event", f.EventSeq, "step", f.Step)
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer func() {
				release()
				t.wakeDispatch()
			}()
			t.execute(ctx, f, spec)
		}()
	}
	return nil
}

// firingSpec is the spec version a firing matched.
func (t *triggers) firingSpec(ctx context.Context, f store.Firing) (*trigger.Spec, error) {
	v, err := t.a.store.Spec(ctx, specTrigger, f.Trigger, f.SpecID)
	if err != nil {
		return nil, err
	}
	return trigger.ParseSpec(v.Name, specYAML(v.Normalized))
}

// execute runs a running firing's actions from its current step. Each
// step's result is stored (compare-and-set on the step) with
// trigger.action.done or trigger.action.failed before the next starts; a
// step that waits stores its partial result (a run id) first. When ctx
// ends it stops where it is: the firing stays running and the next start
// resumes it at that step.
func (t *triggers) execute(ctx context.Context, f store.Firing, spec *trigger.Spec) {
	a := t.a
	evs, err := a.store.Events(ctx, f.EventSeq-1, 1)
	if err != nil || len(evs) == 0 || evs[0].Seq != f.EventSeq {
		a.logger.Error("triggers: read the firing's event", "trigger", f.Trigger, "event", f.EventSeq, "err", err)
		return
	}
	e := evs[0]
	var results []trigger.Result
	if err := json.Unmarshal(f.Results, &results); err != nil {
		a.logger.Error("triggers: firing results", "trigger", f.Trigger, "event", f.EventSeq, "err", err)
		return
	}
	ev := trigger.Event{Seq: e.Seq, Type: e.Type, Subject: e.Subject, Time: e.Time, Data: e.Data}
	for f.Step < len(spec.Do) {
		i := f.Step
		save := func(r trigger.Result) error {
			next := f
			rs := withResult(results, i, r)
			next.Results, _ = json.Marshal(rs)
			next.UpdatedAt = a.opts.Now().UTC()
			stored, _, err := a.store.UpdateFiring(ctx, next, store.FiringRunning, i, nil)
			if err != nil {
				return err
			}
			f, results = stored, rs
			return nil
		}
		r, err := trigger.Do(ctx, t.ops, spec, trigger.Firing{Trigger: f.Trigger, Event: ev, Results: results}, i, save)
		if err != nil && ctx.Err() != nil {
			return // interrupted by shutdown: resumed at step i on the next start
		}
		a.failpoint("trigger.acted")
		results = withResult(results, i, r)
		next := f
		next.Results, _ = json.Marshal(results)
		next.UpdatedAt = a.opts.Now().UTC()
		data := map[string]any{"trigger": f.Trigger, "event_seq": f.EventSeq, "step": i, "action": r.Action, "result": r}
		var events []store.Event
		if err != nil {
			next.State = store.FiringFailed
			next.Error = fmt.Sprintf("step %d (%s): %v", i, r.Action, err)
			events = append(events, a.event(eventActionFailed, f.Trigger, data),
				a.event(eventTriggerDone, f.Trigger, map[string]any{"trigger": f.Trigger, "event_seq": f.EventSeq, "state": next.State, "error": next.Error}))
		} else {
			next.Step = i + 1
			events = append(events, a.event(eventActionDone, f.Trigger, data))
			if next.Step == len(spec.Do) {
				next.State = store.FiringDone
				events = append(events, a.event(eventTriggerDone, f.Trigger, map[string]any{"trigger": f.Trigger, "event_seq": f.EventSeq, "state": next.State}))
			}
		}
		// A finished step is recorded even when shutdown began meanwhile
		// (Close waits for this), so a restart does not do it again.
		stored, evs, uerr := a.store.UpdateFiring(context.WithoutCancel(ctx), next, store.FiringRunning, i, events)
		if uerr != nil {
			a.logger.Error("triggers: record step", "trigger", f.Trigger, "event", f.EventSeq, "step", i, "err", uerr)
			return
		}
		a.publish(evs)
		f = stored
		if err != nil {
			a.logger.Warn("trigger firing failed", "trigger", f.Trigger, "event", f.EventSeq, "step", i, "action", r.Action, "err", err)
			return
		}
		a.logger.Info("trigger action done", "trigger", f.Trigger, "event", f.EventSeq, "step", i, "action", r.Action, "outcome", r.Outcome)
		if ctx.Err() != nil {
			return
		}
	}
}

func withResult(rs []trigger.Result, i int, r trigger.Result) []trigger.Result {
	out := append([]trigger.Result(nil), rs...)
	for len(out) <= i {
		out = append(out, trigger.Result{})
	}
	out[i] = r
	return out
}
