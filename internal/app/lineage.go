package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
)

// Lineage returns the input graph of a run (by id) or of an adapter (by its
// blob digest): the recipe, the dataset version with its chunks, the base
// version with its files, and the engine, each with its hash.
func (a *App) Lineage(ctx context.Context, id string) (api.LineageNode, error) {
	r, err := a.store.Run(ctx, id)
	if errors.Is(err, errs.ErrNotFound) {
		r, err = a.runByResult(ctx, id)
	}
	if err != nil {
		return api.LineageNode{}, err
	}
	var in run.Inputs
	if err := json.Unmarshal(r.Inputs, &in); err != nil {
		return api.LineageNode{}, fmt.Errorf("run %s: unreadable inputs: %w", r.ID, err)
	}
	root := &api.LineageNode{Kind: "run", ID: r.ID, Hash: r.Key, Detail: fmt.Sprintf("state %s, step %d/%d", r.State, r.Step, r.TotalSteps)}
	if r.Result != "" {
		root.Children = append(root.Children, &api.LineageNode{Kind: "adapter", ID: r.Result, Hash: r.Result, Detail: "output"})
	}
	if r.Checkpoint != "" {
		root.Children = append(root.Children, &api.LineageNode{Kind: "checkpoint", ID: r.Checkpoint, Hash: r.Checkpoint, Detail: fmt.Sprintf("last checkpoint, step %d", r.Step)})
	}
	root.Children = append(root.Children, &api.LineageNode{Kind: "recipe", ID: in.Recipe.ID, Name: fmt.Sprintf("%s@v%d", in.Recipe.Name, in.Recipe.Version), Hash: in.Recipe.ID})
	dn := &api.LineageNode{Kind: "dataset", ID: in.Dataset.ID, Name: in.Dataset.Name, Hash: in.Dataset.ID, Detail: "selector " + in.Dataset.Selector}
	var dm data.Manifest
	if err := a.readJSON(ctx, in.Dataset.Manifest, &dm); err == nil {
		dn.Detail += fmt.Sprintf(", %d records, manifest %s", dm.Records, in.Dataset.Manifest)
		for _, c := range dm.Chunks {
			dn.Children = append(dn.Children, &api.LineageNode{Kind: "chunk", ID: c.Digest, Hash: c.Digest, Detail: fmt.Sprintf("%d records", c.Records)})
		}
	}
	root.Children = append(root.Children, dn)
	if in.Base.ID != "" {
		bn := &api.LineageNode{Kind: "base", ID: in.Base.ID, Name: fmt.Sprintf("%s@v%d", in.Base.Name, in.Base.Version), Hash: in.Base.ID, Detail: "selector " + in.Base.Selector}
		var bm basemodel.Manifest
		if err := a.readJSON(ctx, in.Base.Manifest, &bm); err == nil {
			for _, f := range bm.Files {
				bn.Children = append(bn.Children, &api.LineageNode{Kind: "file", ID: f.Digest, Name: f.Name, Hash: f.Digest})
			}
		}
		root.Children = append(root.Children, bn)
	}
	if in.Init.ID != "" {
		root.Children = append(root.Children,
			&api.LineageNode{Kind: "init", ID: in.Init.ID, Name: in.Init.Name, Hash: in.Init.Manifest,
				Detail: "model version whose adapter and head training started from, selector " + in.Init.Selector},
			&api.LineageNode{Kind: "replay", ID: in.Replay.ID, Name: in.Replay.Name, Hash: in.Replay.ID, Detail: "replayed dataset, selector " + in.Replay.Selector},
			&api.LineageNode{Kind: "forgetting", ID: in.Forgetting.ID, Name: in.Forgetting.Name, Hash: in.Forgetting.ID,
				Detail: "forgetting gate dataset, selector " + in.Forgetting.Selector})
	}
	root.Children = append(root.Children, &api.LineageNode{Kind: "engine", ID: in.Engine, Name: in.Engine})
	return *root, nil
}

func (a *App) runByResult(ctx context.Context, digest string) (store.Run, error) {
	rs, err := a.store.Runs(ctx, store.RunFilter{States: []store.RunState{store.RunSucceeded}})
	if err != nil {
		return store.Run{}, err
	}
	for _, r := range slices.Backward(rs) {
		if r.Result == digest || (len(digest) >= 12 && strings.HasPrefix(r.Result, digest)) {
			return r, nil
		}
	}
	return store.Run{}, errs.NotFound("lineage %q: no run or adapter with that id; see `tailor run list`", digest)
}
