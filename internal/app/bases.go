package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/store"
)

// ImportBase reads a tar stream of a Hugging Face model folder, validates it
// and records a base version. Nothing is stored if any check fails.
func (a *App) ImportBase(ctx context.Context, name, region string, tarStream io.Reader) (api.BaseImport, error) {
	if err := checkName("base model", name); err != nil {
		return api.BaseImport{}, err
	}
	if region == "" {
		region = a.opts.Region
	}
	if err := a.checkRegion("base model "+name, region); err != nil {
		return api.BaseImport{}, err
	}
	if err := a.residency().write(residency.Object{Kind: "base", Name: name, Region: region}); err != nil {
		return api.BaseImport{}, fmt.Errorf("import base model %q: %w", name, err)
	}
	tarStream, err := a.checkSpace(fmt.Sprintf("import base model %q", name), tarStream)
	if err != nil {
		return api.BaseImport{}, err
	}
	st, err := a.newStage()
	if err != nil {
		return api.BaseImport{}, err
	}
	defer st.discard()
	m, err := basemodel.Import(ctx, basemodel.NewTarSource(tarStream), basemodel.ImportOptions{Name: name}, st)
	if err != nil {
		return api.BaseImport{}, fmt.Errorf("import base model %q: %w", name, err)
	}
	if existing, err := a.store.BaseVersion(ctx, name, m.Fingerprint); err == nil {
		return api.BaseImport{Version: toAPIBase(existing, m)}, nil
	}
	md, err := a.putJSON(ctx, st, m)
	if err != nil {
		return api.BaseImport{}, err
	}
	a.gcMu.RLock() // until the version refers to the committed files
	defer a.gcMu.RUnlock()
	if _, err := a.commit(ctx, st); err != nil {
		return api.BaseImport{}, fmt.Errorf("import base model %q: store files: %w", name, err)
	}
	v := store.BaseVersion{ID: m.Fingerprint, Name: name, Arch: m.Arch, Params: m.Params, Manifest: md, Region: region,
		CreatedAt: a.opts.Now().UTC()}
	ev := a.event("base.version.created", v.ID, map[string]any{"name": name, "id": v.ID, "arch": v.Arch})
	v, evs, err := a.store.PutBaseVersion(ctx, v, []store.Event{ev})
	if errors.Is(err, errs.ErrConflict) {
		existing, gerr := a.store.BaseVersion(ctx, name, m.Fingerprint)
		if gerr != nil {
			return api.BaseImport{}, gerr
		}
		return api.BaseImport{Version: toAPIBase(existing, m)}, nil
	}
	if err != nil {
		return api.BaseImport{}, err
	}
	a.publish(evs)
	a.logger.Info("base version created", "name", name, "version", v.Version, "id", v.ID)
	return api.BaseImport{Version: toAPIBase(v, m), Created: true}, nil
}

func toAPIBase(v store.BaseVersion, m *basemodel.Manifest) api.BaseVersion {
	out := api.BaseVersion{ID: v.ID, Name: v.Name, Version: v.Version, Arch: v.Arch, Params: v.Params, Region: v.Region,
		Manifest: v.Manifest, CreatedAt: v.CreatedAt}
	if m != nil {
		for _, f := range m.Files {
			out.Files = append(out.Files, api.BaseFile{Name: f.Name, Digest: f.Digest, Size: f.Size})
		}
	}
	return out
}

// Bases lists base versions.
func (a *App) Bases(ctx context.Context, name string) ([]api.BaseVersion, error) {
	vs, err := a.store.BaseVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]api.BaseVersion, len(vs))
	for i, v := range vs {
		out[i] = toAPIBase(v, nil)
	}
	return out, nil
}

// Base returns one base version resolved from a selector reference.
func (a *App) Base(ctx context.Context, name, ref string) (api.BaseVersion, error) {
	v, err := a.resolveBase(ctx, name, ref)
	if err != nil {
		return api.BaseVersion{}, err
	}
	var m basemodel.Manifest
	if err := a.readJSON(ctx, v.Manifest, &m); err != nil {
		return api.BaseVersion{}, err
	}
	out := toAPIBase(v, &m)
	if out.CopiedFrom, err = a.copiedFrom(ctx, store.CopyBase, v.Name, v.ID); err != nil {
		return api.BaseVersion{}, err
	}
	return out, nil
}

// resolveBase resolves ref in ident.ParseRef's grammar: "", "latest", "v3",
// "3", an id or its prefix, or an alias.
func (a *App) resolveBase(ctx context.Context, name, ref string) (store.BaseVersion, error) {
	v, err := a.store.BaseVersion(ctx, name, ref)
	if errors.Is(err, errs.ErrNotFound) {
		return v, errs.NotFound("base model %s@%s: no such version or alias; see `tailor base list`", name, ref)
	}
	return v, err
}

// ImportBaseFromRun records the model a pretraining run produced as a base
// version: the run's result is already a validated base-model manifest.
func (a *App) ImportBaseFromRun(ctx context.Context, name, runID string) (api.BaseImport, error) {
	if err := checkName("base model", name); err != nil {
		return api.BaseImport{}, err
	}
	r, err := a.store.Run(ctx, runID)
	if err != nil {
		return api.BaseImport{}, err
	}
	if r.State != store.RunSucceeded {
		return api.BaseImport{}, errs.Conflict("run %s is %s; only a succeeded pretraining run can become a base", runID, r.State)
	}
	var m basemodel.Manifest
	if err := a.readJSON(ctx, r.Result, &m); err != nil || m.Fingerprint == "" {
		return api.BaseImport{}, errs.Invalid("run %s produced an adapter, not a model; only full-weight runs (kind full) can become a base", runID)
	}
	v, created, err := a.putRunBase(ctx, name, runID, r.Result, &m, "")
	if err != nil {
		return api.BaseImport{}, err
	}
	return api.BaseImport{Version: toAPIBase(v, &m), Created: created}, nil
}

// BaseFile streams one file of a base version to w.
func (a *App) BaseFile(ctx context.Context, name, ref, file string, w io.Writer) error {
	v, err := a.resolveBase(ctx, name, ref)
	if err != nil {
		return err
	}
	if err := a.residency().read(baseObject(v)); err != nil {
		return fmt.Errorf("export base %s: %w", name, err)
	}
	var m basemodel.Manifest
	if err := a.readJSON(ctx, v.Manifest, &m); err != nil {
		return err
	}
	f, ok := m.File(file)
	if !ok {
		return errs.NotFound("base %s v%d has no file %q", name, v.Version, file)
	}
	rc, err := a.blobs.Open(ctx, f.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}
