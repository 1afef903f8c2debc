package app

import (
	"context"
	"fmt"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/store"
)

// Fsck re-hashes every blob and checks that every digest the metadata
// refers to is present.
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

// references lists every blob digest the metadata points at.
func (a *App) references(ctx context.Context) ([]reference, error) {
	var refs []reference
	dvs, err := a.store.DatasetVersions(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, v := range dvs {
		from := fmt.Sprintf("dataset %s@%s", v.Name, v.ID[:12])
		refs = append(refs, reference{v.Manifest, from + " manifest"})
		var m data.Manifest
		if a.readJSON(ctx, v.Manifest, &m) == nil {
			for _, c := range m.Chunks {
				refs = append(refs, reference{c.Digest, from + " chunk"})
			}
		}
	}
	bvs, err := a.store.BaseVersions(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, v := range bvs {
		from := fmt.Sprintf("base %s@v%d", v.Name, v.Version)
		refs = append(refs, reference{v.Manifest, from + " manifest"})
		var m basemodel.Manifest
		if a.readJSON(ctx, v.Manifest, &m) == nil {
			for _, f := range m.Files {
				refs = append(refs, reference{f.Digest, from + " file " + f.Name})
			}
		}
	}
	runs, err := a.store.Runs(ctx, store.RunFilter{})
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if r.Checkpoint != "" {
			refs = append(refs, reference{r.Checkpoint, "run " + r.ID + " checkpoint"})
		}
		if r.Result != "" {
			refs = append(refs, reference{r.Result, "run " + r.ID + " result"})
		}
	}
	return refs, nil
}
