package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
)

// StartRun resolves every selector of a stored recipe to an exact version,
// checks residency, computes the run key, and queues the run — or, unless
// Force is set, returns the run with the same key that is queued, running
// or succeeded (one run per key, however many start it at once).
func (a *App) StartRun(ctx context.Context, req api.RunStart) (api.Run, error) {
	rv, err := a.resolveRecipe(ctx, req.Recipe)
	if err != nil {
		return api.Run{}, err
	}
	r, err := recipe.Parse(rv.Name+"@v"+fmt.Sprint(rv.Version), rv.Normalized)
	if err != nil {
		return api.Run{}, fmt.Errorf("stored recipe %s no longer parses: %w", rv.ID, err)
	}
	in := run.Inputs{Recipe: run.InputRef{Name: rv.Name, ID: rv.ID, Version: rv.Version}, Engine: a.opts.EngineVersion}
	dv, err := a.store.DatasetVersion(ctx, r.Data.Dataset, r.Data.Version)
	if err != nil {
		return api.Run{}, fmt.Errorf("recipe %s: data.dataset %q@%s: %w", rv.Name, r.Data.Dataset, r.Data.Version, err)
	}
	if err := checkDatasetTask(r, dv); err != nil {
		return api.Run{}, err
	}
	in.Dataset = run.InputRef{Name: dv.Name, ID: dv.ID, Manifest: dv.Manifest, Selector: r.Data.Dataset + "@" + r.Data.Version}
	if err := a.computesIn("recipe "+rv.Name, r.Region); err != nil {
		return api.Run{}, err
	}
	reads := []residency.Object{datasetObject(dv)}
	if req.Base != "" {
		if r.Base == nil {
			return api.Run{}, errs.Invalid("run start: base %q: recipe %s names no base to replace", req.Base, rv.Name)
		}
		sel, err := recipe.ParseSelector(req.Base)
		if err != nil {
			return api.Run{}, errs.Invalid("run start: base: %v", err)
		}
		r.Base = &sel
	}
	if r.Base != nil {
		bv, err := a.resolveBase(ctx, r.Base.Name, r.Base.Ref)
		if err != nil {
			return api.Run{}, fmt.Errorf("recipe %s: base %s: %w", rv.Name, r.Base.String(), err)
		}
		// The selector resolves to one version; one this server may not
		// read is refused, never swapped for another that it may.
		if err := a.residency().read(baseObject(bv)); err != nil {
			return api.Run{}, fmt.Errorf("recipe %s: base selector %s resolves to %s@v%d: %w", rv.Name, r.Base.String(), bv.Name, bv.Version, err)
		}
		in.Base = run.InputRef{Name: bv.Name, ID: bv.ID, Version: bv.Version, Manifest: bv.Manifest, Selector: r.Base.String()}
	}
	if r.Incremental != nil {
		objs, err := a.resolveIncremental(ctx, r, rv.Name, &in)
		if err != nil {
			return api.Run{}, err
		}
		reads = append(reads, objs...)
	}
	if err := a.residency().readAll(reads...); err != nil {
		return api.Run{}, fmt.Errorf("run %s: %w", rv.Name, err)
	}
	if err := a.residency().write(residency.Object{Kind: "model", Name: rv.Name + " (the run's adapter and report)", Region: a.opts.Region}); err != nil {
		return api.Run{}, fmt.Errorf("run %s: %w", rv.Name, err)
	}
	if r.Task == recipe.TaskClassify {
		if in.Champion, in.ChampionBase, err = a.champion(ctx, rv.Name); err != nil {
			return api.Run{}, err
		}
	}
	inputs, _ := json.Marshal(in)
	sr := store.Run{ID: newRunID(), Key: run.Key(in), RecipeID: rv.ID, DatasetID: dv.ID, BaseID: in.Base.ID,
		EngineVersion: a.opts.EngineVersion, Inputs: inputs}
	return a.submit(ctx, sr, req.Force)
}

// computesIn refuses what must compute in region (a recipe's region)
// when this server computes elsewhere.
func (a *App) computesIn(what, region string) error {
	if region != a.opts.Region {
		return errs.Forbidden("residency: %s must compute in region %q, but this server computes in region %q; run it on a server in region %q",
			what, region, a.opts.Region, region)
	}
	return nil
}

func newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "run-" + hex.EncodeToString(b[:])
}

func toAPIRun(r store.Run) api.Run {
	return api.Run{ID: r.ID, Key: r.Key, State: string(r.State), RecipeID: r.RecipeID, DatasetID: r.DatasetID, BaseID: r.BaseID,
		EngineVersion: r.EngineVersion, Inputs: r.Inputs, Attempt: r.Attempt, Step: r.Step, TotalSteps: r.TotalSteps,
		Checkpoint: r.Checkpoint, Result: r.Result, Metrics: r.Metrics, Error: r.Error, CreatedAt: r.CreatedAt,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt}
}

// Runs lists runs, optionally of one state.
func (a *App) Runs(ctx context.Context, state string) ([]api.Run, error) {
	var f store.RunFilter
	if state != "" {
		s := store.RunState(state)
		switch s {
		case store.RunQueued, store.RunRunning, store.RunSucceeded, store.RunFailed, store.RunCanceled, store.RunBudgetExceeded:
		default:
			return nil, errs.Invalid("state %q: want queued, running, succeeded, failed, canceled or budget_exceeded", state)
		}
		f.States = []store.RunState{s}
	}
	rs, err := a.store.Runs(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]api.Run, len(rs))
	for i, r := range rs {
		out[i] = toAPIRun(r)
	}
	return out, nil
}

// Run returns one run.
func (a *App) Run(ctx context.Context, id string) (api.Run, error) {
	r, err := a.store.Run(ctx, id)
	if err != nil {
		return api.Run{}, err
	}
	return toAPIRun(r), nil
}

// CancelRun cancels a queued or running run.
func (a *App) CancelRun(ctx context.Context, id string) (api.Run, error) {
	r, err := a.sched.Cancel(ctx, id)
	if err != nil {
		return api.Run{}, err
	}
	return toAPIRun(r), nil
}

// RunLogs returns log lines after seq.
func (a *App) RunLogs(ctx context.Context, id string, after int64) ([]api.RunLog, error) {
	ls, err := a.store.RunLogs(ctx, id, after, 0)
	if err != nil {
		return nil, err
	}
	out := make([]api.RunLog, len(ls))
	for i, l := range ls {
		out[i] = api.RunLog{Seq: l.Seq, Time: l.Time, Data: l.Data}
	}
	return out, nil
}
