package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
)

// StartEval queues an eval run: a registered model version on one split of
// any dataset version, preprocessed and gated as its recipe says, and
// compared with the champion of its name when that is another version.
// The report is attached to the model version when the run succeeds. Equal
// inputs reuse the earlier run unless Force is set.
func (a *App) StartEval(ctx context.Context, req api.EvalStart) (api.Run, error) {
	name, ref := splitSelector(req.Model)
	if name == "" {
		return api.Run{}, errs.Invalid("eval: name a model, such as spam-lora@champion (see `tailor model list`)")
	}
	mv, err := a.registry.Version(ctx, name, ref)
	if err != nil {
		return api.Run{}, fmt.Errorf("eval %s: %w", req.Model, err)
	}
	if mv.RunID == "" || mv.Adapter == "" {
		return api.Run{}, errs.Invalid("eval %s: model version v%d was not trained by a run here, so its recipe (preprocessing, gates) is unknown", req.Model, mv.Version)
	}
	trained, err := a.store.Run(ctx, mv.RunID)
	if err != nil {
		return api.Run{}, fmt.Errorf("eval %s: its training run: %w", req.Model, err)
	}
	var tin run.Inputs
	if err := json.Unmarshal(trained.Inputs, &tin); err != nil {
		return api.Run{}, fmt.Errorf("eval %s: run %s inputs: %w", req.Model, trained.ID, err)
	}
	rv, err := a.store.RecipeVersionByID(ctx, trained.RecipeID)
	if err != nil {
		return api.Run{}, fmt.Errorf("eval %s: recipe: %w", req.Model, err)
	}
	r, err := recipe.Parse(rv.Name+"@v"+fmt.Sprint(rv.Version), rv.Normalized)
	if err != nil {
		return api.Run{}, fmt.Errorf("stored recipe %s no longer parses: %w", rv.ID, err)
	}
	dsName, dsRef := splitSelector(req.Dataset)
	if dsName == "" {
		return api.Run{}, errs.Invalid("eval %s: name a dataset with --dataset NAME[@VERSION]", req.Model)
	}
	dv, err := a.store.DatasetVersion(ctx, dsName, dsRef)
	if err != nil {
		return api.Run{}, fmt.Errorf("eval %s: dataset %s: %w", req.Model, req.Dataset, err)
	}
	if err := checkDatasetTask(r, dv); err != nil {
		return api.Run{}, fmt.Errorf("eval %s: %w", req.Model, err)
	}
	split := req.Split
	if split == "" {
		split = data.SplitTest
	}
	switch split {
	case data.SplitTrain, data.SplitValidation, data.SplitTest:
	default:
		return api.Run{}, errs.Invalid("eval %s: split %q: want train, validation or test", req.Model, split)
	}
	bv, err := baseByID(ctx, a.store, mv.BaseID)
	if err != nil {
		return api.Run{}, fmt.Errorf("eval %s: base: %w", req.Model, err)
	}
	if err := a.checkResidency(map[string]string{"dataset " + dv.Name: dv.Region, "base " + bv.Name: bv.Region}); err != nil {
		return api.Run{}, err
	}
	in := run.Inputs{Kind: run.KindEval, Recipe: tin.Recipe, Engine: a.opts.EngineVersion, Split: split,
		Dataset: run.InputRef{Name: dv.Name, ID: dv.ID, Manifest: dv.Manifest, Selector: req.Dataset},
		Base:    run.InputRef{Name: bv.Name, ID: bv.ID, Version: bv.Version, Manifest: bv.Manifest},
		Model:   run.InputRef{Name: fmt.Sprintf("%s@v%d", mv.Name, mv.Version), ID: mv.ID, Version: mv.Version, Manifest: mv.Adapter, Selector: req.Model}}
	if r.Task == recipe.TaskClassify {
		if in.Champion, in.ChampionBase, err = a.champion(ctx, mv.Name); err != nil {
			return api.Run{}, err
		}
		if in.Champion.ID == mv.ID {
			in.Champion, in.ChampionBase = run.InputRef{}, run.InputRef{}
		}
	}
	inputs, _ := json.Marshal(in)
	sr := store.Run{ID: newRunID(), Key: run.Key(in), RecipeID: rv.ID, DatasetID: dv.ID, BaseID: bv.ID,
		EngineVersion: a.opts.EngineVersion, Inputs: inputs}
	return a.submit(ctx, sr, req.Force)
}

// submit queues sr, or, unless force, returns the run with its key that is
// queued, running or succeeded.
func (a *App) submit(ctx context.Context, sr store.Run, force bool) (api.Run, error) {
	if force {
		sr, err := a.sched.Submit(ctx, sr)
		return toAPIRun(sr), err
	}
	sr, created, err := a.sched.SubmitOnce(ctx, sr)
	if err != nil {
		return api.Run{}, err
	}
	out := toAPIRun(sr)
	out.Reused = !created
	return out, nil
}

// splitSelector splits "name@ref" (ref "" when absent).
func splitSelector(s string) (name, ref string) {
	for i := range s {
		if s[i] == '@' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// attachEvalRun attaches a succeeded eval run's report to the model
// version it evaluated.
func (a *App) attachEvalRun(ctx context.Context, r store.Run, in run.Inputs) error {
	var out runOutcome
	if len(r.Metrics) == 0 || json.Unmarshal(r.Metrics, &out) != nil || out.Report == "" {
		return fmt.Errorf("eval run %s succeeded without a report", r.ID)
	}
	return a.attachReport(ctx, in.Model.ID, out)
}
