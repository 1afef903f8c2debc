package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/registry"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/store"
)

// resolver implements serve.Resolver over the registry and the base
// versions. It resolves only what the residency policy lets this server
// read: a base, or a model version and a copy of its base.
type resolver struct {
	store     store.Store
	registry  *registry.Registry
	residency residencyCheck
}

var _ serve.Resolver = (*resolver)(nil)

// Resolve maps a served model id to what to load. A bare name is a base
// when a base has that name, else the model's champion, else its latest
// version; name@vN and name@alias address a model version (or, for a base
// name, a base version).
func (r *resolver) Resolve(ctx context.Context, ref serve.Ref) (serve.Target, error) {
	if bv, err := r.base(ctx, ref); err == nil {
		if err := r.residency.read(baseObject(bv)); err != nil {
			return serve.Target{}, fmt.Errorf("serve %s: %w", ref, err)
		}
		return baseTarget(bv), nil
	} else if !errors.Is(err, errs.ErrNotFound) {
		return serve.Target{}, err
	}
	sel := ref.Ref.String()
	if !ref.HasRef {
		if _, err := r.registry.Version(ctx, ref.Name, "champion"); err == nil {
			sel = "champion"
		}
	}
	v, err := r.registry.Version(ctx, ref.Name, sel)
	if err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return serve.Target{}, errs.NotFound("model %s: no such base, model version or alias; see GET /v1/models", ref)
		}
		return serve.Target{}, err
	}
	t, err := r.modelTarget(ctx, v.ModelVersion)
	if err != nil {
		return t, fmt.Errorf("serve %s: %w", ref, err)
	}
	return t, nil
}

func (r *resolver) base(ctx context.Context, ref serve.Ref) (store.BaseVersion, error) {
	return r.store.BaseVersion(ctx, ref.Name, ref.Ref.String())
}

func baseTarget(bv store.BaseVersion) serve.Target {
	return serve.Target{Model: bv.Name, Version: bv.Version, VersionID: bv.ID, BaseID: bv.ID, BaseManifest: bv.Manifest}
}

func (r *resolver) modelTarget(ctx context.Context, v store.ModelVersion) (serve.Target, error) {
	bv, err := r.residency.readableModel(ctx, r.store, v)
	if err != nil {
		return serve.Target{}, err
	}
	return serve.Target{Model: v.Name, Version: v.Version, VersionID: v.ID, BaseID: v.BaseID, BaseManifest: bv.Manifest,
		Adapter: v.Adapter, Task: v.Task}, nil
}

// Models lists every servable id: each base (bare and @vN), each model
// version (@vN), each alias (@alias) and each model's bare name, leaving
// out what the residency policy does not let this server read.
func (r *resolver) Models(ctx context.Context) ([]serve.ModelEntry, error) {
	var out []serve.ModelEntry
	bases, err := r.store.BaseVersions(ctx, "")
	if err != nil {
		return nil, err
	}
	latestBase := map[string]store.BaseVersion{}
	for _, b := range bases {
		if r.residency.read(baseObject(b)) != nil {
			continue
		}
		out = append(out, serve.ModelEntry{ID: fmt.Sprintf("%s@v%d", b.Name, b.Version), OwnedBy: "tailor", Created: b.CreatedAt.Unix(), Target: baseTarget(b)})
		latestBase[b.Name] = b
	}
	for name, b := range latestBase {
		out = append(out, serve.ModelEntry{ID: name, OwnedBy: "tailor", Created: b.CreatedAt.Unix(), Target: baseTarget(b)})
	}
	versions, err := r.registry.Versions(ctx, "")
	if err != nil {
		return nil, err
	}
	named := map[string]bool{}
	for _, v := range versions {
		t, err := r.modelTarget(ctx, v.ModelVersion)
		if errors.Is(err, errs.ErrForbidden) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, serve.ModelEntry{ID: fmt.Sprintf("%s@v%d", v.Name, v.Version), OwnedBy: "tailor", Created: v.CreatedAt.Unix(), Target: t})
		for _, al := range v.Aliases {
			out = append(out, serve.ModelEntry{ID: v.Name + "@" + al, OwnedBy: "tailor", Created: v.CreatedAt.Unix(), Target: t})
		}
		if _, isBase := latestBase[v.Name]; !isBase && !named[v.Name] {
			named[v.Name] = true
			if t, err := r.Resolve(ctx, serve.Ref{Name: v.Name}); err == nil {
				out = append(out, serve.ModelEntry{ID: v.Name, OwnedBy: "tailor", Created: v.CreatedAt.Unix(), Target: t})
			}
		}
	}
	slices.SortFunc(out, func(a, b serve.ModelEntry) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// followModels tells the inference server about alias moves, new versions
// and deployment changes, from committed events, until ctx ends. An event
// the bus could not deliver is read back from the store, so no alias move
// or deployment change is lost; across replicas the store is also polled
// (followPoll), for an event whose replica died before publishing it. It
// follows every project's events and applies each in its own project.
func (a *App) followModels(server context.Context) {
	bus.FollowPolling(store.WithAllProjects(server), a.bus, a.store, a.logger, 256, -1, a.followPoll(), func(e store.Event) {
		ctx := store.WithProject(server, e.Project)
		var err error
		switch e.Type {
		case registry.EventAliasMoved:
			var d struct{ Name, Alias string }
			if err = json.Unmarshal(e.Data, &d); err == nil {
				err = a.serve.AliasMoved(ctx, d.Name, d.Alias)
			}
		case EventDeploymentChanged:
			var d struct{ Name string }
			if err = json.Unmarshal(e.Data, &d); err == nil {
				err = a.applyDeployment(ctx, d.Name)
			}
		case registry.EventVersionRegistered:
			var d struct{ Name string }
			if err = json.Unmarshal(e.Data, &d); err == nil {
				err = a.serve.ModelChanged(ctx, d.Name)
			}
		}
		if err != nil {
			a.logger.Warn("update served model", "event", e.Type, "project", e.Project, "subject", e.Subject, "err", err)
		}
	})
}
