package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// appendEvents inserts events inside tx and returns them as stored: Seq
// assigned, Time in UTC (now when zero). Each event's audit entry is
// written with it (audit.go), so every change that commits an event
// commits its audit entry too. Each event belongs to ctx's project.
func (s *Store) appendEvents(ctx context.Context, tx *Tx, events []store.Event) ([]store.Event, error) {
	out := make([]store.Event, 0, len(events))
	project := store.ProjectFrom(ctx)
	for i, ev := range events {
		if ev.Type == "" {
			return nil, errs.Invalid("event %d: type is empty", i)
		}
		ev.Time = s.orNow(ev.Time)
		ts, err := formatTime(fmt.Sprintf("event %d (%s) time", i, ev.Type), ev.Time)
		if err != nil {
			return nil, err
		}
		data, err := nullJSON(fmt.Sprintf("event %d (%s) data", i, ev.Type), ev.Data)
		if err != nil {
			return nil, err
		}
		ev.Project = project
		// The next seq after the highest, under the write lock: commit
		// order, no gaps (see the package doc).
		if err := tx.QueryRowContext(ctx, `INSERT INTO events (seq, project, type, subject, time, data)
			VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM events), ?, ?, ?, ?, ?) RETURNING seq`,
			project, ev.Type, ev.Subject, ts, data).Scan(&ev.Seq); err != nil {
			return nil, fmt.Errorf("event %d (%s): %w", i, ev.Type, err)
		}
		if err := s.appendAudit(ctx, tx, ev); err != nil {
			return nil, fmt.Errorf("event %d (%s): %w", i, ev.Type, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// AppendEvents stores events that describe no other row change.
func (s *Store) AppendEvents(ctx context.Context, events []store.Event) ([]store.Event, error) {
	var out []store.Event
	err := s.write(ctx, func(tx *Tx) error {
		var err error
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("append events: %w", err)
	}
	return out, nil
}

// Events returns the events of ctx's project (of every project under
// store.AllProjects) with Seq > after, at most limit (0: all).
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]store.Event, error) {
	q, args := `SELECT seq, project, type, subject, time, data FROM events WHERE project = ? AND seq > ? ORDER BY seq LIMIT ?`,
		[]any{store.ProjectFrom(ctx), after, limitArg(limit)}
	if store.IsAllProjects(ctx) {
		q, args = `SELECT seq, project, type, subject, time, data FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, args[1:]
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return collect(rows, func(sc scanner) (store.Event, error) {
		var ev store.Event
		var ts string
		var data sql.NullString
		if err := sc.Scan(&ev.Seq, &ev.Project, &ev.Type, &ev.Subject, &ts, &data); err != nil {
			return ev, err
		}
		ev.Data = rawJSON(data)
		var err error
		ev.Time, err = parseTime(fmt.Sprintf("event %d time", ev.Seq), ts)
		return ev, err
	})
}

const aliasCols = `kind, name, alias, target, updated_at`

func scanAlias(sc scanner) (store.Alias, error) {
	var a store.Alias
	var ts string
	if err := sc.Scan(&a.Kind, &a.Name, &a.Alias, &a.Target, &ts); err != nil {
		return a, err
	}
	var err error
	a.UpdatedAt, err = parseTime(fmt.Sprintf("alias %s %q %q updated_at", a.Kind, a.Name, a.Alias), ts)
	return a, err
}

// SetAlias creates or moves an alias, with events, in one transaction.
func (s *Store) SetAlias(ctx context.Context, a store.Alias, events []store.Event) ([]store.Event, error) {
	what := fmt.Sprintf("set %s %q alias %q", a.Kind, a.Name, a.Alias)
	if err := required(what, "kind", a.Kind, "name", a.Name, "alias", a.Alias, "target", a.Target); err != nil {
		return nil, err
	}
	ts, err := formatTime(what+": updated_at", s.orNow(a.UpdatedAt))
	if err != nil {
		return nil, err
	}
	var out []store.Event
	err = s.write(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO aliases (project, `+aliasCols+`) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (project, kind, name, alias) DO UPDATE SET target = excluded.target, updated_at = excluded.updated_at`,
			store.ProjectFrom(ctx), a.Kind, a.Name, a.Alias, a.Target, ts); err != nil {
			return err
		}
		var err error
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// Alias returns one alias.
func (s *Store) Alias(ctx context.Context, kind, name, alias string) (store.Alias, error) {
	a, err := scanAlias(s.r.QueryRowContext(ctx, `SELECT `+aliasCols+` FROM aliases WHERE project = ? AND kind = ? AND name = ? AND alias = ?`,
		store.ProjectFrom(ctx), kind, name, alias))
	if errors.Is(err, sql.ErrNoRows) {
		return a, errs.NotFound("%s %q alias %q: not found", kind, name, alias)
	}
	if err != nil {
		return a, fmt.Errorf("%s %q alias %q: %w", kind, name, alias, err)
	}
	return a, nil
}

// Aliases lists the aliases of kind and name ("" matches any), oldest first.
func (s *Store) Aliases(ctx context.Context, kind, name string) ([]store.Alias, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+aliasCols+` FROM aliases
		WHERE project = ?3 AND (?1 = '' OR kind = ?1) AND (?2 = '' OR name = ?2) ORDER BY `+s.d.RowOrder, kind, name, store.ProjectFrom(ctx))
	if err != nil {
		return nil, fmt.Errorf("list aliases: %w", err)
	}
	return collect(rows, scanAlias)
}
