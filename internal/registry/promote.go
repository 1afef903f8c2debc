package registry

import (
	"context"
	"fmt"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/store"
)

// Move actions recorded in the alias history.
const (
	ActionPromote  = "promote"
	ActionRollback = "rollback"
)

// PromoteRequest asks to point Alias of model Name at Version.
type PromoteRequest struct {
	Name    string
	Version string // "v3", "3", a content id, "latest", or another alias
	Alias   string
	Reason  string // required: why this version should serve
	Actor   string
	// Override promotes despite failing or missing eval gates; it needs an
	// OverrideReason, which is recorded with the move.
	Override       bool
	OverrideReason string
}

// Promotion is the outcome of Promote: the alias moved (Move), or, when the
// alias requires approval, a pending Approval was created.
type Promotion struct {
	Move     *store.AliasMove `json:"move,omitempty"`
	Approval *store.Approval  `json:"approval,omitempty"`
}

// moveEvent is the data of model.alias.moved.
type moveEvent struct {
	Name           string `json:"name"`
	Alias          string `json:"alias"`
	From           string `json:"from,omitempty"`
	To             string `json:"to"`
	Version        int    `json:"version"`
	Action         string `json:"action"`
	Reason         string `json:"reason"`
	Actor          string `json:"actor"`
	Override       bool   `json:"override,omitempty"`
	OverrideReason string `json:"override_reason,omitempty"`
	ApprovalID     string `json:"approval_id,omitempty"`
}

func (r *Registry) moveEvent(m store.AliasMove, version int) store.Event {
	return r.event(EventAliasMoved, m.To, moveEvent{Name: m.Name, Alias: m.Alias, From: m.From, To: m.To,
		Version: version, Action: m.Action, Reason: m.Reason, Actor: m.Actor, Override: m.Override,
		OverrideReason: m.OverrideReason, ApprovalID: m.ApprovalID})
}

func (req PromoteRequest) check() error {
	if err := CheckName(req.Name); err != nil {
		return err
	}
	if err := ident.CheckAliasName(req.Alias); err != nil {
		return err
	}
	what := fmt.Sprintf("promote model %s@%s to %q", req.Name, req.Version, req.Alias)
	if strings.TrimSpace(req.Reason) == "" {
		return errs.Invalid("%s: reason is required: say why this version should serve", what)
	}
	if strings.TrimSpace(req.Actor) == "" {
		return errs.Invalid("%s: actor is empty: name who promotes", what)
	}
	if req.Override && strings.TrimSpace(req.OverrideReason) == "" {
		return errs.Invalid("%s: override needs an override reason saying why the eval gates may be skipped", what)
	}
	if !req.Override && req.OverrideReason != "" {
		return errs.Invalid("%s: override reason given without override; set override too, or drop the reason", what)
	}
	return nil
}

