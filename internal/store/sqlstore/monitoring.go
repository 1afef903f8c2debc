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

const predictionCols = `seq, request_id, time, model, version_id, variant, label, probs, text, truncated, features`

func scanPrediction(sc scanner) (store.Prediction, error) {
	var p store.Prediction
	var at string
	var probs sql.NullString
	var trunc int
	var features sql.NullString
	if err := sc.Scan(&p.Seq, &p.RequestID, &at, &p.Model, &p.VersionID, &p.Variant, &p.Label, &probs, &p.Text, &trunc, &features); err != nil {
		return p, err
	}
	p.Truncated, p.Features = trunc != 0, rawJSON(features)
	if probs.Valid {
		if err := json.Unmarshal([]byte(probs.String), &p.Probs); err != nil {
			return p, fmt.Errorf("prediction %s probs: %w", p.RequestID, err)
		}
	}
	var err error
	p.Time, err = parseTime("prediction "+p.RequestID+" time", at)
	return p, err
}

// PutPredictions inserts ps in one transaction, skipping request ids
// already recorded for the same variant.
func (s *Store) PutPredictions(ctx context.Context, ps []store.Prediction) error {
	if len(ps) == 0 {
		return nil
	}
	type row struct {
		p               store.Prediction
		at              string
		probs, features any
	}
	rows := make([]row, len(ps))
	for i, p := range ps {
		what := fmt.Sprintf("put prediction %d (%q)", i, p.RequestID)
		if err := required(what, "request_id", p.RequestID, "model", p.Model, "variant", p.Variant); err != nil {
			return err
		}
		at, err := formatTime(what+": time", s.orNow(p.Time))
		if err != nil {
			return err
		}
		probs, err := jsonOrNull(len(p.Probs) == 0, p.Probs)
		if err != nil {
			return fmt.Errorf("%s: probs: %w", what, err)
		}
		features, err := nullJSON(what+": features", p.Features)
		if err != nil {
			return err
		}
		rows[i] = row{p, at, probs, features}
	}
	project := store.ProjectFrom(ctx)
	err := s.write(ctx, func(tx *Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO predictions (project, request_id, time, model, version_id, variant, label, probs, text, truncated, features)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project, request_id, variant) DO NOTHING`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rows {
			p := r.p
			if _, err := st.ExecContext(ctx, project, p.RequestID, r.at, p.Model, p.VersionID, p.Variant, p.Label, r.probs, p.Text, boolInt(p.Truncated), r.features); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put predictions: %w", err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Predictions lists predictions in seq order.
func (s *Store) Predictions(ctx context.Context, f store.PredictionFilter) ([]store.Prediction, error) {
	shadow := "AND variant != 'shadow'"
	if f.Shadow {
		shadow = ""
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+predictionCols+` FROM predictions WHERE project = ? AND (? = '' OR model = ?) AND seq > ? `+shadow+` ORDER BY seq LIMIT ?`,
		store.ProjectFrom(ctx), f.Model, f.Model, f.After, limitArg(f.Limit))
	if err != nil {
		return nil, fmt.Errorf("list predictions: %w", err)
	}
	return collect(rows, scanPrediction)
}

// Prediction returns the non-shadow prediction of requestID.
func (s *Store) Prediction(ctx context.Context, requestID string) (store.Prediction, error) {
	p, err := scanPrediction(s.r.QueryRowContext(ctx, `SELECT `+predictionCols+` FROM predictions WHERE project = ? AND request_id = ? AND variant != 'shadow'`,
		store.ProjectFrom(ctx), requestID))
	if errors.Is(err, sql.ErrNoRows) {
		return p, errs.NotFound("request %q: no prediction recorded (unknown id, or recorded within a second of the answer: retry)", requestID)
	}
	if err != nil {
		return p, fmt.Errorf("prediction %q: %w", requestID, err)
	}
	return p, nil
}

const feedbackCols = `request_id, model, label, completion, actor, time, dataset`

func scanFeedback(sc scanner) (store.Feedback, error) {
	var f store.Feedback
	var at string
	if err := sc.Scan(&f.RequestID, &f.Model, &f.Label, &f.Completion, &f.Actor, &at, &f.Dataset); err != nil {
		return f, err
	}
	var err error
	f.Time, err = parseTime("feedback "+f.RequestID+" time", at)
	return f, err
}

// PutFeedback records f once per request id.
func (s *Store) PutFeedback(ctx context.Context, f store.Feedback, events []store.Event) (store.Feedback, bool, []store.Event, error) {
	what := fmt.Sprintf("feedback for request %q", f.RequestID)
	if err := required(what, "request_id", f.RequestID); err != nil {
		return f, false, nil, err
	}
	if (f.Label == "") == (f.Completion == "") {
		return f, false, nil, errs.Invalid("%s: give a label or a completion, not both or neither", what)
	}
	f.Time = s.orNow(f.Time)
	at, err := formatTime(what+": time", f.Time)
	if err != nil {
		return f, false, nil, err
	}
	var out []store.Event
	var existing *store.Feedback
	p := store.ProjectFrom(ctx)
	err = s.write(ctx, func(tx *Tx) error {
		prev, err := scanFeedback(tx.QueryRowContext(ctx, `SELECT `+feedbackCols+` FROM feedback WHERE project = ? AND request_id = ?`, p, f.RequestID))
		switch {
		case err == nil:
			if prev.Label != f.Label || prev.Completion != f.Completion {
				return errs.Conflict("request %q already has feedback %q; feedback is recorded once per request", f.RequestID, prev.Label+prev.Completion)
			}
			existing = &prev
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT model FROM predictions WHERE project = ? AND request_id = ? AND variant != 'shadow'`, p, f.RequestID).Scan(&f.Model); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errs.NotFound("request %q: no prediction recorded (unknown id, or answered less than a second ago: retry)", f.RequestID)
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO feedback (project, `+feedbackCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, '')`,
			p, f.RequestID, f.Model, f.Label, f.Completion, f.Actor, at); err != nil {
			return err
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	switch {
	case err != nil:
		return f, false, nil, fmt.Errorf("%s: %w", what, err)
	case existing != nil:
		return *existing, false, nil, nil
	}
	f.Dataset = ""
	return f, true, out, nil
}

// PendingFeedback lists unaccumulated feedback with a kept input.
func (s *Store) PendingFeedback(ctx context.Context, model string, limit int) ([]store.Labelled, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT f.request_id, f.model, f.label, f.completion, f.actor, f.time, f.dataset,
		p.seq, p.request_id, p.time, p.model, p.version_id, p.variant, p.label, p.probs, p.text, p.truncated, p.features
		FROM feedback f JOIN predictions p ON p.project = f.project AND p.request_id = f.request_id AND p.variant != 'shadow'
		WHERE f.project = ? AND f.model = ? AND f.dataset = '' AND p.text != '' ORDER BY f.time, f.request_id LIMIT ?`,
		store.ProjectFrom(ctx), model, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("pending feedback: %w", err)
	}
	return collect(rows, func(sc scanner) (store.Labelled, error) {
		var l store.Labelled
		var fat, pat string
		var probs, features sql.NullString
		var trunc int
		f, p := &l.Feedback, &l.Prediction
		if err := sc.Scan(&f.RequestID, &f.Model, &f.Label, &f.Completion, &f.Actor, &fat, &f.Dataset,
			&p.Seq, &p.RequestID, &pat, &p.Model, &p.VersionID, &p.Variant, &p.Label, &probs, &p.Text, &trunc, &features); err != nil {
			return l, err
		}
		p.Truncated, p.Features = trunc != 0, rawJSON(features)
		if probs.Valid {
			if err := json.Unmarshal([]byte(probs.String), &p.Probs); err != nil {
				return l, err
			}
		}
		var err error
		if f.Time, err = parseTime("feedback time", fat); err != nil {
			return l, err
		}
		p.Time, err = parseTime("prediction time", pat)
		return l, err
	})
}

// FeedbackStats counts model's feedback.
func (s *Store) FeedbackStats(ctx context.Context, model string) (store.FeedbackStats, error) {
	var st store.FeedbackStats
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*),
		COALESCE(SUM(CASE WHEN f.dataset = '' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN f.dataset = '' AND (p.text IS NULL OR p.text = '') THEN 1 ELSE 0 END), 0)
		FROM feedback f LEFT JOIN predictions p ON p.project = f.project AND p.request_id = f.request_id AND p.variant != 'shadow'
		WHERE f.project = ? AND f.model = ?`, store.ProjectFrom(ctx), model).Scan(&st.Total, &st.Pending, &st.NoText)
	if err != nil {
		return st, fmt.Errorf("feedback stats of %q: %w", model, err)
	}
	return st, nil
}

