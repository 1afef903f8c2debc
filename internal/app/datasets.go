package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/store"
)

// ImportDataset reads records from r into a new dataset version. Chunks are
// staged and become visible only once the version is recorded; a bad file
// leaves nothing behind.
func (a *App) ImportDataset(ctx context.Context, r io.Reader, o api.DatasetImportOptions) (api.DatasetImport, error) {
	if err := checkName("dataset", o.Name); err != nil {
		return api.DatasetImport{}, err
	}
	if o.Region == "" {
		o.Region = a.opts.Region
	}
	if err := a.checkRegion("dataset "+o.Name, o.Region); err != nil {
		return api.DatasetImport{}, err
	}
	if err := a.residency().write(residency.Object{Kind: "dataset", Name: o.Name, Region: o.Region}); err != nil {
		return api.DatasetImport{}, fmt.Errorf("import dataset %q: %w", o.Name, err)
	}
	if o.Owner == "" {
		o.Owner = a.opts.Owner
	}
	if err := freeText(ident.Label("owner", o.Owner), ident.Label("filename", o.FileName)); err != nil {
		return api.DatasetImport{}, err
	}
	opts := data.ImportOptions{Name: o.Name, Task: o.Task, Format: o.Format, FileName: o.FileName, Region: o.Region, Owner: o.Owner,
		Cache: a.imports}
	if o.Split != "" {
		split, err := parseSplit(o.Split)
		if err != nil {
			return api.DatasetImport{}, err
		}
		opts.Split = split
	}
	// From reading latest to recording the new version, this import owns
	// the name: the version it builds on is the one it records as parent.
	unlock, err := a.datasets.lock(ctx, o.Name)
	if err != nil {
		return api.DatasetImport{}, fmt.Errorf("import dataset %q: wait for earlier imports: %w", o.Name, err)
	}
	defer unlock()
	var parent store.DatasetVersion
	latest, err := a.store.DatasetVersion(ctx, o.Name, "latest")
	switch {
	case err == nil:
		parent = latest
	case !errors.Is(err, errs.ErrNotFound):
		return api.DatasetImport{}, err
	}
	if exp := o.ExpectParent; exp != "" {
		if exp == api.ExpectNone {
			exp = ""
		}
		if exp != parent.ID {
			return api.DatasetImport{}, staleParent(&store.StaleParentError{Name: o.Name, Expected: exp, Latest: parent.ID})
		}
	}
	if o.Append {
		if parent.ID == "" {
			return api.DatasetImport{}, errs.NotFound("dataset %q has no version to append to; import without --append first", o.Name)
		}
		if err := a.residency().read(datasetObject(parent)); err != nil {
			return api.DatasetImport{}, fmt.Errorf("append to dataset %q: %w", o.Name, err)
		}
		var pm data.Manifest
		if err := a.readJSON(ctx, parent.Manifest, &pm); err != nil {
			return api.DatasetImport{}, err
		}
		if o.Task == "" {
			opts.Task = pm.Task
		}
		opts.Append, opts.Src = &pm, a.blobs
		opts.SkipExisting = o.SkipExisting
	} else if o.SkipExisting {
		return api.DatasetImport{}, errs.Invalid("skip existing: only with append")
	}
	r, err = a.checkSpace(fmt.Sprintf("import dataset %q", o.Name), r)
	if err != nil {
		return api.DatasetImport{}, err
	}
	st, err := a.newStage()
	if err != nil {
		return api.DatasetImport{}, err
	}
	defer st.discard()
	m, err := data.Import(ctx, r, opts, st)
	if err != nil {
		return api.DatasetImport{}, fmt.Errorf("import dataset %q: %w", o.Name, err)
	}
	if existing, err := a.store.DatasetVersion(ctx, o.Name, m.ID); err == nil {
		return api.DatasetImport{Version: a.toAPIDataset(existing, m), Created: false,
			ChunksReused: len(m.Chunks), ChunksTotal: len(m.Chunks)}, nil
	}
	md, err := a.putJSON(ctx, st, m)
	if err != nil {
		return api.DatasetImport{}, err
	}
	a.gcMu.RLock() // until the version refers to the committed chunks
	defer a.gcMu.RUnlock()
	reused, err := a.commit(ctx, st)
	if err != nil {
		return api.DatasetImport{}, fmt.Errorf("import dataset %q: store chunks: %w", o.Name, err)
	}
	if o.Append {
		reused += len(m.Chunks) - countStaged(m, st)
	}
	v := store.DatasetVersion{ID: m.ID, Name: o.Name, Task: m.Task, Manifest: md, Records: m.Records, Bytes: m.Bytes,
		Region: o.Region, Owner: o.Owner, Parent: parent.ID, CreatedAt: a.opts.Now().UTC()}
	ev := a.event("dataset.version.created", v.ID, map[string]any{"name": v.Name, "id": v.ID, "records": v.Records, "parent": v.Parent})
	evs, err := a.store.PutDatasetVersion(ctx, v, []store.Event{ev})
	if stale := (*store.StaleParentError)(nil); errors.As(err, &stale) {
		// Another process recorded a version since we read latest.
		return api.DatasetImport{}, staleParent(stale)
	}
	if errors.Is(err, errs.ErrConflict) {
		existing, gerr := a.store.DatasetVersion(ctx, o.Name, m.ID)
		if gerr != nil {
			return api.DatasetImport{}, gerr
		}
		return api.DatasetImport{Version: a.toAPIDataset(existing, m), ChunksReused: len(m.Chunks), ChunksTotal: len(m.Chunks)}, nil
	}
	if err != nil {
		return api.DatasetImport{}, err
	}
	a.publish(evs)
	a.logger.Info("dataset version created", "name", v.Name, "id", v.ID, "records", v.Records)
	return api.DatasetImport{Version: a.toAPIDataset(v, m), Created: true, ChunksReused: reused, ChunksTotal: len(m.Chunks)}, nil
}

