package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

const runCols = `id, key, recipe_id, dataset_id, base_id, engine_version, inputs, state, attempt, step, total_steps,
	checkpoint, result, metrics, error, created_at, started_at, finished_at`

func scanRun(sc scanner) (store.Run, error) {
	var r store.Run
	var inputs, metrics, started, finished sql.NullString
	var created string
	if err := sc.Scan(&r.ID, &r.Key, &r.RecipeID, &r.DatasetID, &r.BaseID, &r.EngineVersion, &inputs, &r.State,
		&r.Attempt, &r.Step, &r.TotalSteps, &r.Checkpoint, &r.Result, &metrics, &r.Error,
		&created, &started, &finished); err != nil {
		return r, err
	}
	r.Inputs, r.Metrics = rawJSON(inputs), rawJSON(metrics)
	var err error
	if r.CreatedAt, err = parseTime("run "+r.ID+" created_at", created); err != nil {
		return r, err
	}
	if r.StartedAt, err = parseNullTime("run "+r.ID+" started_at", started); err != nil {
		return r, err
	}
	r.FinishedAt, err = parseNullTime("run "+r.ID+" finished_at", finished)
	return r, err
}

func validState(st store.RunState) bool {
	switch st {
	case store.RunQueued, store.RunRunning, store.RunSucceeded, store.RunFailed, store.RunCanceled, store.RunBudgetExceeded:
		return true
	}
	return false
}

// runArgs checks r and returns its column values in runCols order.
func runArgs(r store.Run) ([]any, error) {
	what := fmt.Sprintf("run %q", r.ID)
	if !validState(r.State) {
		return nil, errs.Invalid("%s: state %q is not one of queued, running, succeeded, failed, canceled, budget_exceeded", what, r.State)
	}
	inputs, err := nullJSON(what+" inputs", r.Inputs)
	if err != nil {
		return nil, err
	}
	metrics, err := nullJSON(what+" metrics", r.Metrics)
	if err != nil {
		return nil, err
	}
	created, err := formatTime(what+" created_at", r.CreatedAt)
	if err != nil {
		return nil, err
	}
	started, err := nullTime(what+" started_at", r.StartedAt)
	if err != nil {
		return nil, err
	}
	finished, err := nullTime(what+" finished_at", r.FinishedAt)
	if err != nil {
		return nil, err
	}
	return []any{r.ID, r.Key, r.RecipeID, r.DatasetID, r.BaseID, r.EngineVersion, inputs, string(r.State),
		r.Attempt, r.Step, r.TotalSteps, r.Checkpoint, r.Result, metrics, r.Error, created, started, finished}, nil
}

// normalizeRun gives r the form it has when read back: UTC times, queued
// when no state is set.
func (s *Store) normalizeRun(r store.Run) store.Run {
	if r.State == "" {
		r.State = store.RunQueued
	}
	r.CreatedAt = s.orNow(r.CreatedAt)
	if !r.StartedAt.IsZero() {
		r.StartedAt = r.StartedAt.UTC()
	}
	if !r.FinishedAt.IsZero() {
		r.FinishedAt = r.FinishedAt.UTC()
	}
	return r
}

// CreateRun inserts r (state queued when empty) and events.
func (s *Store) CreateRun(ctx context.Context, r store.Run, events []store.Event) ([]store.Event, error) {
	_, _, out, err := s.createRun(ctx, r, events, false)
	return out, err
}

// CreateRunOnce inserts r unless a queued, running, succeeded or
// budget_exceeded run has r.Key, in one transaction; then it returns that run and false.
func (s *Store) CreateRunOnce(ctx context.Context, r store.Run, events []store.Event) (store.Run, bool, []store.Event, error) {
	if err := required("create run", "key", r.Key); err != nil {
		return store.Run{}, false, nil, err
	}
	return s.createRun(ctx, r, events, true)
}

