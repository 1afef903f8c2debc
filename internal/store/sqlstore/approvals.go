package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

const approvalCols = `id, kind, name, alias, target, reason, override, override_reason, requested_by, requested_at,
	state, decided_by, decision_reason, decided_at`

func scanApproval(sc scanner) (store.Approval, error) {
	var a store.Approval
	var requested string
	var decided sql.NullString
	if err := sc.Scan(&a.ID, &a.Kind, &a.Name, &a.Alias, &a.Target, &a.Reason, &a.Override, &a.OverrideReason,
		&a.RequestedBy, &requested, &a.State, &a.DecidedBy, &a.DecisionReason, &decided); err != nil {
		return a, err
	}
	var err error
	if a.RequestedAt, err = parseTime("approval "+a.ID+" requested_at", requested); err != nil {
		return a, err
	}
	a.DecidedAt, err = parseNullTime("approval "+a.ID+" decided_at", decided)
	return a, err
}

func validApprovalState(st store.ApprovalState) bool {
	return st == store.ApprovalPending || st == store.ApprovalApproved || st == store.ApprovalRejected
}

// approvalArgs checks a and returns its column values in approvalCols order.
func approvalArgs(a store.Approval) ([]any, error) {
	what := fmt.Sprintf("approval %q", a.ID)
	if !validApprovalState(a.State) {
		return nil, errs.Invalid("%s: state %q is not one of pending, approved, rejected", what, a.State)
	}
	requested, err := formatTime(what+" requested_at", a.RequestedAt)
	if err != nil {
		return nil, err
	}
	decided, err := nullTime(what+" decided_at", a.DecidedAt)
	if err != nil {
		return nil, err
	}
	return []any{a.ID, a.Kind, a.Name, a.Alias, a.Target, a.Reason, boolInt(a.Override), a.OverrideReason,
		a.RequestedBy, requested, string(a.State), a.DecidedBy, a.DecisionReason, decided}, nil
}

// PutApproval inserts a (state pending when empty) with events.
func (s *Store) PutApproval(ctx context.Context, a store.Approval, events []store.Event) (store.Approval, []store.Event, error) {
	what := fmt.Sprintf("put approval %q", a.ID)
	if err := required(what, "id", a.ID, "kind", a.Kind, "name", a.Name, "alias", a.Alias, "target", a.Target,
		"requested_by", a.RequestedBy); err != nil {
		return a, nil, err
	}
	if a.State == "" {
		a.State = store.ApprovalPending
	}
	a.RequestedAt = s.orNow(a.RequestedAt)
	if !a.DecidedAt.IsZero() {
		a.DecidedAt = a.DecidedAt.UTC()
	}
	args, err := approvalArgs(a)
	if err != nil {
		return a, nil, fmt.Errorf("%s: %w", what, err)
	}
	var out []store.Event
	err = s.write(ctx, func(tx *Tx) error {
		dup, err := s.exists(ctx, tx, `SELECT 1 FROM approvals WHERE id = ?`, a.ID)
		if err != nil {
			return err
		}
		if dup {
			return errs.Conflict("already exists")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO approvals (`+approvalCols+`, project) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			append(args, store.ProjectFrom(ctx))...); err != nil {
			return err
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return a, nil, fmt.Errorf("%s: %w", what, err)
	}
	return a, out, nil
}

// UpdateApproval decides an approval with a compare-and-set on its state and
// applies u.Move, if set, in the same transaction.
func (s *Store) UpdateApproval(ctx context.Context, u store.ApprovalUpdate, events []store.Event) (store.Approval, []store.Event, error) {
	what := fmt.Sprintf("update approval %q", u.ID)
	if !validApprovalState(u.State) || !validApprovalState(u.IfState) {
		return store.Approval{}, nil, errs.Invalid("%s: states %q → %q: want pending, approved or rejected", what, u.IfState, u.State)
	}
	decided, err := formatTime(what+": decided_at", s.orNow(u.DecidedAt))
	if err != nil {
		return store.Approval{}, nil, err
	}
	var move store.AliasMove
	var moveTS string
	if u.Move != nil {
		if move, _, moveTS, err = s.checkMove(*u.Move); err != nil {
			return store.Approval{}, nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	var after store.Approval
	var out []store.Event
	p := store.ProjectFrom(ctx)
	err = s.write(ctx, func(tx *Tx) error {
		cur, err := scanApproval(tx.QueryRowContext(ctx, `SELECT `+approvalCols+` FROM approvals WHERE project = ? AND id = ?`, p, u.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return errs.NotFound("not found")
		}
		if err != nil {
			return err
		}
		if cur.State != u.IfState {
			return errs.Conflict("state is %q, not %q", cur.State, u.IfState)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE approvals SET state = ?, decided_by = ?, decision_reason = ?, decided_at = ? WHERE project = ? AND id = ?`,
			string(u.State), u.DecidedBy, u.DecisionReason, decided, p, u.ID); err != nil {
			return err
		}
		if u.Move != nil {
			if err := s.moveAlias(ctx, tx, &move, moveTS); err != nil {
				return fmt.Errorf("move %s %q alias %q: %w", move.Kind, move.Name, move.Alias, err)
			}
		}
		after, err = scanApproval(tx.QueryRowContext(ctx, `SELECT `+approvalCols+` FROM approvals WHERE project = ? AND id = ?`, p, u.ID))
		if err != nil {
			return err
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return store.Approval{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	return after, out, nil
}

// Approval returns approval id.
func (s *Store) Approval(ctx context.Context, id string) (store.Approval, error) {
	a, err := scanApproval(s.r.QueryRowContext(ctx, `SELECT `+approvalCols+` FROM approvals WHERE project = ? AND id = ?`, store.ProjectFrom(ctx), id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, errs.NotFound("approval %q: not found", id)
	}
	if err != nil {
		return a, fmt.Errorf("approval %q: %w", id, err)
	}
	return a, nil
}

// Approvals lists approvals of name ("" any) in state ("" any), oldest first.
func (s *Store) Approvals(ctx context.Context, name string, state store.ApprovalState) ([]store.Approval, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+approvalCols+` FROM approvals
		WHERE project = ?3 AND (?1 = '' OR name = ?1) AND (?2 = '' OR state = ?2) ORDER BY seq`, name, string(state), store.ProjectFrom(ctx))
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	return collect(rows, scanApproval)
}
