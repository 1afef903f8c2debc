package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// Fsck re-hashes every blob and checks that every digest the metadata of
// ctx's project refers to is present.
func (a *App) Fsck(ctx context.Context) (api.FsckReport, error) {
	var rep api.FsckReport
	err := a.blobs.List(ctx, func(d blob.Digest, size int64) error {
		rep.Blobs++
		rep.Bytes += size
		if err := a.blobs.Verify(ctx, d); err != nil {
			rep.Bad = append(rep.Bad, api.FsckIssue{Digest: d, Problem: err.Error()})
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("fsck: list blobs: %w", err)
	}
	refs, err := a.references(ctx)
	if err != nil {
		return rep, err
	}
	rep.Refs = len(refs)
	for _, r := range refs {
		if _, err := a.blobs.Stat(ctx, r.digest); err != nil {
			rep.Missing = append(rep.Missing, api.FsckIssue{Digest: r.digest, Problem: err.Error(), Ref: r.from})
		}
	}
	return rep, nil
}

type reference struct{ digest, from string }

// references lists every blob digest the metadata of ctx's project points
// at (GC gathers every project's), and what the
// manifests among them point at in turn: dataset manifests their chunks;
// base manifests their files; run results, model adapters (adapter or
// trained-base manifests) their files; plus run checkpoints, eval reports
// and monitor reference profiles. Fsck checks each is present; GC keeps
// exactly these.
func (a *App) references(ctx context.Context) ([]reference, error) {
	var refs []reference
	add := func(d, from string) {
		if d != "" {
			refs = append(refs, reference{d, from})
		}
	}
	// nested adds d and every digest its JSON (a manifest) names.
	nested := func(d, from string) {
		add(d, from)
		for _, n := range a.manifestDigests(ctx, d) {
			add(n, from+" file")
		}
	}
	dvs, err := a.store.DatasetVersions(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, v := range dvs {
		from := fmt.Sprintf("dataset %s@%s", v.Name, v.ID[:12])
		add(v.Manifest, from+" manifest")
		var m data.Manifest
		if a.readJSON(ctx, v.Manifest, &m) == nil {
			for _, c := range m.Chunks {
				add(c.Digest, from+" chunk")
			}
		}
	}
	bvs, err := a.store.BaseVersions(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, v := range bvs {
		from := fmt.Sprintf("base %s@v%d", v.Name, v.Version)
		add(v.Manifest, from+" manifest")
		var m basemodel.Manifest
		if a.readJSON(ctx, v.Manifest, &m) == nil {
			for _, f := range m.Files {
				add(f.Digest, from+" file "+f.Name)
			}
		}
	}
	runs, err := a.store.Runs(ctx, store.RunFilter{})
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		add(r.Checkpoint, checkpointRef(r.ID))
		nested(r.Result, "run "+r.ID+" result")
	}
	mvs, err := a.store.ModelVersions(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, v := range mvs {
		from := fmt.Sprintf("model %s@v%d", v.Name, v.Version)
		nested(v.Adapter, from+" adapter")
		reps, err := a.store.EvalReports(ctx, v.ID)
		if err != nil {
			return nil, err
		}
		for _, rep := range reps {
			add(rep.Digest, from+" eval report")
		}
	}
	specs, err := a.monitorSpecs(ctx)
	if err != nil {
		return nil, err
	}
	for _, sp := range specs {
		name := sp.version.Name
		st, err := a.store.MonitorState(ctx, name)
		if err != nil && !errors.Is(err, errs.ErrNotFound) {
			return nil, err
		}
		add(st.Profile, "monitor "+name+" reference profile")
	}
	return refs, nil
}

// manifestMax bounds the blobs manifestDigests reads as JSON.
const manifestMax = 8 << 20

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// manifestDigests returns the blob digests named anywhere in blob d's JSON
// (a manifest's files), or none when d is not a JSON object of at most
// manifestMax bytes.
func (a *App) manifestDigests(ctx context.Context, d string) []string {
	if d == "" {
		return nil
	}
	if n, err := a.blobs.Stat(ctx, d); err != nil || n > manifestMax {
		return nil
	}
	var v any
	if a.readJSON(ctx, d, &v) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			if digestRE.MatchString(x) && x != d {
				out = append(out, x)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				walk(x[k])
			}
		}
	}
	if m, ok := v.(map[string]any); ok {
		walk(m)
	}
	return out
}