func (s *Store) createRun(ctx context.Context, r store.Run, events []store.Event, once bool) (store.Run, bool, []store.Event, error) {
	if err := required("create run", "id", r.ID); err != nil {
		return store.Run{}, false, nil, err
	}
	r = s.normalizeRun(r)
	args, err := runArgs(r)
	if err != nil {
		return store.Run{}, false, nil, fmt.Errorf("create run: %w", err)
	}
	var out []store.Event
	var existing *store.Run
	p := store.ProjectFrom(ctx)
	err = s.write(ctx, func(tx *Tx) error {
		if once {
			prev, err := scanRun(tx.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE project = ? AND key = ? AND state IN (?, ?, ?, ?) ORDER BY seq DESC LIMIT 1`,
				p, r.Key, store.RunQueued, store.RunRunning, store.RunSucceeded, store.RunBudgetExceeded))
			switch {
			case err == nil:
				existing = &prev
				return nil
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		dup, err := s.exists(ctx, tx, `SELECT 1 FROM runs WHERE id = ?`, r.ID)
		if err != nil {
			return err
		}
		if dup {
			return errs.Conflict("run %q: already exists", r.ID)
		}
		ph := strings.Repeat("?, ", len(args)) + "?"
		// #nosec G202 G701 -- only the constant column list and "?" placeholders are concatenated; values are bound
		if _, err := tx.ExecContext(ctx, `INSERT INTO runs (`+runCols+`, project) VALUES (`+ph+`)`, append(args, p)...); err != nil {
			return err
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	switch {
	case err != nil:
		return store.Run{}, false, nil, fmt.Errorf("create run: %w", err)
	case existing != nil:
		return *existing, false, nil, nil
	}
	return r, true, out, nil
}

// Run returns run id of ctx's project.
func (s *Store) Run(ctx context.Context, id string) (store.Run, error) {
	r, err := scanRun(s.r.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE project = ? AND id = ?`, store.ProjectFrom(ctx), id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, errs.NotFound("run %q: not found", id)
	}
	if err != nil {
		return r, fmt.Errorf("run %q: %w", id, err)
	}
	return r, nil
}

// Runs lists the runs that match f, oldest first.
func (s *Store) Runs(ctx context.Context, f store.RunFilter) ([]store.Run, error) {
	conds := []string{"project = ?"}
	args := []any{store.ProjectFrom(ctx)}
	if len(f.States) > 0 {
		conds = append(conds, "state IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(f.States)), ", ")+")")
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	if f.Key != "" {
		conds = append(conds, "key = ?")
		args = append(args, f.Key)
	}
	q := `SELECT ` + runCols + ` FROM runs WHERE ` + strings.Join(conds, " AND ")
	rows, err := s.r.QueryContext(ctx, q+" ORDER BY seq", args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return collect(rows, scanRun)
}

// apply copies the set fields of u onto r.
func apply(r store.Run, u store.RunUpdate) store.Run {
	if u.State != nil {
		r.State = *u.State
	}
	if u.Attempt != nil {
		r.Attempt = *u.Attempt
	}
	if u.Step != nil {
		r.Step = *u.Step
	}
	if u.TotalSteps != nil {
		r.TotalSteps = *u.TotalSteps
	}
	if u.Checkpoint != nil {
		r.Checkpoint = *u.Checkpoint
	}
	if u.Result != nil {
		r.Result = *u.Result
	}
	if u.Metrics != nil {
		r.Metrics = u.Metrics
	}
	if u.Error != nil {
		r.Error = *u.Error
	}
	if u.StartedAt != nil {
		r.StartedAt = u.StartedAt.UTC()
	}
	if u.FinishedAt != nil {
		r.FinishedAt = u.FinishedAt.UTC()
	}
	return r
}

// UpdateRun applies u in one transaction. With u.IfState set it is a
// compare-and-set that fails with errs.ErrConflict when the state differs.
func (s *Store) UpdateRun(ctx context.Context, id string, u store.RunUpdate, events []store.Event) (store.Run, []store.Event, error) {
	p := store.ProjectFrom(ctx)
	var after store.Run
	var out []store.Event
	err := s.write(ctx, func(tx *Tx) error {
		cur, err := scanRun(tx.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE project = ? AND id = ?`, p, id))
		if errors.Is(err, sql.ErrNoRows) {
			return errs.NotFound("not found")
		}
		if err != nil {
			return err
		}
		if u.IfState != nil && cur.State != *u.IfState {
			return errs.Conflict("state is %q, not %q", cur.State, *u.IfState)
		}
		after = apply(cur, u)
		args, err := runArgs(after)
		if err != nil {
			return err
		}
		sets := strings.Split(strings.Join(strings.Fields(runCols), ""), ",")
		for i := range sets {
			sets[i] += " = ?"
		}
		// #nosec G202 G701 -- the SET clauses are constant "col = ?" strings chosen in code; values are bound
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET `+strings.Join(sets[1:], ", ")+` WHERE project = ? AND id = ?`,
			append(args[1:], p, id)...); err != nil {
			return err
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return store.Run{}, nil, fmt.Errorf("update run %q: %w", id, err)
	}
	return after, out, nil
}

// AppendRunLog stores one log line of runID with the next Seq.
func (s *Store) AppendRunLog(ctx context.Context, runID string, at time.Time, data json.RawMessage) (store.RunLog, error) {
	what := fmt.Sprintf("append log of run %q", runID)
	if !isJSONObject(data) {
		return store.RunLog{}, errs.Invalid("%s: data is not a JSON object", what)
	}
	l := store.RunLog{RunID: runID, Time: s.orNow(at), Data: data}
	ts, err := formatTime(what+": time", l.Time)
	if err != nil {
		return store.RunLog{}, err
	}
	err = s.write(ctx, func(tx *Tx) error {
		ok, err := s.exists(ctx, tx, `SELECT 1 FROM runs WHERE project = ? AND id = ?`, store.ProjectFrom(ctx), runID)
		if err != nil {
			return err
		}
		if !ok {
			return errs.NotFound("run %q: not found", runID)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM run_logs WHERE run_id = ?`, runID).Scan(&l.Seq); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO run_logs (run_id, seq, time, data) VALUES (?, ?, ?, ?)`, runID, l.Seq, ts, string(data))
		return err
	})
	if err != nil {
		return store.RunLog{}, fmt.Errorf("%s: %w", what, err)
	}
	return l, nil
}

func isJSONObject(b json.RawMessage) bool {
	t := strings.TrimLeft(string(b), " \t\r\n")
	return strings.HasPrefix(t, "{") && json.Valid(b)
}

// RunLogs returns runID's lines with Seq > after, at most limit (0: all).
func (s *Store) RunLogs(ctx context.Context, runID string, after int64, limit int) ([]store.RunLog, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE project = ? AND id = ?`, store.ProjectFrom(ctx), runID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.NotFound("run %q: not found", runID)
	}
	if err != nil {
		return nil, fmt.Errorf("logs of run %q: %w", runID, err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT run_id, seq, time, data FROM run_logs
		WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`, runID, after, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("logs of run %q: %w", runID, err)
	}
	return collect(rows, func(sc scanner) (store.RunLog, error) {
		var l store.RunLog
		var ts, data string
		if err := sc.Scan(&l.RunID, &l.Seq, &ts, &data); err != nil {
			return l, err
		}
		l.Data = json.RawMessage(data)
		var err error
		l.Time, err = parseTime(fmt.Sprintf("run %q log %d time", runID, l.Seq), ts)
		return l, err
	})
}
