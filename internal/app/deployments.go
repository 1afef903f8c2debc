package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/registry"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/specyaml"
	"github.com/tailor-ml/tailor/internal/store"
)

// specDeployment is the kind of deployment versions in the store.
const specDeployment = "deployment"

// EventDeploymentChanged is appended with every new deployment version.
const EventDeploymentChanged = "deployment.changed"

// What made a deployment version.
const (
	deploySet      = "set"
	deployPromote  = "promote"
	deployRollback = "rollback"
)

// deploymentDoc is the stored form of one deployment version. It names
// the version before it, so every change is a new version (even back to
// an earlier policy) and its id, the sha256 of this form, is unique.
type deploymentDoc struct {
	serve.Deployment
	Action string `json:"action"`
	Actor  string `json:"actor"`
	Reason string `json:"reason,omitempty"`
	Parent string `json:"parent,omitempty"`
	// Region is where the deployment serves: the region of the server
	// that stored it ("" before regions were recorded).
	Region string `json:"region,omitempty"`
}

func parseDeploymentDoc(v store.SpecVersion) (deploymentDoc, error) {
	var d deploymentDoc
	if err := json.Unmarshal(v.Normalized, &d); err != nil {
		return d, fmt.Errorf("stored deployment %s v%d: %w", v.Name, v.Version, err)
	}
	if err := d.Check(); err != nil {
		return d, fmt.Errorf("stored deployment %s v%d: %w", v.Name, v.Version, err)
	}
	return d, nil
}

// samePolicy reports whether a and b serve requests the same way.
func samePolicy(a, b serve.Deployment) bool {
	if a.Alias != b.Alias || a.Shadow != b.Shadow || (a.Canary == nil) != (b.Canary == nil) {
		return false
	}
	return a.Canary == nil || *a.Canary == *b.Canary
}

// Deploy stores a new version of a deployment, stating the whole policy
// (a part left out is removed), commits its event in the same transaction
// and applies it to the inference server. The same policy again is no
// change (Created false).
func (a *App) Deploy(ctx context.Context, s api.DeploymentSpec) (api.DeploymentApply, error) {
	if err := ident.Text("reason", s.Reason); err != nil {
		return api.DeploymentApply{}, err
	}
	d := serve.Deployment{Model: s.Model, Alias: s.Alias, Shadow: s.Shadow}
	if s.Canary != nil {
		d.Canary = &serve.Canary{Model: s.Canary.Model, Percent: s.Canary.Percent}
	}
	if err := d.Check(); err != nil {
		return api.DeploymentApply{}, err
	}
	unlock, err := a.deployLocks.lock(ctx, d.Model)
	if err != nil {
		return api.DeploymentApply{}, err
	}
	defer unlock()
	if err := a.checkDeployment(ctx, d); err != nil {
		return api.DeploymentApply{}, err
	}
	return a.changeDeployment(ctx, d, deploySet, actorOf(ctx), s.Reason)
}

// checkDeployment holds d's parts to the registry: the model has versions,
// the alias exists, the canary is another version of the model and the
// shadow resolves to another version than the primary.
func (a *App) checkDeployment(ctx context.Context, d serve.Deployment) error {
	vs, err := a.store.ModelVersions(ctx, d.Model)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return errs.NotFound("deployment %s: field \"model\": no model %q is registered; see `tailor model list`", d.Model, d.Model)
	}
	primary, err := a.registry.Version(ctx, d.Model, d.Alias)
	if errors.Is(err, errs.ErrNotFound) {
		return errs.NotFound("deployment %s: field \"alias\": model %s has no alias %q; point it at a version first (`tailor model promote %s vN --alias %s`)",
			d.Model, d.Model, d.Alias, d.Model, d.Alias)
	}
	if err != nil {
		return err
	}
	if _, err := a.residency().readableModel(ctx, a.store, primary.ModelVersion); err != nil {
		return fmt.Errorf("deployment %s: field \"alias\" %q: %w", d.Model, d.Alias, err)
	}
	if c := d.Canary; c != nil {
		ref, _ := serve.ParseRef(c.Model)
		v, err := a.registry.Version(ctx, d.Model, ref.Ref.String())
		if err != nil {
			return fmt.Errorf("deployment %s: field \"canary.model\" %q: %w", d.Model, c.Model, err)
		}
		if _, err := a.residency().readableModel(ctx, a.store, v.ModelVersion); err != nil {
			return fmt.Errorf("deployment %s: field \"canary.model\" %q: %w", d.Model, c.Model, err)
		}
		if v.ID == primary.ID {
			return errs.Invalid("deployment %s: field \"canary.model\" %q is v%d, which the primary %s already serves; name another version",
				d.Model, c.Model, v.Version, d.Primary())
		}
	}
	if d.Shadow != "" {
		ref, _ := serve.ParseRef(d.Shadow)
		t, err := a.servingResolver().Resolve(ctx, ref)
		if err != nil {
			return fmt.Errorf("deployment %s: field \"shadow\" %q: %w", d.Model, d.Shadow, err)
		}
		if t.VersionID == primary.ID {
			return errs.Invalid("deployment %s: field \"shadow\" %q is %s, which the primary %s already serves; name another version",
				d.Model, d.Shadow, t.VersionName(), d.Primary())
		}
	}
	return nil
}

