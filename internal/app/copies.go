package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/store"
)

// EventCopyCreated is the type of the event appended with every
// cross-region copy of kind (dataset, base or model): "dataset.copy.created".
func EventCopyCreated(kind string) string { return kind + ".copy.created" }

// Copy copies one version of a dataset, base or model into another
// region, the one explicit way anything crosses regions. The policy must
// let this server read the source where it lives and write the copy where
// it goes; both are checked before anything is written. The copy is a new
// version under its own name (default NAME-REGION) with the source's
// content, its lineage record and its event, in one transaction. The same
// copy again returns the existing one (Created false).
func (a *App) Copy(ctx context.Context, req api.CopyRequest) (api.Copy, error) {
	switch req.Kind {
	case store.CopyDataset, store.CopyBase, store.CopyModel:
	default:
		return api.Copy{}, errs.Invalid("copy: kind %q: want dataset, base or model", req.Kind)
	}
	src, err := ident.ParseAddress(req.Kind, req.Source)
	if err != nil {
		return api.Copy{}, fmt.Errorf("copy: %w", err)
	}
	if req.ToRegion == "" {
		return api.Copy{}, errs.Invalid("copy %s %s: name the region to copy to (--to-region)", req.Kind, req.Source)
	}
	if !residency.IsRegion(req.ToRegion) {
		return api.Copy{}, errs.Invalid("copy %s %s: to_region %q: use lowercase letters, digits and '-'", req.Kind, req.Source, req.ToRegion)
	}
	if err := a.checkRegion(fmt.Sprintf("copy %s %s", req.Kind, req.Source), req.ToRegion); err != nil {
		return api.Copy{}, err
	}
	name := req.Name
	if name == "" {
		name = src.Name + "-" + req.ToRegion
	}
	if err := checkName(req.Kind, name); err != nil {
		return api.Copy{}, fmt.Errorf("copy: %w", err)
	}
	what := fmt.Sprintf("copy %s %s to region %q", req.Kind, req.Source, req.ToRegion)
	c := store.Copy{Kind: req.Kind, Name: name, Region: req.ToRegion, CreatedAt: a.opts.Now().UTC()}
	// The copy is read where its source lives and written where it goes.
	check := func(from residency.Object) error {
		if from.Region == req.ToRegion {
			return errs.Invalid("%s: %s is in region %q already", what, from, from.Region)
		}
		if err := a.residency().read(from); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := a.residency().write(residency.Object{Kind: req.Kind, Name: name + " (the copy)", Region: req.ToRegion}); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	var out api.Copy
	switch req.Kind {
	case store.CopyDataset:
		out, err = a.copyDataset(ctx, src, c, check)
	case store.CopyBase:
		out, err = a.copyBase(ctx, src, c, check)
	default:
		out, err = a.copyModel(ctx, src, c, check)
	}
	if err != nil {
		return api.Copy{}, err
	}
	if out.Created {
		a.logger.Info("cross-region copy created", "kind", out.Kind, "name", out.Name, "id", out.ID, "region", out.Region,
			"source", out.SourceName, "source_region", out.SourceRegion)
	}
	return out, nil
}

func (a *App) copyEvent(c store.Copy) store.Event {
	return a.event(EventCopyCreated(c.Kind), c.ID, map[string]any{"kind": c.Kind, "name": c.Name, "id": c.ID, "region": c.Region,
		"source": map[string]any{"name": c.SourceName, "id": c.SourceID, "region": c.SourceRegion}})
}

func toAPICopy(c store.Copy, version int, created bool, evs []store.Event) api.Copy {
	out := api.Copy{Kind: c.Kind, Name: c.Name, ID: c.ID, Version: version, Region: c.Region, SourceName: c.SourceName,
		SourceID: c.SourceID, SourceRegion: c.SourceRegion, CreatedAt: c.CreatedAt, Created: created}
	if len(evs) == 1 {
		out.EventSeq = evs[0].Seq
	}
	return out
}

// existingCopy answers a copy whose (name, id) is taken: the same copy
// made before, or a conflict.
func (a *App) existingCopy(ctx context.Context, c store.Copy, version int) (api.Copy, error) {
	prev, err := a.store.CopySource(ctx, c.Kind, c.Name, c.ID)
	if errors.Is(err, errs.ErrNotFound) || (err == nil && (prev.SourceID != c.SourceID || prev.Region != c.Region)) {
		return api.Copy{}, errs.Conflict("copy %s %s to region %q: %s %s already has version %s, not as this copy; name the copy with --as",
			c.Kind, c.SourceName, c.Region, c.Kind, c.Name, short(c.ID))
	}
	if err != nil {
		return api.Copy{}, err
	}
	return toAPICopy(prev, version, false, nil), nil
}

// checkCopyTarget lets a copy add a version to name only when name is new
// or holds copies of the same source in the same region (its latest
// version, latestID in latestRegion, is one): later versions of a dataset
// copied to the same place line up under one name; anything else is a
// conflict.
func (a *App) checkCopyTarget(ctx context.Context, c store.Copy, latestID, latestRegion string) error {
	if latestID == "" {
		return nil
	}
	rec, err := a.store.CopySource(ctx, c.Kind, c.Name, latestID)
	if err != nil && !errors.Is(err, errs.ErrNotFound) {
		return err
	}
	if err != nil || rec.SourceName != c.SourceName || latestRegion != c.Region {
		return errs.Conflict("copy %s %s to region %q: %s %s holds other versions (its latest, %s in region %q, is no copy of %s there); name the copy with --as",
			c.Kind, c.SourceName, c.Region, c.Kind, c.Name, short(latestID), latestRegion, c.SourceName)
	}
	return nil
}

func (a *App) copyDataset(ctx context.Context, src ident.Address, c store.Copy, check func(residency.Object) error) (api.Copy, error) {
	v, err := a.store.DatasetVersion(ctx, src.Name, src.Ref.String())
	if err != nil {
		return api.Copy{}, fmt.Errorf("copy dataset %s: %w", src, err)
	}
	if err := check(datasetObject(v)); err != nil {
		return api.Copy{}, err
	}
	c.ID, c.SourceName, c.SourceID, c.SourceRegion = v.ID, v.Name, v.ID, v.Region
	unlock, err := a.datasets.lock(ctx, c.Name)
	if err != nil {
		return api.Copy{}, err
	}
	defer unlock()
	if _, err := a.store.DatasetVersion(ctx, c.Name, v.ID); err == nil {
		return a.existingCopy(ctx, c, 0)
	}
	var parent, parentRegion string
	if latest, err := a.store.DatasetVersion(ctx, c.Name, "latest"); err == nil {
		parent, parentRegion = latest.ID, latest.Region
	} else if !errors.Is(err, errs.ErrNotFound) {
		return api.Copy{}, err
	}
	if err := a.checkCopyTarget(ctx, c, parent, parentRegion); err != nil {
		return api.Copy{}, err
	}
	cp := v
	cp.Name, cp.Region, cp.Parent, cp.CreatedAt = c.Name, c.Region, parent, c.CreatedAt
	evs, err := a.store.PutDatasetCopy(ctx, cp, c, []store.Event{a.copyEvent(c)})
	if err != nil {
		return api.Copy{}, fmt.Errorf("copy dataset %s: %w", src, err)
	}
	a.publish(evs)
	return toAPICopy(c, 0, true, evs), nil
}

func (a *App) copyBase(ctx context.Context, src ident.Address, c store.Copy, check func(residency.Object) error) (api.Copy, error) {
	v, err := a.resolveBase(ctx, src.Name, src.Ref.String())
	if err != nil {
		return api.Copy{}, fmt.Errorf("copy base %s: %w", src, err)
	}
	if err := check(baseObject(v)); err != nil {
		return api.Copy{}, err
	}
	c.ID, c.SourceName, c.SourceID, c.SourceRegion = v.ID, v.Name, v.ID, v.Region
	if existing, err := a.store.BaseVersion(ctx, c.Name, v.ID); err == nil {
		return a.existingCopy(ctx, c, existing.Version)
	}
	if latest, err := a.store.BaseVersion(ctx, c.Name, "latest"); err == nil {
		if err := a.checkCopyTarget(ctx, c, latest.ID, latest.Region); err != nil {
			return api.Copy{}, err
		}
	} else if !errors.Is(err, errs.ErrNotFound) {
		return api.Copy{}, err
	}
	cp := v
	cp.Name, cp.Region, cp.Version, cp.CreatedAt = c.Name, c.Region, 0, c.CreatedAt
	cp, evs, err := a.store.PutBaseCopy(ctx, cp, c, []store.Event{a.copyEvent(c)})
	if errors.Is(err, errs.ErrConflict) { // the same copy, made meanwhile
		if existing, gerr := a.store.BaseVersion(ctx, c.Name, v.ID); gerr == nil {
			return a.existingCopy(ctx, c, existing.Version)
		}
	}
	if err != nil {
		return api.Copy{}, fmt.Errorf("copy base %s: %w", src, err)
	}
	a.publish(evs)
	return toAPICopy(c, cp.Version, true, evs), nil
}

func (a *App) copyModel(ctx context.Context, src ident.Address, c store.Copy, check func(residency.Object) error) (api.Copy, error) {
	v, err := a.registry.Version(ctx, src.Name, src.Ref.String())
	if err != nil {
		return api.Copy{}, fmt.Errorf("copy model %s: %w", src, err)
	}
	from := modelObject(v.ModelVersion)
	if from.Region == "" {
		// Registered without a region: it lives where its base does.
		bv, err := baseByID(ctx, a.store, v.BaseID)
		if err != nil {
			return api.Copy{}, fmt.Errorf("copy model %s: %w", src, err)
		}
		from.Region = bv.Region
	}
	if err := check(from); err != nil {
		return api.Copy{}, err
	}
	c.ID, c.SourceName, c.SourceID, c.SourceRegion = v.ID, v.Name, v.ID, from.Region
	if existing, err := a.store.ModelVersion(ctx, c.Name, v.ID); err == nil {
		return a.existingCopy(ctx, c, existing.Version)
	}
	if latest, err := a.store.ModelVersion(ctx, c.Name, "latest"); err == nil {
		if err := a.checkCopyTarget(ctx, c, latest.ID, latest.Region); err != nil {
			return api.Copy{}, err
		}
	} else if !errors.Is(err, errs.ErrNotFound) {
		return api.Copy{}, err
	}
	cp := v.ModelVersion
	cp.Name, cp.Region, cp.Version, cp.CreatedAt = c.Name, c.Region, 0, c.CreatedAt
	cp, evs, err := a.store.PutModelCopy(ctx, cp, c, []store.Event{a.copyEvent(c)})
	if errors.Is(err, errs.ErrConflict) { // the same copy, made meanwhile
		if existing, gerr := a.store.ModelVersion(ctx, c.Name, v.ID); gerr == nil {
			return a.existingCopy(ctx, c, existing.Version)
		}
	}
	if err != nil {
		return api.Copy{}, fmt.Errorf("copy model %s: %w", src, err)
	}
	a.publish(evs)
	return toAPICopy(c, cp.Version, true, evs), nil
}

// copiedFrom is the source of version id of kind and name when it is a
// cross-region copy, else nil.
func (a *App) copiedFrom(ctx context.Context, kind, name, id string) (*api.CopySource, error) {
	c, err := a.store.CopySource(ctx, kind, name, id)
	if errors.Is(err, errs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &api.CopySource{Name: c.SourceName, ID: c.SourceID, Region: c.SourceRegion, CreatedAt: c.CreatedAt}, nil
}
