package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Result is what one action of a firing did: the API's ActionResult, so
// what the store keeps is what clients read. The caller stores it with
// the firing after every step, and also while a step waits (a retrain
// with its run id), so a firing resumed after a crash continues the step
// rather than repeating it.
type Result = api.ActionResult

// Comparison is a rebase's side-by-side evaluation (api.Comparison), and
// Side one model version's part of it.
type (
	Comparison = api.Comparison
	Side       = api.ComparisonSide
)

// RunInfo is what actions learn about a run.
type RunInfo struct {
	ID    string
	State string // queued, running, succeeded, failed, canceled
	Error string
	// The model version a succeeded training run registered, or the one
	// an eval run evaluated.
	Model     string
	Version   int
	VersionID string
	Verdict   string // eval runs: the gate verdict of the report
	// Dataset is the run's dataset version, "name@id"; Base its base
	// version, "name@vN" ("" when none).
	Dataset string
	Base    string
	// Metrics (eval runs) are the report's scalar metrics over all
	// records of the evaluated split.
	Metrics map[string]float64
}

// Ops is what actions need from the application; internal/app implements
// it over its runs, evals, registry and an HTTP client.
type Ops interface {
	// StartRun starts a run of the named recipe, on base instead of the
	// recipe's base selector when base is not "", or returns the run with
	// the same run key that is queued, running or succeeded.
	StartRun(ctx context.Context, recipe, base string) (RunInfo, error)
	// StartEval starts (or reuses) an eval run of model on dataset's split.
	StartEval(ctx context.Context, model, dataset, split string) (RunInfo, error)
	// WaitRun waits until the run ends (and a succeeded training run's
	// model version is registered) and returns it.
	WaitRun(ctx context.Context, id string) (RunInfo, error)
	// Promote points alias of model at version; an error of kind
	// errs.ErrForbidden when the version's gates failed. It returns the id
	// of the approval requested when the alias needs one ("" when moved).
	Promote(ctx context.Context, model string, version int, alias, reason string) (approval string, err error)
	// Rollback moves alias of model back and returns the version id it
	// points at now.
	Rollback(ctx context.Context, model, alias, reason string) (to string, err error)
	// Webhook POSTs body as JSON and returns the HTTP status.
	Webhook(ctx context.Context, url string, allowPrivate bool, body []byte) (int, error)
}

// Firing is what Do needs to know about one firing.
type Firing struct {
	Trigger string `json:"trigger"`
	Event   Event  `json:"event"`
	// Results of the actions so far: one per finished step, plus the
	// partial result of step i when a crash interrupted it.
	Results []Result `json:"results"`
}

// WebhookBody is the JSON a webhook action sends.
type WebhookBody struct {
	Trigger string   `json:"trigger"`
	Event   Event    `json:"event"`
	Results []Result `json:"results"` // of the steps before the webhook
}