// failedGates returns, in words, the promotion gates v fails: it must have
// an eval report, and its latest report must pass.
func (r *Registry) failedGates(ctx context.Context, v store.ModelVersion) ([]string, error) {
	reps, err := r.opts.Store.EvalReports(ctx, v.ID)
	if err != nil {
		return nil, err
	}
	if len(reps) == 0 {
		return []string{"eval-report: no eval report is attached"}, nil
	}
	last := reps[len(reps)-1]
	if last.Verdict == store.VerdictPass {
		return nil, nil
	}
	msg := fmt.Sprintf("eval-verdict: latest report %s (dataset %s, split %s) failed", last.Digest, short(last.DatasetID), last.Split)
	if len(last.Failed) > 0 {
		msg += ": " + strings.Join(last.Failed, "; ")
	}
	return []string{msg}, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// gate refuses v unless it passes its gates or override is set.
func (r *Registry) gate(ctx context.Context, v store.ModelVersion, alias string, override bool) error {
	failed, err := r.failedGates(ctx, v)
	if err != nil || len(failed) == 0 || override {
		return err
	}
	return errs.Forbidden("promote %s to %q: refused by gates: %s; attach a passing eval report, or promote with override and an override reason",
		label(v), alias, strings.Join(failed, "; "))
}

// currentTarget returns the alias's target, "" when it does not exist.
func (r *Registry) currentTarget(ctx context.Context, name, alias string) (string, error) {
	a, err := r.opts.Store.Alias(ctx, Kind, name, alias)
	if errs.Kind(err) == "not_found" {
		return "", nil
	}
	return a.Target, err
}

// Promote points req.Alias at req.Version after checking the eval gates, or,
// when the alias requires approval, records a pending approval instead.
func (r *Registry) Promote(ctx context.Context, req PromoteRequest) (Promotion, error) {
	if err := req.check(); err != nil {
		return Promotion{}, err
	}
	v, err := r.resolve(ctx, req.Name, req.Version)
	if err != nil {
		return Promotion{}, err
	}
	if err := r.admit(ctx, v, fmt.Sprintf("promote %s to %q", label(v), req.Alias)); err != nil {
		return Promotion{}, err
	}
	if err := r.gate(ctx, v, req.Alias, req.Override); err != nil {
		return Promotion{}, err
	}
	cur, err := r.currentTarget(ctx, req.Name, req.Alias)
	if err != nil {
		return Promotion{}, err
	}
	if cur == v.ID {
		return Promotion{}, errs.Conflict("promote %s to %q: the alias already points at it; nothing to do", label(v), req.Alias)
	}
	if r.opts.RequireApproval[req.Alias] {
		a, err := r.requestApproval(ctx, v, req)
		if err != nil {
			return Promotion{}, err
		}
		return Promotion{Approval: &a}, nil
	}
	m := store.AliasMove{Kind: Kind, Name: req.Name, Alias: req.Alias, From: cur, To: v.ID, Action: ActionPromote,
		Reason: req.Reason, Actor: req.Actor, Override: req.Override, OverrideReason: req.OverrideReason, Time: r.now()}
	m, err = r.move(ctx, m, v.Version)
	if err != nil {
		return Promotion{}, fmt.Errorf("promote %s to %q: %w", label(v), req.Alias, err)
	}
	return Promotion{Move: &m}, nil
}

// move applies m with its event and publishes the event after the commit.
func (r *Registry) move(ctx context.Context, m store.AliasMove, version int) (store.AliasMove, error) {
	stored, evs, err := r.opts.Store.MoveAlias(ctx, m, []store.Event{r.moveEvent(m, version)})
	if errs.Kind(err) == "conflict" {
		return store.AliasMove{}, errs.Conflict("the alias moved meanwhile; check `tailor model history` and try again: %w", err)
	}
	if err != nil {
		return store.AliasMove{}, err
	}
	r.publish(evs)
	r.opts.Logger.Info("model alias moved", "model", m.Name, "alias", m.Alias, "from", m.From, "to", m.To,
		"action", m.Action, "actor", m.Actor, "override", m.Override)
	return stored, nil
}

// Rollback moves alias back to the target it had before its current one,
// skipping targets already rolled back from. It needs no approval: it
// restores a version that served before. With no earlier target it fails
// with errs.ErrConflict.
func (r *Registry) Rollback(ctx context.Context, name, alias, reason, actor string) (store.AliasMove, error) {
	if err := CheckName(name); err != nil {
		return store.AliasMove{}, err
	}
	if err := ident.CheckAliasName(alias); err != nil {
		return store.AliasMove{}, err
	}
	what := fmt.Sprintf("roll back model %q alias %q", name, alias)
	if strings.TrimSpace(reason) == "" {
		return store.AliasMove{}, errs.Invalid("%s: reason is required: say why", what)
	}
	if strings.TrimSpace(actor) == "" {
		return store.AliasMove{}, errs.Invalid("%s: actor is empty: name who rolls back", what)
	}
	cur, err := r.currentTarget(ctx, name, alias)
	if err != nil {
		return store.AliasMove{}, err
	}
	if cur == "" {
		return store.AliasMove{}, errs.NotFound("%s: the alias does not exist; see `tailor model aliases %s`", what, name)
	}
	hist, err := r.opts.Store.AliasHistory(ctx, Kind, name, alias)
	if err != nil {
		return store.AliasMove{}, err
	}
	prev := previousTarget(hist, cur)
	if prev == "" {
		return store.AliasMove{}, errs.Conflict("%s: no previous target to roll back to (the alias has only ever pointed at its current version); promote another version instead", what)
	}
	v, err := r.opts.Store.ModelVersion(ctx, name, prev)
	if err != nil {
		return store.AliasMove{}, fmt.Errorf("%s: %w", what, err)
	}
	if err := r.admit(ctx, v, fmt.Sprintf("%s to %s", what, label(v))); err != nil {
		return store.AliasMove{}, err
	}
	m := store.AliasMove{Kind: Kind, Name: name, Alias: alias, From: cur, To: prev, Action: ActionRollback,
		Reason: reason, Actor: actor, Time: r.now()}
	m, err = r.move(ctx, m, v.Version)
	if err != nil {
		return store.AliasMove{}, fmt.Errorf("%s: %w", what, err)
	}
	return m, nil
}

// previousTarget replays hist as a stack: a promotion pushes its target, a
// rollback pops one. It returns the entry below the top, or "" when there
// is none. If the replay disagrees with cur (the alias was moved outside
// the history, e.g. by store.SetAlias), the last recorded target is used.
func previousTarget(hist []store.AliasMove, cur string) string {
	var stack []string
	for _, m := range hist {
		if m.Action == ActionRollback && len(stack) > 1 && stack[len(stack)-1] == m.From && stack[len(stack)-2] == m.To {
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, m.To)
	}
	n := len(stack)
	switch {
	case n == 0:
		return ""
	case stack[n-1] != cur:
		return stack[n-1] // the last recorded target served before cur
	case n > 1:
		return stack[n-2]
	}
	return ""
}
