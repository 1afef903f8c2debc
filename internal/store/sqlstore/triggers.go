package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

const firingCols = `name, event_seq, tick, event_type, spec_id, spec_version, state, step, results, reason, error, created_at, updated_at`

func scanFiring(sc scanner) (store.Firing, error) {
	var f store.Firing
	var tick sql.NullString
	var results, created, updated string
	if err := sc.Scan(&f.Trigger, &f.EventSeq, &tick, &f.EventType, &f.SpecID, &f.SpecVersion, &f.State, &f.Step, &results,
		&f.Reason, &f.Error, &created, &updated); err != nil {
		return f, err
	}
	f.Results = json.RawMessage(results)
	what := fmt.Sprintf("firing %s/%d", f.Trigger, f.EventSeq)
	var err error
	if f.Tick, err = parseNullTime(what+" tick", tick); err != nil {
		return f, err
	}
	if f.CreatedAt, err = parseTime(what+" created_at", created); err != nil {
		return f, err
	}
	f.UpdatedAt, err = parseTime(what+" updated_at", updated)
	return f, err
}

func checkFiringState(what string, st store.FiringState) error {
	switch st {
	case store.FiringPending, store.FiringRunning, store.FiringDone, store.FiringFailed, store.FiringSkipped:
		return nil
	}
	return errs.Invalid("%s: state %q: want pending, running, done, failed or skipped", what, st)
}

func firingResults(what string, r json.RawMessage) (string, error) {
	if len(r) == 0 {
		return "[]", nil
	}
	if !json.Valid(r) || r[0] != '[' {
		return "", errs.Invalid("%s: results must be a JSON array", what)
	}
	return string(r), nil
}

