package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/run"
)

// resolveIncremental fills in.Init, in.Replay and in.Forgetting for a
// recipe with incremental: the model version behind the alias (of the
// model named after the recipe), which must have been trained on the
// resolved base, and the replay and forgetting dataset versions (default:
// the version that model was trained on). It returns what the run will
// read (the model version, the datasets) for the residency check.
func (a *App) resolveIncremental(ctx context.Context, r *recipe.Recipe, name string, in *run.Inputs) ([]residency.Object, error) {
	x := r.Incremental
	v, err := a.registry.Version(ctx, name, x.From)
	if errors.Is(err, errs.ErrNotFound) {
		return nil, errs.NotFound("recipe %s: incremental.from: model %s has no version behind %q yet; train one with a recipe without incremental and promote it to %s first",
			name, name, x.From, x.From)
	}
	if err != nil {
		return nil, fmt.Errorf("recipe %s: incremental.from %s@%s: %w", name, name, x.From, err)
	}
	what := fmt.Sprintf("%s@v%d (behind %q)", name, v.Version, x.From)
	if v.BaseID != in.Base.ID {
		return nil, errs.Invalid("recipe %s: incremental: %s was trained on base %s but the recipe's base %s resolves to %s; an adapter only starts training on its own base (pin base to that version, or train from scratch without incremental)",
			name, what, short(v.BaseID), r.Base.String(), short(in.Base.ID))
	}
	if v.Adapter == "" {
		return nil, errs.Invalid("recipe %s: incremental: %s has no adapter to start from", name, what)
	}
	if _, err := a.residency().readableModel(ctx, a.store, v.ModelVersion); err != nil {
		return nil, fmt.Errorf("recipe %s: incremental.from %s: %w", name, what, err)
	}
	var reads []residency.Object
	in.Init = run.InputRef{Name: fmt.Sprintf("%s@v%d", name, v.Version), ID: v.ID, Version: v.Version, Manifest: v.Adapter, Selector: name + "@" + x.From}
	var lin run.Inputs
	if len(v.Lineage) > 0 {
		if err := json.Unmarshal(v.Lineage, &lin); err != nil {
			return nil, fmt.Errorf("recipe %s: incremental: lineage of %s: %w", name, what, err)
		}
	}
	for _, d := range []struct {
		field, ref string
		dst        *run.InputRef
	}{{"incremental.replay.dataset", x.Replay.Dataset, &in.Replay}, {"incremental.forgetting.dataset", x.Forgetting.Dataset, &in.Forgetting}} {
		addr, err := ident.ParseAddress("dataset", d.ref)
		if d.ref != "" && err != nil {
			return nil, fmt.Errorf("recipe %s: %s: %w", name, d.field, err)
		}
		dname, dver := addr.Name, addr.Ref.String()
		if d.ref == "" {
			if lin.Dataset.ID == "" {
				return nil, errs.Invalid("recipe %s: %s: %s records no training dataset; name one (NAME or NAME@VERSION)", name, d.field, what)
			}
			dname, dver = lin.Dataset.Name, lin.Dataset.ID
		}
		dv, err := a.store.DatasetVersion(ctx, dname, dver)
		if err != nil {
			return nil, fmt.Errorf("recipe %s: %s %s@%s: %w", name, d.field, dname, dver, err)
		}
		if err := checkDatasetTask(r, dv); err != nil {
			return nil, fmt.Errorf("%s: %w", d.field, err)
		}
		sel := d.ref
		if sel == "" {
			sel = "training data of " + in.Init.Name
		}
		*d.dst = run.InputRef{Name: dv.Name, ID: dv.ID, Manifest: dv.Manifest, Selector: sel}
		reads = append(reads, datasetObject(dv))
	}
	return reads, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
