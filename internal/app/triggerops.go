package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/trigger"
)

// triggerRunPoll is how often a trigger action waiting for a run looks at it.
const triggerRunPoll = 250 * time.Millisecond

// webhookTimeout bounds one webhook delivery.
const webhookTimeout = 10 * time.Second

// triggerActor is who trigger actions move aliases as, and the actor the
// audit log names for every change the trigger loop makes.
const triggerActor = "tailor-trigger"

// triggerOps carries out trigger actions with the App's own operations.
type triggerOps struct{ a *App }

var _ trigger.Ops = (*triggerOps)(nil)

func (o *triggerOps) StartRun(ctx context.Context, recipe, base string) (trigger.RunInfo, error) {
	r, err := o.a.StartRun(ctx, api.RunStart{Recipe: recipe, Base: base})
	return trigger.RunInfo{ID: r.ID, State: r.State, Error: r.Error}, err
}

func (o *triggerOps) StartEval(ctx context.Context, model, dataset, split string) (trigger.RunInfo, error) {
	r, err := o.a.StartEval(ctx, api.EvalStart{Model: model, Dataset: dataset, Split: split})
	return trigger.RunInfo{ID: r.ID, State: r.State, Error: r.Error}, err
}

// WaitRun polls the run until it ends; a succeeded training run's model
// version is registered here if the scheduler's callback has not yet.
func (o *triggerOps) WaitRun(ctx context.Context, id string) (trigger.RunInfo, error) {
	a := o.a
	t := time.NewTicker(triggerRunPoll)
	defer t.Stop()
	for {
		r, err := a.store.Run(ctx, id)
		if err != nil {
			return trigger.RunInfo{ID: id}, err
		}
		if r.State.Terminal() {
			return o.runInfo(ctx, r)
		}
		select {
		case <-ctx.Done():
			return trigger.RunInfo{ID: id, State: string(r.State)}, ctx.Err()
		case <-t.C:
		}
	}
}

func (o *triggerOps) runInfo(ctx context.Context, r store.Run) (trigger.RunInfo, error) {
	a := o.a
	ri := trigger.RunInfo{ID: r.ID, State: string(r.State), Error: r.Error}
	if r.State != store.RunSucceeded {
		return ri, nil
	}
	var in run.Inputs
	if err := json.Unmarshal(r.Inputs, &in); err != nil {
		return ri, fmt.Errorf("run %s inputs: %w", r.ID, err)
	}
	ri.Dataset = in.Dataset.Name + "@" + in.Dataset.ID
	if in.Base.ID != "" {
		ri.Base = fmt.Sprintf("%s@v%d", in.Base.Name, in.Base.Version)
	}
	if in.Kind == run.KindEval {
		ri.Model, ri.VersionID = in.Model.Name, in.Model.ID
		if mv, err := a.store.ModelVersionByID(ctx, in.Model.ID); err == nil {
			ri.Model, ri.Version = mv.Name, mv.Version // in.Model.Name is the address asked for
			if b := a.trainedOn(ctx, mv); b != "" {
				ri.Base = b
			}
		}
		reps, err := a.store.EvalReports(ctx, in.Model.ID)
		if err != nil {
			return ri, err
		}
		// The newest report of this run's dataset version and split.
		for i := len(reps) - 1; i >= 0; i-- {
			if rep := reps[i]; rep.DatasetID == in.Dataset.ID && rep.Split == in.Split {
				ri.Verdict = string(rep.Verdict)
				ri.Metrics, err = a.reportMetrics(ctx, rep.Digest)
				return ri, err
			}
		}
		return ri, nil
	}
	find := func() (bool, error) {
		vs, err := a.store.ModelVersions(ctx, in.Recipe.Name)
		if err != nil {
			return false, err
		}
		for _, v := range vs {
			if v.RunID == r.ID {
				ri.Model, ri.Version, ri.VersionID = v.Name, v.Version, v.ID
				return true, nil
			}
		}
		return false, nil
	}
	if ok, err := find(); ok || err != nil {
		return ri, err
	}
	if err := a.registerRun(ctx, r); err != nil { // idempotent
		return ri, err
	}
	_, err := find()
	return ri, err
}

// trainedOn names the base mv's training run started from ("name@vN"), or
// "" when unknown. For an adapter it is mv's base; a full fine-tune is its
// own base, so the comparison tables name the base it was trained on.
func (a *App) trainedOn(ctx context.Context, mv store.ModelVersion) string {
	if mv.RunID == "" {
		return ""
	}
	r, err := a.store.Run(ctx, mv.RunID)
	if err != nil {
		return ""
	}
	var in run.Inputs
	if json.Unmarshal(r.Inputs, &in) != nil || in.Base.ID == "" {
		return ""
	}
	return fmt.Sprintf("%s@v%d", in.Base.Name, in.Base.Version)
}