// Do carries out action i of spec for firing f. save persists a partial
// result of this step before the step waits on something (a run), so
// that a resumed Do continues from it. The returned Result is the step's
// final one; an error means the step failed (the Result says how far it
// got). An outcome that is an answer rather than a fault — a promotion the
// gates refuse — is a Result with no error.
func Do(ctx context.Context, ops Ops, spec *Spec, f Firing, i int, save func(Result) error) (Result, error) {
	a := spec.Do[i]
	var r Result
	if i < len(f.Results) {
		r = f.Results[i] // what a crashed attempt recorded
	}
	r.Action = a.Kind()
	reason := fmt.Sprintf("trigger %s fired by event %d (%s)", f.Trigger, f.Event.Seq, f.Event.Type)
	switch r.Action {
	case ActRetrain:
		return runStep(ctx, ops, r, save, func() (RunInfo, error) { return ops.StartRun(ctx, a.Retrain.Recipe, "") })
	case ActRebase:
		return rebase(ctx, ops, a.Rebase, f, r, save)
	case ActEvaluate:
		e := a.Evaluate
		model := e.Model
		if model == "" {
			last, ok := lastRetrain(f.Results[:min(i, len(f.Results))])
			if !ok {
				return r, errs.Invalid("evaluate: no model: no earlier retrain made one")
			}
			model = fmt.Sprintf("%s@v%d", last.Model, last.Version)
		}
		split := e.Split
		if split == "" {
			split = "test"
		}
		return runStep(ctx, ops, r, save, func() (RunInfo, error) { return ops.StartEval(ctx, model, e.Dataset, split) })
	case ActPromoteIfPass:
		last, ok := lastRetrain(f.Results[:min(i, len(f.Results))])
		if !ok {
			return r, errs.Invalid("promote_if_pass: no earlier retrain made a model version")
		}
		r.Model, r.Version, r.VersionID, r.Alias = last.Model, last.Version, last.VersionID, a.PromoteIfPass.Alias
		approval, err := ops.Promote(ctx, last.Model, last.Version, r.Alias, reason)
		switch {
		case errors.Is(err, errs.ErrForbidden):
			r.Outcome = "gates failed: not promoted: " + err.Error()
			return r, nil
		case errors.Is(err, errs.ErrConflict):
			r.Outcome = "not promoted: " + err.Error()
			return r, nil
		case err != nil:
			r.Error = err.Error()
			return r, err
		case approval != "":
			r.Approval = approval
			r.Outcome = fmt.Sprintf("gates passed: approval %s requested to move %s to %s v%d", approval, r.Alias, r.Model, r.Version)
			return r, nil
		}
		r.Promoted = true
		r.Outcome = fmt.Sprintf("gates passed: %s now points at %s v%d", r.Alias, r.Model, r.Version)
		return r, nil
	case ActRollback:
		r.Model, r.Alias = a.Rollback.Model, a.Rollback.Alias
		if r.Model == "" {
			r.Model = EventModel(f.Event)
		}
		if r.Model == "" {
			return r, errs.Invalid("rollback: the event names no model and the action none")
		}
		to, err := ops.Rollback(ctx, r.Model, r.Alias, reason)
		if err != nil {
			r.Error = err.Error()
			return r, err
		}
		r.VersionID = to
		r.Outcome = fmt.Sprintf("%s of %s rolled back to %s", r.Alias, r.Model, to)
		return r, nil
	case ActWebhook:
		body, err := json.Marshal(WebhookBody{Trigger: f.Trigger, Event: f.Event, Results: append([]Result{}, f.Results[:min(i, len(f.Results))]...)})
		if err != nil {
			return r, err
		}
		r.Status, err = ops.Webhook(ctx, a.Webhook.URL, a.Webhook.AllowPrivate, body)
		if err != nil {
			r.Error = err.Error()
			return r, err
		}
		r.Outcome = fmt.Sprintf("delivered (%d)", r.Status)
		return r, nil
	}
	return r, errs.Invalid("action %d: want exactly one of retrain, rebase, evaluate, promote_if_pass, rollback, webhook", i)
}

// runStep starts a run unless r records one, saves its id, waits for it.
func runStep(ctx context.Context, ops Ops, r Result, save func(Result) error, start func() (RunInfo, error)) (Result, error) {
	var run RunInfo
	return runStepInfo(ctx, ops, r, save, start, &run)
}

// runStepInfo is runStep that also hands back the finished run.
func runStepInfo(ctx context.Context, ops Ops, r Result, save func(Result) error, start func() (RunInfo, error), out *RunInfo) (Result, error) {
	if r.RunID == "" {
		run, err := start()
		if err != nil {
			r.Error = err.Error()
			return r, err
		}
		r.RunID = run.ID
		if err := save(r); err != nil {
			return r, err
		}
	}
	run, err := ops.WaitRun(ctx, r.RunID)
	if err != nil {
		return r, err
	}
	*out = run
	r.Model, r.Version, r.VersionID, r.Base = run.Model, run.Version, run.VersionID, run.Base
	if run.State != "succeeded" {
		r.Error = fmt.Sprintf("run %s %s", run.ID, run.State)
		if run.Error != "" {
			r.Error += ": " + run.Error
		}
		return r, errors.New(r.Error)
	}
	r.Outcome = fmt.Sprintf("run %s succeeded", run.ID)
	if run.Model != "" {
		r.Outcome += fmt.Sprintf(": %s v%d", run.Model, run.Version)
	}
	if run.Verdict != "" {
		r.Outcome += ", gates " + run.Verdict
	}
	return r, nil
}