// changeDeployment stores d as the next version of its deployment with
// its event, publishes the event after the commit and applies the newest
// version to the inference server. The caller holds the name's lock. A
// "set" that changes nothing stores nothing.
func (a *App) changeDeployment(ctx context.Context, d serve.Deployment, action, actor, reason string) (api.DeploymentApply, error) {
	latest, err := a.store.Spec(ctx, specDeployment, d.Model, "latest")
	var parent string
	switch {
	case err == nil:
		prev, err := parseDeploymentDoc(latest)
		if err != nil {
			return api.DeploymentApply{}, err
		}
		if action == deploySet && samePolicy(prev.Deployment, d) {
			return api.DeploymentApply{Deployment: a.toAPIDeployment(ctx, latest, prev, false)}, nil
		}
		parent = latest.ID
	case !errors.Is(err, errs.ErrNotFound):
		return api.DeploymentApply{}, err
	}
	doc := deploymentDoc{Deployment: d, Action: action, Actor: actor, Reason: reason, Parent: parent, Region: a.opts.Region}
	norm, err := json.Marshal(doc)
	if err != nil {
		return api.DeploymentApply{}, err
	}
	id := specyaml.ID(norm)
	ev := a.event(EventDeploymentChanged, id, map[string]any{"name": d.Model, "id": id, "parent": parent, "action": action,
		"alias": d.Alias, "canary": d.Canary, "shadow": d.Shadow, "actor": actor, "reason": reason})
	v, evs, err := a.store.PutSpec(ctx, store.SpecVersion{Kind: specDeployment, ID: id, Name: d.Model, Normalized: norm,
		CreatedAt: a.opts.Now().UTC()}, []store.Event{ev})
	if errors.Is(err, errs.ErrConflict) {
		// The same change on the same parent, stored meanwhile (another
		// process): it is in effect.
		if v, err := a.store.Spec(ctx, specDeployment, d.Model, id); err == nil {
			return api.DeploymentApply{Deployment: a.toAPIDeployment(ctx, v, doc, false)}, nil
		}
	}
	if err != nil {
		return api.DeploymentApply{}, fmt.Errorf("deployment %s: %w", d.Model, err)
	}
	a.publish(evs)
	if err := a.applyDeployment(ctx, d.Model); err != nil {
		return api.DeploymentApply{}, fmt.Errorf("deployment %s v%d is stored but not applied: %w", d.Model, v.Version, err)
	}
	out := a.toAPIDeployment(ctx, v, doc, true)
	if len(evs) == 1 {
		out.EventSeq = evs[0].Seq
	}
	a.logger.Info("deployment changed", "model", d.Model, "version", v.Version, "action", action, "actor", actor,
		"alias", d.Alias, "canary", d.Canary != nil, "shadow", d.Shadow)
	return api.DeploymentApply{Deployment: out, Created: true}, nil
}

// applyDeployment gives the inference server the newest stored version of
// model's deployment in ctx's project. It reads and applies under one
// lock, so of two concurrent calls the later one applies what is newest
// then: a stale read never overwrites a newer version. The event follower
// calls it too, in the event's project.
func (a *App) applyDeployment(ctx context.Context, model string) error {
	a.deployMu.Lock()
	defer a.deployMu.Unlock()
	v, err := a.store.Spec(ctx, specDeployment, model, "latest")
	if errors.Is(err, errs.ErrNotFound) {
		a.serve.Undeploy(ctx, model)
		return nil
	}
	if err != nil {
		return err
	}
	d, err := parseDeploymentDoc(v)
	if err != nil {
		return err
	}
	return a.serve.Deploy(ctx, d.Deployment)
}

// restoreDeployments gives the inference server the newest version of
// every stored deployment of every project (at startup).
func (a *App) restoreDeployments(ctx context.Context) error {
	return store.InProjects(ctx, a.store, func(ctx context.Context, project string) error {
		all, err := a.store.Specs(ctx, specDeployment, "")
		if err != nil {
			return fmt.Errorf("restore deployments of project %s: %w", project, err)
		}
		var names []string
		for _, v := range all {
			if !slices.Contains(names, v.Name) {
				names = append(names, v.Name)
			}
		}
		for _, name := range names {
			if err := a.applyDeployment(ctx, name); err != nil {
				a.logger.Error("restore deployment; its model is served without it", "project", project, "model", name, "err", err)
			}
		}
		return nil
	})
}