// MarkFeedback sets the dataset version of pending feedback rows.
func (s *Store) MarkFeedback(ctx context.Context, requestIDs []string, dataset string, events []store.Event) ([]store.Event, error) {
	if err := required("mark feedback", "dataset", dataset); err != nil {
		return nil, err
	}
	var out []store.Event
	p := store.ProjectFrom(ctx)
	err := s.write(ctx, func(tx *Tx) error {
		for _, id := range requestIDs {
			if _, err := tx.ExecContext(ctx, `UPDATE feedback SET dataset = ? WHERE project = ? AND request_id = ? AND dataset = ''`, dataset, p, id); err != nil {
				return err
			}
		}
		var err error
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mark feedback: %w", err)
	}
	return out, nil
}

// Feedbacks returns the feedback rows of requestIDs, in request id order.
func (s *Store) Feedbacks(ctx context.Context, requestIDs []string) ([]store.Feedback, error) {
	if len(requestIDs) == 0 {
		return nil, nil
	}
	var out []store.Feedback
	for lo := 0; lo < len(requestIDs); lo += 500 {
		part := requestIDs[lo:min(lo+500, len(requestIDs))]
		args := make([]any, len(part)+1)
		args[0] = store.ProjectFrom(ctx)
		for i, id := range part {
			args[i+1] = id
		}
		// #nosec G202 -- only constant column lists and "?" placeholders are concatenated; values are bound
		rows, err := s.r.QueryContext(ctx, `SELECT `+feedbackCols+` FROM feedback WHERE project = ? AND request_id IN (`+
			strings.TrimSuffix(strings.Repeat("?, ", len(part)), ", ")+`) ORDER BY request_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("feedback: %w", err)
		}
		got, err := collect(rows, scanFeedback)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

const specCols = `kind, id, name, version, normalized, created_at`

func scanSpec(sc scanner) (store.SpecVersion, error) {
	var v store.SpecVersion
	var created string
	if err := sc.Scan(&v.Kind, &v.ID, &v.Name, &v.Version, &v.Normalized, &created); err != nil {
		return v, err
	}
	if v.Normalized == nil {
		v.Normalized = []byte{}
	}
	var err error
	v.CreatedAt, err = parseTime(v.Kind+" version "+v.ID+" created_at", created)
	return v, err
}

// PutSpec inserts v with the next version number of its kind and name.
func (s *Store) PutSpec(ctx context.Context, v store.SpecVersion, events []store.Event) (store.SpecVersion, []store.Event, error) {
	what := fmt.Sprintf("put %s %q version %q", v.Kind, v.Name, v.ID)
	if err := required(what, "kind", v.Kind, "name", v.Name, "id", v.ID); err != nil {
		return v, nil, err
	}
	v.CreatedAt = s.orNow(v.CreatedAt)
	created, err := formatTime(what+": created_at", v.CreatedAt)
	if err != nil {
		return v, nil, err
	}
	if v.Normalized == nil {
		v.Normalized = []byte{}
	}
	var out []store.Event
	p := store.ProjectFrom(ctx)
	err = s.write(ctx, func(tx *Tx) error {
		dup, err := s.exists(ctx, tx, `SELECT 1 FROM specs WHERE project = ? AND kind = ? AND name = ? AND id = ?`, p, v.Kind, v.Name, v.ID)
		if err != nil {
			return err
		}
		if dup {
			return errs.Conflict("already exists")
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM specs WHERE project = ? AND kind = ? AND name = ?`, p, v.Kind, v.Name).Scan(&v.Version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO specs (project, `+specCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			p, v.Kind, v.ID, v.Name, v.Version, v.Normalized, created); err != nil {
			return err
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return v, nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, out, nil
}

// Spec resolves ref within kind and name.
func (s *Store) Spec(ctx context.Context, kind, name, refStr string) (store.SpecVersion, error) {
	cond, args, err := s.refCond(ctx, table{noun: kind, name: "specs", numbered: true}, name, refStr)
	if err != nil {
		return store.SpecVersion{}, err
	}
	v, err := scanSpec(s.r.QueryRowContext(ctx, `SELECT `+specCols+` FROM specs WHERE kind = ? AND `+cond, append([]any{kind}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, notFound(kind, name, refStr)
	}
	if err != nil {
		return v, fmt.Errorf("%s %q version %q: %w", kind, name, refStr, err)
	}
	return v, nil
}

// Specs lists versions of kind (of name, or all for ""), oldest first.
func (s *Store) Specs(ctx context.Context, kind, name string) ([]store.SpecVersion, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+specCols+` FROM specs WHERE project = ? AND kind = ? AND (? = '' OR name = ?) ORDER BY seq`,
		store.ProjectFrom(ctx), kind, name, name)
	if err != nil {
		return nil, fmt.Errorf("list %s versions: %w", kind, err)
	}
	return collect(rows, scanSpec)
}

const monitorStateCols = `name, spec_id, version_id, profile, cursor, state, updated_at`

// MonitorState returns the stored state of monitor name.
func (s *Store) MonitorState(ctx context.Context, name string) (store.MonitorState, error) {
	var st store.MonitorState
	var state sql.NullString
	var updated string
	err := s.r.QueryRowContext(ctx, `SELECT `+monitorStateCols+` FROM monitor_state WHERE project = ? AND name = ?`, store.ProjectFrom(ctx), name).
		Scan(&st.Name, &st.SpecID, &st.VersionID, &st.Profile, &st.Cursor, &state, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return st, errs.NotFound("monitor %q: no state yet", name)
	}
	if err != nil {
		return st, fmt.Errorf("monitor %q state: %w", name, err)
	}
	st.State = rawJSON(state)
	st.UpdatedAt, err = parseTime("monitor "+name+" updated_at", updated)
	return st, err
}

// SaveMonitorState stores st (compare-and-set on the cursor), appends the
// windows under the next indexes and the events, in one transaction.
func (s *Store) SaveMonitorState(ctx context.Context, st store.MonitorState, ifCursor int64, windows []store.MonitorWindow, events []store.Event) ([]store.Event, error) {
	what := fmt.Sprintf("save monitor %q", st.Name)
	if err := required(what, "name", st.Name); err != nil {
		return nil, err
	}
	updated, err := formatTime(what+": updated_at", s.orNow(st.UpdatedAt))
	if err != nil {
		return nil, err
	}
	state, err := nullJSON(what+": state", st.State)
	if err != nil {
		return nil, err
	}
	var out []store.Event
	p := store.ProjectFrom(ctx)
	err = s.write(ctx, func(tx *Tx) error {
		var cur int64
		err := tx.QueryRowContext(ctx, `SELECT cursor FROM monitor_state WHERE project = ? AND name = ?`, p, st.Name).Scan(&cur)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			cur = -1
		case err != nil:
			return err
		}
		if cur != ifCursor {
			return errs.Conflict("monitor %q moved on meanwhile (cursor %d, expected %d)", st.Name, cur, ifCursor)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO monitor_state (project, `+monitorStateCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (project, name) DO UPDATE SET spec_id = excluded.spec_id, version_id = excluded.version_id, profile = excluded.profile,
			cursor = excluded.cursor, state = excluded.state, updated_at = excluded.updated_at`,
			p, st.Name, st.SpecID, st.VersionID, st.Profile, st.Cursor, state, updated); err != nil {
			return err
		}
		var next int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx), -1) + 1 FROM monitor_windows WHERE project = ? AND monitor = ?`, p, st.Name).Scan(&next); err != nil {
			return err
		}
		for i, w := range windows {
			at, err := formatTime(fmt.Sprintf("%s: window %d time", what, i), s.orNow(w.Time))
			if err != nil {
				return err
			}
			if !json.Valid(w.Result) {
				return errs.Invalid("%s: window %d result is not valid JSON", what, i)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO monitor_windows (project, monitor, idx, version_id, first_seq, last_seq, count, drifted, result, time)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, p, st.Name, next, w.VersionID, w.FirstSeq, w.LastSeq, w.Count, boolInt(w.Drifted), string(w.Result), at); err != nil {
				return err
			}
			next++
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// MonitorWindows lists windows of monitor name with Index > after.
func (s *Store) MonitorWindows(ctx context.Context, name string, after int64, limit int) ([]store.MonitorWindow, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT monitor, idx, version_id, first_seq, last_seq, count, drifted, result, time
		FROM monitor_windows WHERE project = ? AND monitor = ? AND idx > ? ORDER BY idx LIMIT ?`, store.ProjectFrom(ctx), name, after, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("monitor %q windows: %w", name, err)
	}
	return collect(rows, func(sc scanner) (store.MonitorWindow, error) {
		var w store.MonitorWindow
		var drifted int
		var result, at string
		if err := sc.Scan(&w.Monitor, &w.Index, &w.VersionID, &w.FirstSeq, &w.LastSeq, &w.Count, &drifted, &result, &at); err != nil {
			return w, err
		}
		w.Drifted, w.Result = drifted != 0, json.RawMessage(result)
		var err error
		w.Time, err = parseTime("monitor window time", at)
		return w, err
	})
}
