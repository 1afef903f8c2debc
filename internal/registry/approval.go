package registry

import (
	"context"
	"fmt"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// approvalEvent is the data of the model.approval.* events.
type approvalEvent struct {
	Name           string `json:"name"`
	Alias          string `json:"alias"`
	Target         string `json:"target"`
	Version        int    `json:"version"`
	RequestedBy    string `json:"requested_by"`
	Override       bool   `json:"override,omitempty"`
	DecidedBy      string `json:"decided_by,omitempty"`
	DecisionReason string `json:"decision_reason,omitempty"`
}

func (r *Registry) approvalEvent(typ string, a store.Approval, version int) store.Event {
	return r.event(typ, a.ID, approvalEvent{Name: a.Name, Alias: a.Alias, Target: a.Target, Version: version,
		RequestedBy: a.RequestedBy, Override: a.Override, DecidedBy: a.DecidedBy, DecisionReason: a.DecisionReason})
}

// requestApproval records a pending approval for req; one pending approval
// per alias and target at a time.
func (r *Registry) requestApproval(ctx context.Context, v store.ModelVersion, req PromoteRequest) (store.Approval, error) {
	pending, err := r.opts.Store.Approvals(ctx, req.Name, store.ApprovalPending)
	if err != nil {
		return store.Approval{}, err
	}
	for _, p := range pending {
		if p.Alias == req.Alias && p.Target == v.ID {
			return store.Approval{}, errs.Conflict("promote %s to %q: approval %s (requested by %s) is already pending; approve or reject it",
				label(v), req.Alias, p.ID, p.RequestedBy)
		}
	}
	a := store.Approval{ID: r.opts.NewID(), Kind: Kind, Name: req.Name, Alias: req.Alias, Target: v.ID, Reason: req.Reason,
		Override: req.Override, OverrideReason: req.OverrideReason, RequestedBy: req.Actor, RequestedAt: r.now(),
		State: store.ApprovalPending}
	stored, evs, err := r.opts.Store.PutApproval(ctx, a, []store.Event{r.approvalEvent(EventApprovalRequested, a, v.Version)})
	if err != nil {
		return store.Approval{}, fmt.Errorf("promote %s to %q: request approval: %w", label(v), req.Alias, err)
	}
	r.publish(evs)
	r.opts.Logger.Info("model promotion awaits approval", "model", a.Name, "alias", a.Alias, "version", v.Version,
		"approval", a.ID, "requested_by", a.RequestedBy)
	return stored, nil
}

// pendingApproval loads approval id and checks that it can be decided.
func (r *Registry) pendingApproval(ctx context.Context, id, actor, verb string) (store.Approval, error) {
	if strings.TrimSpace(actor) == "" {
		return store.Approval{}, errs.Invalid("%s approval %q: actor is empty: name who decides", verb, id)
	}
	a, err := r.opts.Store.Approval(ctx, id)
	if err != nil {
		return store.Approval{}, fmt.Errorf("%s approval: %w", verb, err)
	}
	if a.State != store.ApprovalPending {
		return store.Approval{}, errs.Conflict("%s approval %q: already %s by %s; request a new promotion if needed", verb, id, a.State, a.DecidedBy)
	}
	return a, nil
}

// Approve decides pending approval id and moves its alias, in one
// transaction. The approver must not be the requester (errs.ErrForbidden),
// and the version's gates are checked again.
func (r *Registry) Approve(ctx context.Context, id, actor, reason string) (store.AliasMove, error) {
	a, err := r.pendingApproval(ctx, id, actor, "approve")
	if err != nil {
		return store.AliasMove{}, err
	}
	if actor == a.RequestedBy {
		return store.AliasMove{}, errs.Forbidden("approve approval %q: %s requested it and cannot approve it; ask another person", id, actor)
	}
	v, err := r.opts.Store.ModelVersion(ctx, a.Name, a.Target)
	if err != nil {
		return store.AliasMove{}, fmt.Errorf("approve approval %q: %w", id, err)
	}
	if err := r.admit(ctx, v, fmt.Sprintf("approve approval %q", id)); err != nil {
		return store.AliasMove{}, err
	}
	if err := r.gate(ctx, v, a.Alias, a.Override); err != nil {
		return store.AliasMove{}, fmt.Errorf("approve approval %q: %w", id, err)
	}
	cur, err := r.currentTarget(ctx, a.Name, a.Alias)
	if err != nil {
		return store.AliasMove{}, err
	}
	if cur == a.Target {
		return store.AliasMove{}, errs.Conflict("approve approval %q: alias %q already points at %s; reject the approval instead", id, a.Alias, label(v))
	}
	now := r.now()
	m := store.AliasMove{Kind: Kind, Name: a.Name, Alias: a.Alias, From: cur, To: a.Target, Action: ActionPromote,
		Reason: a.Reason, Actor: actor, Override: a.Override, OverrideReason: a.OverrideReason, ApprovalID: a.ID, Time: now}
	decided := a
	decided.State, decided.DecidedBy, decided.DecisionReason = store.ApprovalApproved, actor, reason
	u := store.ApprovalUpdate{ID: id, IfState: store.ApprovalPending, State: store.ApprovalApproved, DecidedBy: actor,
		DecisionReason: reason, DecidedAt: now, Move: &m}
	events := []store.Event{r.approvalEvent(EventApprovalApproved, decided, v.Version), r.moveEvent(m, v.Version)}
	_, evs, err := r.opts.Store.UpdateApproval(ctx, u, events)
	if errs.Kind(err) == "conflict" {
		return store.AliasMove{}, errs.Conflict("approve approval %q: the approval or the alias changed meanwhile; check `tailor model approvals` and try again: %w", id, err)
	}
	if err != nil {
		return store.AliasMove{}, err
	}
	r.publish(evs)
	r.opts.Logger.Info("model promotion approved", "model", a.Name, "alias", a.Alias, "version", v.Version,
		"approval", id, "approved_by", actor)
	hist, err := r.opts.Store.AliasHistory(ctx, Kind, a.Name, a.Alias)
	if err != nil {
		return m, err
	}
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].ApprovalID == id {
			return hist[i], nil
		}
	}
	return m, nil
}

// Reject closes pending approval id without moving anything. The requester
// may reject (withdraw) their own request.
func (r *Registry) Reject(ctx context.Context, id, actor, reason string) (store.Approval, error) {
	a, err := r.pendingApproval(ctx, id, actor, "reject")
	if err != nil {
		return store.Approval{}, err
	}
	v, err := r.opts.Store.ModelVersion(ctx, a.Name, a.Target)
	if err != nil {
		return store.Approval{}, fmt.Errorf("reject approval %q: %w", id, err)
	}
	decided := a
	decided.State, decided.DecidedBy, decided.DecisionReason = store.ApprovalRejected, actor, reason
	u := store.ApprovalUpdate{ID: id, IfState: store.ApprovalPending, State: store.ApprovalRejected, DecidedBy: actor,
		DecisionReason: reason, DecidedAt: r.now()}
	stored, evs, err := r.opts.Store.UpdateApproval(ctx, u, []store.Event{r.approvalEvent(EventApprovalRejected, decided, v.Version)})
	if errs.Kind(err) == "conflict" {
		return store.Approval{}, errs.Conflict("reject approval %q: it was decided meanwhile: %w", id, err)
	}
	if err != nil {
		return store.Approval{}, err
	}
	r.publish(evs)
	r.opts.Logger.Info("model promotion rejected", "model", a.Name, "alias", a.Alias, "approval", id, "rejected_by", actor)
	return stored, nil
}