// reportMetrics reads the scalar metrics of a stored eval report's
// all-records slice.
func (a *App) reportMetrics(ctx context.Context, digest string) (map[string]float64, error) {
	var rep eval.Report
	if err := a.readJSON(ctx, blob.Digest(digest), &rep); err != nil {
		return nil, fmt.Errorf("eval report %s: %w", digest, err)
	}
	all, ok := rep.Slice("all")
	if !ok {
		return nil, nil
	}
	out := map[string]float64{}
	for _, m := range eval.ScalarMetrics {
		if v, ok := all.Value(m); ok {
			out[m] = v
		}
	}
	return out, nil
}

func (o *triggerOps) Promote(ctx context.Context, model string, version int, alias, reason string) (string, error) {
	p, err := o.a.Promote(store.WithActor(ctx, triggerActor), model, api.Promote{Version: fmt.Sprintf("v%d", version), Alias: alias, Reason: reason})
	if err != nil {
		return "", err
	}
	if p.Approval != nil {
		return p.Approval.ID, nil
	}
	return "", nil
}

func (o *triggerOps) Rollback(ctx context.Context, model, alias, reason string) (string, error) {
	m, err := o.a.Rollback(store.WithActor(ctx, triggerActor), model, api.Rollback{Alias: alias, Reason: reason})
	return m.To, err
}

func (o *triggerOps) Webhook(ctx context.Context, url string, allowPrivate bool, body []byte) (int, error) {
	return trigger.Deliver(ctx, net.DefaultResolver, trigger.WebhookClient(allowPrivate, webhookTimeout), url, allowPrivate, body)
}

// scheduleLoop fires schedule triggers on their cron until ctx ends: at
// each due tick it claims one firing, keyed by the tick, so a restart
// never fires a tick twice. Ticks missed while the server was down
// collapse into one firing for the latest of them (within a day).
func (t *triggers) scheduleLoop(ctx context.Context) {
	for {
		next, err := t.scheduleStep(ctx)
		if err != nil && ctx.Err() == nil {
			t.a.logger.Error("triggers: schedule", "err", err)
		}
		wait := time.Minute
		if !next.IsZero() {
			wait = min(max(next.Sub(t.a.opts.Now()), time.Second), time.Minute)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-t.tickCh:
			timer.Stop()
		}
	}
}

// scheduleStep claims the due tick of every schedule trigger of every
// project, in its project, and returns the earliest next tick (zero when
// none).
func (t *triggers) scheduleStep(ctx context.Context) (time.Time, error) {
	var earliest time.Time
	err := store.InProjects(ctx, t.a.store, func(ctx context.Context, _ string) error {
		next, err := t.scheduleIn(ctx)
		if !next.IsZero() && (earliest.IsZero() || next.Before(earliest)) {
			earliest = next
		}
		return err
	})
	return earliest, err
}

// scheduleIn is scheduleStep for the triggers of ctx's project.
func (t *triggers) scheduleIn(ctx context.Context) (time.Time, error) {
	a := t.a
	specs, err := a.triggerSpecs(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now := a.opts.Now().UTC()
	var earliest time.Time
	for _, s := range specs {
		if s.spec.On.Event != trigger.OnSchedule {
			continue
		}
		c, err := trigger.ParseCron(s.spec.On.Cron)
		if err != nil {
			return earliest, err
		}
		since := s.since
		last, err := a.store.Firings(ctx, store.FiringFilter{Trigger: s.version.Name, Last: 1})
		if err != nil {
			return earliest, err
		}
		if len(last) == 1 && last[0].Tick.After(since) {
			since = last[0].Tick
		}
		if tick, ok := dueTick(c, since, now); ok {
			t.claimRetrying(ctx, s, 0, trigger.OnSchedule, tick, fmt.Sprintf("cron %q due at %s", s.spec.On.Cron, tick.Format(time.RFC3339)))
			since = tick
		}
		if n := c.Next(later(since, now)); !n.IsZero() && (earliest.IsZero() || n.Before(earliest)) {
			earliest = n
		}
	}
	return earliest, nil
}

// dueTick is the latest tick of c after since and at or before now,
// looking back at most a day.
func dueTick(c *trigger.Cron, since, now time.Time) (time.Time, bool) {
	from := later(since, now.Add(-24*time.Hour))
	var due time.Time
	for n := c.Next(from); !n.IsZero() && !n.After(now); n = c.Next(n) {
		due = n
	}
	return due, !due.IsZero()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