// lastRetrain is the newest retrain or rebase result that made a model
// version.
func lastRetrain(rs []Result) (Result, bool) {
	for i := len(rs) - 1; i >= 0; i-- {
		if (rs[i].Action == ActRetrain || rs[i].Action == ActRebase) && rs[i].Model != "" {
			return rs[i], true
		}
	}
	return Result{}, false
}

// rebase runs the recipe on the new base, then evaluates the compared
// alias's version and the new version side by side (rebaseCompare).
func rebase(ctx context.Context, ops Ops, rb *Rebase, f Firing, r Result, save func(Result) error) (Result, error) {
	base := rb.Base
	if base == "" {
		if f.Event.Type != EventTypes[OnBase] || f.Event.Subject == "" {
			return r, errs.Invalid("rebase: no base: event %d (%s) created no base version and the action names none", f.Event.Seq, f.Event.Type)
		}
		var ev eventFields
		if err := json.Unmarshal(f.Event.Data, &ev); err != nil || ev.Name == "" {
			return r, errs.Invalid("rebase: event %d names no base model", f.Event.Seq)
		}
		base = ev.Name + "@" + f.Event.Subject
	}
	var run RunInfo
	r, err := runStepInfo(ctx, ops, r, save, func() (RunInfo, error) { return ops.StartRun(ctx, rb.Recipe, base) }, &run)
	if err != nil {
		return r, err
	}
	alias := rb.Compare
	if alias == "" {
		alias = "champion"
	}
	return rebaseCompare(ctx, ops, r, run.Dataset, alias, save)
}

// rebaseCompare evaluates model@alias and the new version r made on the
// test split of dataset, each an eval run recorded in r.Compare before it
// is waited for. With no version behind the alias (a model none of whose
// versions passed its gates), the version before the new one stands in
// (Comparison.Alias then names it, "vN"); a first version has nothing to
// compare with, which the outcome says.
func rebaseCompare(ctx context.Context, ops Ops, r Result, dataset, alias string, save func(Result) error) (Result, error) {
	c := r.Compare
	if c == nil {
		c = &Comparison{Alias: alias, Dataset: dataset, Split: "test"}
	}
	sides := []struct {
		side  *Side
		model string
	}{
		{&c.Old, r.Model + "@" + alias},
		{&c.New, fmt.Sprintf("%s@v%d", r.Model, r.Version)},
	}
	for _, sd := range sides {
		if sd.side.RunID == "" {
			run, err := ops.StartEval(ctx, sd.model, c.Dataset, c.Split)
			if errors.Is(err, errs.ErrNotFound) && sd.side == &c.Old {
				// No version behind the alias (a model that never passed
				// its gates): compare with the version before this one.
				if r.Version <= 1 {
					r.Outcome += fmt.Sprintf("; no %s and no earlier version to compare with", sd.model)
					return r, nil
				}
				prev := fmt.Sprintf("%s@v%d", r.Model, r.Version-1)
				r.Outcome += fmt.Sprintf("; no %s, compared with %s", sd.model, prev)
				c.Alias = fmt.Sprintf("v%d", r.Version-1)
				run, err = ops.StartEval(ctx, prev, c.Dataset, c.Split)
			}
			if err != nil {
				r.Error = err.Error()
				return r, err
			}
			sd.side.RunID = run.ID
			r.Compare = c
			if err := save(r); err != nil {
				return r, err
			}
		}
		run, err := ops.WaitRun(ctx, sd.side.RunID)
		if err != nil {
			return r, err
		}
		if run.State != "succeeded" {
			r.Error = fmt.Sprintf("eval run %s of %s %s", run.ID, sd.model, run.State)
			if run.Error != "" {
				r.Error += ": " + run.Error
			}
			return r, errors.New(r.Error)
		}
		sd.side.Model, sd.side.Version, sd.side.VersionID = run.Model, run.Version, run.VersionID
		sd.side.Base, sd.side.Verdict, sd.side.Metrics = run.Base, run.Verdict, run.Metrics
	}
	r.Compare = c
	r.Outcome += "; " + c.Summary()
	return r, nil
}
