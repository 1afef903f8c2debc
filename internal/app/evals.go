package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/registry"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
)

// StartEval queues an eval run: a registered model version on one split of
// any dataset version, preprocessed and gated as its recipe says, and
// compared with the champion of its name when that is another version.
// The report is attached to the model version when the run succeeds. Equal
// inputs reuse the earlier run unless Force is set.
func (a *App) StartEval(ctx context.Context, req api.EvalStart) (api.Run, error) {
	if req.Model == "" {
		return api.Run{}, errs.Invalid("eval: name a model, such as spam-lora@champion (see `tailor model list`)")
	}
	model, err := ident.ParseAddress("model", req.Model)
	if err != nil {
		return api.Run{}, fmt.Errorf("eval: %w", err)
	}
	mv, err := a.registry.Version(ctx, model.Name, model.Ref.String())
	if err != nil {
		return api.Run{}, fmt.Errorf("eval %s: %w", req.Model, err)
	}
	src, err := a.trainedBy(ctx, mv)
	if err != nil {
		return api.Run{}, fmt.Errorf("eval %s: %w", req.Model, err)
	}
	rv, r, bv := src.recipeVersion, src.recipe, src.base
	if req.Dataset == "" {
		return api.Run{}, errs.Invalid("eval %s: name a dataset with --dataset NAME[@VERSION]", req.Model)
	}
	ds, err := ident.ParseAddress("dataset", req.Dataset)
	if err != nil {
		return api.Run{}, fmt.Errorf("eval %s: %w", req.Model, err)
	}
	dv, err := a.store.DatasetVersion(ctx, ds.Name, ds.Ref.String())
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
	if _, err := a.residency().readableModel(ctx, a.store, mv.ModelVersion); err != nil {
		return api.Run{}, fmt.Errorf("eval %s: %w", req.Model, err)
	}
	if err := a.residency().read(datasetObject(dv)); err != nil {
		return api.Run{}, fmt.Errorf("eval %s: %w", req.Model, err)
	}
	if err := a.residency().write(residency.Object{Kind: "report", Name: "of " + req.Model, Region: a.opts.Region}); err != nil {
		return api.Run{}, fmt.Errorf("eval %s: %w", req.Model, err)
	}
	in := run.Inputs{Kind: run.KindEval, Recipe: src.inputs.Recipe, Engine: a.opts.EngineVersion, Split: split,
		Dataset: run.InputRef{Name: dv.Name, ID: dv.ID, Manifest: dv.Manifest, Selector: req.Dataset},
		Base:    src.baseRef(), Model: src.modelRef(req.Model)}
	if r.Task == recipe.TaskClassify {
		if in.Champion, in.ChampionBase, err = a.champion(ctx, mv.Name); err != nil {
			return api.Run{}, err
		}
		if in.Champion.ID == mv.ID {
			in.Champion, in.ChampionBase = run.InputRef{}, run.InputRef{}
		}
		// A model trained incrementally keeps its forgetting gate: a later
		// report must not pass it by leaving the gate out.
		if r.Incremental != nil && src.inputs.Init.ID != "" {
			in.Init, in.Forgetting = src.inputs.Init, src.inputs.Forgetting
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

// attachEvalRun attaches a succeeded eval run's report to the model
// version it evaluated.
func (a *App) attachEvalRun(ctx context.Context, r store.Run, in run.Inputs) error {
	var out runOutcome
	if len(r.Metrics) == 0 || json.Unmarshal(r.Metrics, &out) != nil || out.Report == "" {
		return fmt.Errorf("eval run %s succeeded without a report", r.ID)
	}
	return a.attachReport(ctx, in.Model.ID, out)
}

// source is how a registered model version was made: its training run's
// inputs, recipe and base.
type source struct {
	version       registry.Version
	inputs        run.Inputs
	recipeVersion store.RecipeVersion
	recipe        *recipe.Recipe
	base          store.BaseVersion
}

// trainedBy finds how mv was made; a version no run here trained has no
// known recipe (preprocessing, gates) and is refused.
func (a *App) trainedBy(ctx context.Context, mv registry.Version) (*source, error) {
	if mv.RunID == "" {
		return nil, errs.Invalid("model version %s v%d was not trained by a run here, so its recipe (preprocessing, gates) is unknown", mv.Name, mv.Version)
	}
	trained, err := a.store.Run(ctx, mv.RunID)
	if err != nil {
		return nil, fmt.Errorf("its training run: %w", err)
	}
	s := &source{version: mv}
	if err := json.Unmarshal(trained.Inputs, &s.inputs); err != nil {
		return nil, fmt.Errorf("run %s inputs: %w", trained.ID, err)
	}
	if s.recipeVersion, err = a.store.RecipeVersionByID(ctx, trained.RecipeID); err != nil {
		return nil, fmt.Errorf("recipe: %w", err)
	}
	if s.recipe, err = recipe.Parse(s.recipeVersion.Name+"@v"+fmt.Sprint(s.recipeVersion.Version), s.recipeVersion.Normalized); err != nil {
		return nil, fmt.Errorf("stored recipe %s no longer parses: %w", s.recipeVersion.ID, err)
	}
	if s.base, err = baseByID(ctx, a.store, mv.BaseID); err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	return s, nil
}

func (s *source) baseRef() run.InputRef {
	return run.InputRef{Name: s.base.Name, ID: s.base.ID, Version: s.base.Version, Manifest: s.base.Manifest}
}

func (s *source) modelRef(selector string) run.InputRef {
	v := s.version
	return run.InputRef{Name: fmt.Sprintf("%s@v%d", v.Name, v.Version), ID: v.ID, Version: v.Version, Manifest: v.Adapter, Selector: selector}
}