func (a *App) servingResolver() *resolver {
	return &resolver{store: a.store, registry: a.registry, residency: a.residency()}
}

// toAPIDeployment describes a stored version; with serving, also what its
// parts resolve to now.
func (a *App) toAPIDeployment(ctx context.Context, v store.SpecVersion, d deploymentDoc, serving bool) api.Deployment {
	out := api.Deployment{Model: d.Model, Alias: d.Alias, Shadow: d.Shadow, ID: v.ID, Version: v.Version, Action: d.Action,
		Actor: d.Actor, Reason: d.Reason, Region: d.Region, CreatedAt: v.CreatedAt}
	if d.Canary != nil {
		out.Canary = &api.Canary{Model: d.Canary.Model, Percent: d.Canary.Percent}
	}
	if !serving {
		return out
	}
	s := &api.DeploymentServing{}
	r := a.servingResolver()
	resolve := func(part, addr string) string {
		ref, err := serve.ParseRef(addr)
		var t serve.Target
		if err == nil {
			t, err = r.Resolve(ctx, ref)
		}
		if err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("%s %s: %v", part, addr, err))
			return ""
		}
		return t.VersionName()
	}
	s.Primary = resolve("primary", d.Primary())
	if d.Canary != nil {
		s.Canary = resolve("canary", d.Canary.Model)
		if s.Canary != "" && s.Canary == s.Primary {
			s.Problems = append(s.Problems, fmt.Sprintf("canary %s now resolves to the primary's version %s: remove it with `tailor deploy promote %s` (or rollback)",
				d.Canary.Model, s.Primary, d.Model))
		}
	}
	if d.Shadow != "" {
		s.Shadow = resolve("shadow", d.Shadow)
	}
	out.Serving = s
	return out
}

// latestDeployment returns the newest version of model's deployment.
func (a *App) latestDeployment(ctx context.Context, model string) (store.SpecVersion, deploymentDoc, error) {
	if err := checkName("model", model); err != nil {
		return store.SpecVersion{}, deploymentDoc{}, err
	}
	v, err := a.store.Spec(ctx, specDeployment, model, "latest")
	if errors.Is(err, errs.ErrNotFound) {
		return v, deploymentDoc{}, errs.NotFound("model %s has no deployment; create one with `tailor deploy %s --alias champion`", model, model)
	}
	if err != nil {
		return v, deploymentDoc{}, err
	}
	d, err := parseDeploymentDoc(v)
	return v, d, err
}

// Deployment returns the newest version of model's deployment and what
// its parts resolve to now.
func (a *App) Deployment(ctx context.Context, model string) (api.Deployment, error) {
	v, d, err := a.latestDeployment(ctx, model)
	if err != nil {
		return api.Deployment{}, err
	}
	return a.toAPIDeployment(ctx, v, d, true), nil
}

// Deployments lists the newest version of every deployment, by model name.
func (a *App) Deployments(ctx context.Context) ([]api.Deployment, error) {
	all, err := a.store.Specs(ctx, specDeployment, "")
	if err != nil {
		return nil, err
	}
	latest := map[string]store.SpecVersion{}
	var names []string
	for _, v := range all {
		if _, ok := latest[v.Name]; !ok {
			names = append(names, v.Name)
		}
		latest[v.Name] = v
	}
	out := []api.Deployment{}
	for _, name := range names {
		d, err := parseDeploymentDoc(latest[name])
		if err != nil {
			return nil, err
		}
		out = append(out, a.toAPIDeployment(ctx, latest[name], d, true))
	}
	return out, nil
}

// DeploymentHistory lists every version of model's deployment, oldest
// first, each with the seq of its deployment.changed event.
func (a *App) DeploymentHistory(ctx context.Context, model string) ([]api.Deployment, error) {
	if _, _, err := a.latestDeployment(ctx, model); err != nil {
		return nil, err
	}
	vs, err := a.store.Specs(ctx, specDeployment, model)
	if err != nil {
		return nil, err
	}
	seqs := map[string]int64{}
	for _, v := range vs {
		seqs[v.ID] = 0
	}
	// Events have no index by type: read them all (see docs/serving.md).
	if err := bus.Replay(ctx, a.store, 0, func(e store.Event) {
		if _, ok := seqs[e.Subject]; ok && e.Type == EventDeploymentChanged {
			seqs[e.Subject] = e.Seq
		}
	}); err != nil {
		return nil, err
	}
	out := make([]api.Deployment, 0, len(vs))
	for _, v := range vs {
		d, err := parseDeploymentDoc(v)
		if err != nil {
			return nil, err
		}
		ad := a.toAPIDeployment(ctx, v, d, false)
		ad.EventSeq = seqs[v.ID]
		out = append(out, ad)
	}
	return out, nil
}