// staleParent says what to do when an import's parent is not latest.
func staleParent(e *store.StaleParentError) error {
	return fmt.Errorf("import dataset: %w; nothing was stored: read the latest version (`tailor dataset show %s`) and send the import again", e, e.Name)
}

// countStaged counts the manifest's chunks that this import wrote (the rest
// were reused from the appended version).
func countStaged(m *data.Manifest, st *stage) int {
	n := 0
	for _, c := range m.Chunks {
		if _, err := st.Stat(context.Background(), c.Digest); err == nil {
			n++
		}
	}
	return n
}

func parseSplit(s string) (data.SplitRatios, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return data.SplitRatios{}, errs.Invalid("split %q: want three ratios train,validation,test such as 0.8,0.1,0.1", s)
	}
	var v [3]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || !(f >= 0 && f <= 1) {
			return data.SplitRatios{}, errs.Invalid("split %q: ratio %q is not a number between 0 and 1", s, p)
		}
		v[i] = f
	}
	if sum := v[0] + v[1] + v[2]; math.Abs(sum-1) > 1e-9 {
		return data.SplitRatios{}, errs.Invalid("split %q: the ratios sum to %g; they must sum to 1", s, sum)
	}
	return data.SplitRatios{Train: v[0], Validation: v[1], Test: v[2]}, nil
}

func (a *App) toAPIDataset(v store.DatasetVersion, m *data.Manifest) api.DatasetVersion {
	out := api.DatasetVersion{ID: v.ID, Name: v.Name, Task: v.Task, Records: v.Records, Bytes: v.Bytes, Region: v.Region,
		Owner: v.Owner, Parent: v.Parent, Manifest: v.Manifest, CreatedAt: v.CreatedAt}
	if m != nil {
		for _, c := range m.Chunks {
			out.Chunks = append(out.Chunks, c.Digest)
		}
		c := m.Split.Counts
		out.Splits = map[string]int64{"train": c.Train, "validation": c.Validation, "test": c.Test}
	}
	return out
}

// Datasets lists dataset versions.
func (a *App) Datasets(ctx context.Context, name string) ([]api.DatasetVersion, error) {
	vs, err := a.store.DatasetVersions(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]api.DatasetVersion, len(vs))
	for i, v := range vs {
		out[i] = a.toAPIDataset(v, nil)
	}
	return out, nil
}

func (a *App) datasetVersion(ctx context.Context, name, ref string) (store.DatasetVersion, *data.Manifest, error) {
	v, err := a.store.DatasetVersion(ctx, name, ref)
	if err != nil {
		return v, nil, err
	}
	var m data.Manifest
	if err := a.readJSON(ctx, v.Manifest, &m); err != nil {
		return v, nil, err
	}
	return v, &m, nil
}

// readableDataset resolves a dataset version whose records are about to
// be read and checks residency before its manifest is read.
func (a *App) readableDataset(ctx context.Context, name, ref, what string) (*data.Manifest, error) {
	v, err := a.store.DatasetVersion(ctx, name, ref)
	if err != nil {
		return nil, err
	}
	if err := a.residency().read(datasetObject(v)); err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, name, err)
	}
	var m data.Manifest
	if err := a.readJSON(ctx, v.Manifest, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Dataset returns one version with its manifest.
func (a *App) Dataset(ctx context.Context, name, ref string) (api.DatasetDetail, error) {
	v, m, err := a.datasetVersion(ctx, name, ref)
	if err != nil {
		return api.DatasetDetail{}, err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return api.DatasetDetail{}, err
	}
	out := api.DatasetDetail{Version: a.toAPIDataset(v, m), Manifest: raw}
	if out.Version.CopiedFrom, err = a.copiedFrom(ctx, store.CopyDataset, v.Name, v.ID); err != nil {
		return api.DatasetDetail{}, err
	}
	return out, nil
}

// DiffDatasets compares versions a and b of a dataset.
func (a *App) DiffDatasets(ctx context.Context, name, ra, rb string) (json.RawMessage, error) {
	if ra == "" {
		return nil, errs.Invalid("dataset diff: name the first version (a=)")
	}
	ma, err := a.readableDataset(ctx, name, ra, "diff dataset")
	if err != nil {
		return nil, err
	}
	mb, err := a.readableDataset(ctx, name, rb, "diff dataset")
	if err != nil {
		return nil, err
	}
	d, err := data.Diff(ctx, a.blobs, ma, mb)
	if err != nil {
		return nil, fmt.Errorf("diff dataset %q: %w", name, err)
	}
	return json.Marshal(d)
}

// DatasetRecords streams the records of one version (one split, or all
// when split is "") as JSON lines to w.
func (a *App) DatasetRecords(ctx context.Context, name, ref, split string, w io.Writer) error {
	switch split {
	case "", data.SplitTrain, data.SplitValidation, data.SplitTest:
	default:
		return errs.Invalid("split %q: want train, validation or test (or none for all)", split)
	}
	m, err := a.readableDataset(ctx, name, ref, "export dataset")
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return data.ReadRecords(ctx, a.blobs, m, split, func(r data.Record) error { return enc.Encode(r) })
}