// ClaimFiring inserts f unless its key exists.
func (s *Store) ClaimFiring(ctx context.Context, f store.Firing, events []store.Event) (store.Firing, bool, []store.Event, error) {
	what := fmt.Sprintf("claim firing of trigger %q for event %d", f.Trigger, f.EventSeq)
	if err := required(what, "trigger", f.Trigger, "spec_id", f.SpecID, "event_type", f.EventType); err != nil {
		return f, false, nil, err
	}
	if err := checkFiringState(what, f.State); err != nil {
		return f, false, nil, err
	}
	if f.EventSeq <= 0 && (f.Tick.IsZero() || len(events) == 0) {
		return f, false, nil, errs.Invalid("%s: an event seq, or a tick and its event, is required", what)
	}
	results, err := firingResults(what, f.Results)
	if err != nil {
		return f, false, nil, err
	}
	f.Results = json.RawMessage(results)
	f.CreatedAt = s.orNow(f.CreatedAt)
	f.UpdatedAt = s.orNow(f.UpdatedAt)
	created, err := formatTime(what+": created_at", f.CreatedAt)
	if err != nil {
		return f, false, nil, err
	}
	updated, err := formatTime(what+": updated_at", f.UpdatedAt)
	if err != nil {
		return f, false, nil, err
	}
	tick, err := nullTime(what+": tick", f.Tick)
	if err != nil {
		return f, false, nil, err
	}
	if !f.Tick.IsZero() {
		f.Tick = f.Tick.UTC()
	}
	var out []store.Event
	var existing store.Firing
	found := false
	p := store.ProjectFrom(ctx)
	err = s.write(ctx, func(tx *Tx) error {
		q, arg := `SELECT `+firingCols+` FROM trigger_firings WHERE project = ? AND name = ? AND event_seq = ?`, any(f.EventSeq)
		if !f.Tick.IsZero() {
			q, arg = `SELECT `+firingCols+` FROM trigger_firings WHERE project = ? AND name = ? AND tick = ?`, tick
		}
		ex, err := scanFiring(tx.QueryRowContext(ctx, q, p, f.Trigger, arg))
		switch {
		case err == nil:
			existing, found = ex, true
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if out, err = s.appendEvents(ctx, tx, events); err != nil {
			return err
		}
		if f.EventSeq <= 0 {
			f.EventSeq = out[0].Seq
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO trigger_firings (project, `+firingCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p, f.Trigger, f.EventSeq, tick, f.EventType, f.SpecID, f.SpecVersion, f.State, f.Step, results, f.Reason, f.Error, created, updated)
		return err
	})
	if err != nil {
		return f, false, nil, fmt.Errorf("%s: %w", what, err)
	}
	if found {
		return existing, false, nil, nil
	}
	return f, true, out, nil
}

// UpdateFiring stores f's progress, compare-and-set on state and step.
func (s *Store) UpdateFiring(ctx context.Context, f store.Firing, ifState store.FiringState, ifStep int, events []store.Event) (store.Firing, []store.Event, error) {
	what := fmt.Sprintf("update firing of trigger %q for event %d", f.Trigger, f.EventSeq)
	if err := checkFiringState(what, f.State); err != nil {
		return f, nil, err
	}
	results, err := firingResults(what, f.Results)
	if err != nil {
		return f, nil, err
	}
	updated, err := formatTime(what+": updated_at", s.orNow(f.UpdatedAt))
	if err != nil {
		return f, nil, err
	}
	var out []store.Event
	var stored store.Firing
	p := store.ProjectFrom(ctx)
	err = s.write(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE trigger_firings SET state = ?, step = ?, results = ?, error = ?, updated_at = ?
			WHERE project = ? AND name = ? AND event_seq = ? AND state = ? AND step = ?`,
			f.State, f.Step, results, f.Error, updated, p, f.Trigger, f.EventSeq, ifState, ifStep)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			cur, err := scanFiring(tx.QueryRowContext(ctx, `SELECT `+firingCols+` FROM trigger_firings WHERE project = ? AND name = ? AND event_seq = ?`, p, f.Trigger, f.EventSeq))
			if errors.Is(err, sql.ErrNoRows) {
				return errs.NotFound("no such firing")
			}
			if err != nil {
				return err
			}
			return errs.Conflict("it moved on meanwhile (%s at step %d, expected %s at step %d)", cur.State, cur.Step, ifState, ifStep)
		}
		if stored, err = scanFiring(tx.QueryRowContext(ctx, `SELECT `+firingCols+` FROM trigger_firings WHERE project = ? AND name = ? AND event_seq = ?`, p, f.Trigger, f.EventSeq)); err != nil {
			return err
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return f, nil, fmt.Errorf("%s: %w", what, err)
	}
	return stored, out, nil
}

// Firing returns one firing.
func (s *Store) Firing(ctx context.Context, trigger string, eventSeq int64) (store.Firing, error) {
	f, err := scanFiring(s.r.QueryRowContext(ctx, `SELECT `+firingCols+` FROM trigger_firings WHERE project = ? AND name = ? AND event_seq = ?`,
		store.ProjectFrom(ctx), trigger, eventSeq))
	if errors.Is(err, sql.ErrNoRows) {
		return f, errs.NotFound("trigger %q has no firing for event %d", trigger, eventSeq)
	}
	if err != nil {
		return f, fmt.Errorf("firing of trigger %q for event %d: %w", trigger, eventSeq, err)
	}
	return f, nil
}

// Firings lists firings, oldest first.
func (s *Store) Firings(ctx context.Context, f store.FiringFilter) ([]store.Firing, error) {
	where := []string{"project = ?", "(? = '' OR name = ?)"}
	args := []any{store.ProjectFrom(ctx), f.Trigger, f.Trigger}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	// #nosec G202 -- the WHERE clauses are constant "col = ?" strings chosen in code; values are bound
	q := `SELECT ` + firingCols + ` FROM trigger_firings WHERE ` + strings.Join(where, " AND ")
	if f.Last > 0 {
		q = `SELECT * FROM (` + q + ` ORDER BY event_seq DESC LIMIT ?) AS last ORDER BY event_seq`
		args = append(args, f.Last)
	} else {
		q += ` ORDER BY event_seq, name`
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list firings: %w", err)
	}
	return collect(rows, scanFiring)
}

// TriggerCursor returns the stored trigger cursor.
func (s *Store) TriggerCursor(ctx context.Context) (int64, error) {
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT seq FROM trigger_cursor WHERE id = 1`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errs.NotFound("trigger cursor: none saved yet")
	}
	if err != nil {
		return 0, fmt.Errorf("trigger cursor: %w", err)
	}
	return seq, nil
}

// SaveTriggerCursor moves the cursor forward to seq.
func (s *Store) SaveTriggerCursor(ctx context.Context, seq int64) error {
	err := s.write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO trigger_cursor (id, seq) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET seq = CASE WHEN excluded.seq > trigger_cursor.seq THEN excluded.seq ELSE trigger_cursor.seq END`, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("save trigger cursor: %w", err)
	}
	return nil
}