// PromoteCanary moves the deployment's alias to its canary's version
// through the registry's Promote (so its gates and approvals apply) and
// stores the deployment without the canary. When the alias needs
// approval, the approval is returned and the canary keeps running; once
// approved (the alias then points at the canary's version), promoting
// again only removes the canary.
func (a *App) PromoteCanary(ctx context.Context, model string, p api.DeploymentPromote) (api.DeploymentPromotion, error) {
	if err := freeText(ident.Text("reason", p.Reason), ident.Text("override_reason", p.OverrideReason)); err != nil {
		return api.DeploymentPromotion{}, err
	}
	if strings.TrimSpace(p.Reason) == "" {
		return api.DeploymentPromotion{}, errs.Invalid("deploy promote %s: reason is required: say why the canary should serve everyone", model)
	}
	if err := checkName("model", model); err != nil {
		return api.DeploymentPromotion{}, err
	}
	unlock, err := a.deployLocks.lock(ctx, model)
	if err != nil {
		return api.DeploymentPromotion{}, err
	}
	defer unlock()
	_, d, err := a.latestDeployment(ctx, model)
	if err != nil {
		return api.DeploymentPromotion{}, err
	}
	if d.Canary == nil {
		return api.DeploymentPromotion{}, errs.Conflict("deploy promote %s: the deployment has no canary; add one with `tailor deploy %s --alias %s --canary %s@vN:PCT`",
			model, model, d.Alias, model)
	}
	ref, _ := serve.ParseRef(d.Canary.Model)
	cv, err := a.registry.Version(ctx, model, ref.Ref.String())
	if err != nil {
		return api.DeploymentPromotion{}, fmt.Errorf("deploy promote %s: canary %s: %w", model, d.Canary.Model, err)
	}
	var out api.DeploymentPromotion
	if cur, err := a.registry.Version(ctx, model, d.Alias); err != nil || cur.ID != cv.ID {
		pr, err := a.registry.Promote(ctx, registry.PromoteRequest{Name: model, Version: cv.ID, Alias: d.Alias, Reason: p.Reason,
			Actor: actorOf(ctx), Override: p.Override, OverrideReason: p.OverrideReason})
		if err != nil {
			return api.DeploymentPromotion{}, fmt.Errorf("deploy promote %s: canary %s (v%d): %w", model, d.Canary.Model, cv.Version, err)
		}
		if pr.Approval != nil {
			ap := toAPIApproval(*pr.Approval)
			out.Approval = &ap
			return out, nil // the canary keeps running until the move is approved
		}
		m := toAPIMove(*pr.Move)
		out.Move = &m
	}
	next := d.Deployment
	next.Canary = nil
	res, err := a.changeDeployment(ctx, next, deployPromote, actorOf(ctx), p.Reason)
	if err != nil {
		return out, fmt.Errorf("the alias moved, but removing the canary failed (run `tailor deploy promote %s` again): %w", model, err)
	}
	out.Deployment = &res.Deployment
	return out, nil
}

// RollbackCanary stores the deployment without its canary, recording why.
func (a *App) RollbackCanary(ctx context.Context, model string, r api.DeploymentRollback) (api.Deployment, error) {
	if err := ident.Text("reason", r.Reason); err != nil {
		return api.Deployment{}, err
	}
	if strings.TrimSpace(r.Reason) == "" {
		return api.Deployment{}, errs.Invalid("deploy rollback %s: reason is required: say why the canary is removed", model)
	}
	if err := checkName("model", model); err != nil {
		return api.Deployment{}, err
	}
	unlock, err := a.deployLocks.lock(ctx, model)
	if err != nil {
		return api.Deployment{}, err
	}
	defer unlock()
	_, d, err := a.latestDeployment(ctx, model)
	if err != nil {
		return api.Deployment{}, err
	}
	if d.Canary == nil {
		return api.Deployment{}, errs.Conflict("deploy rollback %s: the deployment has no canary to roll back (a shadow is removed with `tailor deploy %s --alias %s`)",
			model, model, d.Alias)
	}
	next := d.Deployment
	next.Canary = nil
	res, err := a.changeDeployment(ctx, next, deployRollback, actorOf(ctx), r.Reason)
	return res.Deployment, err
}
