package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/store"
)

// ApplyRecipe parses and validates a recipe, checks that what it selects
// exists, and stores a new version only when its normalized form changed.
func (a *App) ApplyRecipe(ctx context.Context, fileName string, src []byte) (api.RecipeApply, error) {
	if fileName == "" {
		fileName = "recipe.yaml"
	}
	r, err := recipe.Parse(fileName, src)
	if err != nil {
		return api.RecipeApply{}, err
	}
	if err := r.Validate(recipe.ValidateOptions{Regions: a.opts.Regions}); err != nil {
		return api.RecipeApply{}, err
	}
	if err := a.checkSelectors(ctx, fileName, r); err != nil {
		return api.RecipeApply{}, err
	}
	norm, err := r.Normalize()
	if err != nil {
		return api.RecipeApply{}, err
	}
	id, err := r.ID()
	if err != nil {
		return api.RecipeApply{}, err
	}
	if existing, err := a.store.RecipeVersion(ctx, r.Name, id); err == nil {
		return api.RecipeApply{Version: toAPIRecipe(existing)}, nil
	}
	v := store.RecipeVersion{ID: id, Name: r.Name, Normalized: norm, CreatedAt: a.opts.Now().UTC()}
	ev := a.event("recipe.version.created", id, map[string]any{"name": r.Name, "id": id})
	v, evs, err := a.store.PutRecipeVersion(ctx, v, []store.Event{ev})
	if errors.Is(err, errs.ErrConflict) {
		existing, gerr := a.store.RecipeVersion(ctx, r.Name, id)
		if gerr != nil {
			return api.RecipeApply{}, gerr
		}
		return api.RecipeApply{Version: toAPIRecipe(existing)}, nil
	}
	if err != nil {
		return api.RecipeApply{}, err
	}
	a.publish(evs)
	return api.RecipeApply{Version: toAPIRecipe(v), Created: true}, nil
}

// checkSelectors makes sure the dataset and base a recipe names exist now,
// so a typo is caught at apply time rather than when a run starts. An
// incremental recipe may name the latest version of a dataset that has
// none yet: its data is typically the feedback dataset a monitor fills as
// labels arrive, and its runs start (from a trigger) once it exists.
func (a *App) checkSelectors(ctx context.Context, fileName string, r *recipe.Recipe) error {
	dv, err := a.store.DatasetVersion(ctx, r.Data.Dataset, r.Data.Version)
	if errors.Is(err, errs.ErrNotFound) && r.Incremental != nil && (r.Data.Version == "" || r.Data.Version == "latest") {
		a.logger.Info("incremental recipe names a dataset with no version yet", "recipe", r.Name, "dataset", r.Data.Dataset)
		err = nil
		dv.Task = datasetTask[r.Task]
	}
	if err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return errs.NotFound("%s: data.dataset: dataset %q version %q does not exist; import it first with `tailor dataset import FILE --name %s`",
				fileName, r.Data.Dataset, r.Data.Version, r.Data.Dataset)
		}
		return err
	}
	if err := checkDatasetTask(r, dv); err != nil {
		return fmt.Errorf("%s: data.dataset: %w", fileName, err)
	}
	if r.Base != nil {
		if _, err := a.resolveBase(ctx, r.Base.Name, r.Base.Ref); err != nil {
			if errors.Is(err, errs.ErrNotFound) {
				return errs.NotFound("%s: base: base model %q does not exist; import it first with `tailor base import DIR --name %s`",
					fileName, r.Base.String(), r.Base.Name)
			}
			return err
		}
	}
	return nil
}

// datasetTask is the dataset task each recipe task trains on.
var datasetTask = map[recipe.Task]string{recipe.TaskClassify: "classify", recipe.TaskSFT: "sft", recipe.TaskPretrain: "text"}

func checkDatasetTask(r *recipe.Recipe, dv store.DatasetVersion) error {
	if want := datasetTask[r.Task]; dv.Task != want {
		return errs.Invalid("recipe %s (task %s) needs a %s dataset, but %s@%s is a %s dataset", r.Name, r.Task, want, dv.Name, dv.ID[:12], dv.Task)
	}
	return nil
}

func toAPIRecipe(v store.RecipeVersion) api.RecipeVersion {
	return api.RecipeVersion{ID: v.ID, Name: v.Name, Version: v.Version, Normalized: string(v.Normalized), CreatedAt: v.CreatedAt}
}

// Recipes lists recipe versions.
func (a *App) Recipes(ctx context.Context, name string) ([]api.RecipeVersion, error) {
	vs, err := a.store.RecipeVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]api.RecipeVersion, len(vs))
	for i, v := range vs {
		out[i] = toAPIRecipe(v)
	}
	return out, nil
}

// Recipe returns one recipe version.
func (a *App) Recipe(ctx context.Context, name, ref string) (api.RecipeVersion, error) {
	v, err := a.store.RecipeVersion(ctx, name, ref)
	if err != nil {
		return api.RecipeVersion{}, err
	}
	return toAPIRecipe(v), nil
}

// resolveRecipe takes "name", "name@ref" or a bare version id.
func (a *App) resolveRecipe(ctx context.Context, sel string) (store.RecipeVersion, error) {
	if sel == "" {
		return store.RecipeVersion{}, errs.Invalid("name a recipe: `tailor run start NAME` (see `tailor recipe list`)")
	}
	name, ref := sel, ""
	for i := range sel {
		if sel[i] == '@' {
			name, ref = sel[:i], sel[i+1:]
			break
		}
	}
	v, err := a.store.RecipeVersion(ctx, name, ref)
	if errors.Is(err, errs.ErrNotFound) && ref == "" {
		if byID, ierr := a.store.RecipeVersionByID(ctx, sel); ierr == nil {
			return byID, nil
		}
	}
	if errors.Is(err, errs.ErrNotFound) {
		return v, errs.NotFound("recipe %q not found; apply it first with `tailor recipe apply FILE`", sel)
	}
	if err != nil {
		return v, fmt.Errorf("resolve recipe %q: %w", sel, err)
	}
	return v, nil
}
