package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

const moveCols = `seq, kind, name, alias, from_target, to_target, action, reason, actor, override, override_reason, approval_id, time`

func scanMove(sc scanner) (store.AliasMove, error) {
	var m store.AliasMove
	var ts string
	if err := sc.Scan(&m.Seq, &m.Kind, &m.Name, &m.Alias, &m.From, &m.To, &m.Action, &m.Reason, &m.Actor,
		&m.Override, &m.OverrideReason, &m.ApprovalID, &ts); err != nil {
		return m, err
	}
	var err error
	m.Time, err = parseTime(fmt.Sprintf("alias move %d time", m.Seq), ts)
	return m, err
}

// checkMove validates m and fills in its time; what names the move.
func (s *Store) checkMove(m store.AliasMove) (store.AliasMove, string, string, error) {
	what := fmt.Sprintf("move %s %q alias %q to %q", m.Kind, m.Name, m.Alias, m.To)
	if err := required(what, "kind", m.Kind, "name", m.Name, "alias", m.Alias, "to", m.To, "actor", m.Actor); err != nil {
		return m, what, "", err
	}
	if m.Override && m.OverrideReason == "" {
		return m, what, "", errs.Invalid("%s: override is set but override_reason is empty", what)
	}
	m.Time = s.orNow(m.Time)
	ts, err := formatTime(what+": time", m.Time)
	return m, what, ts, err
}

// moveAlias applies a checked move inside tx: compare-and-set on m.From,
// upsert of the alias row, one history row. It fills in m.Seq.
func (s *Store) moveAlias(ctx context.Context, tx *Tx, m *store.AliasMove, ts string) error {
	var cur string
	p := store.ProjectFrom(ctx)
	err := tx.QueryRowContext(ctx, `SELECT target FROM aliases WHERE project = ? AND kind = ? AND name = ? AND alias = ?`,
		p, m.Kind, m.Name, m.Alias).Scan(&cur)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if m.From != "" {
			return errs.Conflict("alias does not exist, expected it to point at %q", m.From)
		}
	case err != nil:
		return err
	case cur != m.From:
		if m.From == "" {
			return errs.Conflict("alias already exists and points at %q", cur)
		}
		return errs.Conflict("alias points at %q, not %q", cur, m.From)
	}
	if m.To == m.From {
		return errs.Conflict("alias already points at %q", m.To)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO aliases (project, `+aliasCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (project, kind, name, alias) DO UPDATE SET target = excluded.target, updated_at = excluded.updated_at`,
		p, m.Kind, m.Name, m.Alias, m.To, ts); err != nil {
		return err
	}
	return tx.QueryRowContext(ctx, `INSERT INTO alias_history (project, `+moveCols[len("seq, "):]+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING seq`, p, m.Kind, m.Name, m.Alias, m.From, m.To, m.Action, m.Reason, m.Actor, boolInt(m.Override), m.OverrideReason, m.ApprovalID, ts).Scan(&m.Seq)
}

// MoveAlias moves an alias from m.From to m.To, records the move and
// appends events, all in one transaction.
func (s *Store) MoveAlias(ctx context.Context, m store.AliasMove, events []store.Event) (store.AliasMove, []store.Event, error) {
	m, what, ts, err := s.checkMove(m)
	if err != nil {
		return m, nil, err
	}
	var out []store.Event
	err = s.write(ctx, func(tx *Tx) error {
		if err := s.moveAlias(ctx, tx, &m, ts); err != nil {
			return err
		}
		var err error
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return store.AliasMove{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	return m, out, nil
}

// AliasHistory lists the moves of one alias (all aliases of kind and name
// when alias is ""), oldest first.
func (s *Store) AliasHistory(ctx context.Context, kind, name, alias string) ([]store.AliasMove, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+moveCols+` FROM alias_history
		WHERE project = ?4 AND kind = ?1 AND name = ?2 AND (?3 = '' OR alias = ?3) ORDER BY seq`, kind, name, alias, store.ProjectFrom(ctx))
	if err != nil {
		return nil, fmt.Errorf("history of %s %q alias %q: %w", kind, name, alias, err)
	}
	return collect(rows, scanMove)
}
