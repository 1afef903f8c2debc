package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

const modelCols = `id, name, version, base_id, adapter, run_id, task, labels, lineage, region, created_at`

func scanModel(sc scanner) (store.ModelVersion, error) {
	var v store.ModelVersion
	var labels, lineage sql.NullString
	var created string
	if err := sc.Scan(&v.ID, &v.Name, &v.Version, &v.BaseID, &v.Adapter, &v.RunID, &v.Task, &labels, &lineage, &v.Region, &created); err != nil {
		return v, err
	}
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &v.Labels); err != nil {
			return v, fmt.Errorf("model version %s labels: %w", v.ID, err)
		}
	}
	v.Lineage = rawJSON(lineage)
	var err error
	v.CreatedAt, err = parseTime("model version "+v.ID+" created_at", created)
	return v, err
}

// jsonOrNull stores v as JSON, or NULL when empty.
func jsonOrNull(empty bool, v any) (any, error) {
	if empty {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// PutModelVersion inserts v with the next Version number of its name.
func (s *Store) PutModelVersion(ctx context.Context, v store.ModelVersion, events []store.Event) (store.ModelVersion, []store.Event, error) {
	return s.putModel(ctx, v, events, nil)
}

// putModel inserts v, then runs also (when set), in one transaction.
func (s *Store) putModel(ctx context.Context, v store.ModelVersion, events []store.Event, also func(tx *Tx) error) (store.ModelVersion, []store.Event, error) {
	what := fmt.Sprintf("put model %q version %q", v.Name, v.ID)
	if err := required(what, "name", v.Name, "id", v.ID, "base_id", v.BaseID); err != nil {
		return v, nil, err
	}
	v.CreatedAt = s.orNow(v.CreatedAt)
	created, err := formatTime(what+": created_at", v.CreatedAt)
	if err != nil {
		return v, nil, err
	}
	if len(v.Labels) == 0 {
		v.Labels = nil
	}
	labels, err := jsonOrNull(v.Labels == nil, v.Labels)
	if err != nil {
		return v, nil, fmt.Errorf("%s: labels: %w", what, err)
	}
	lineage, err := nullJSON(what+": lineage", v.Lineage)
	if err != nil {
		return v, nil, err
	}
	var out []store.Event
	v.Version, out, err = s.putNumbered(ctx, modelTable, v.Name, v.ID, events, func(tx *Tx, version int) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO model_versions (project, `+modelCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			store.ProjectFrom(ctx), v.ID, v.Name, version, v.BaseID, v.Adapter, v.RunID, v.Task, labels, lineage, v.Region, created)
		if err == nil && also != nil {
			err = also(tx)
		}
		return err
	})
	if err != nil {
		return v, nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, out, nil
}

// ModelVersion resolves ref ("", "latest", "v<N>", "<N>" or an id) within name.
func (s *Store) ModelVersion(ctx context.Context, name, refStr string) (store.ModelVersion, error) {
	return versionByRef(ctx, s, modelTable, scanModel, name, refStr)
}

// ModelVersionByID finds a model version by id alone (the oldest row when
// several names share the same content).
func (s *Store) ModelVersionByID(ctx context.Context, id string) (store.ModelVersion, error) {
	return versionByID(ctx, s, modelTable, scanModel, id)
}

// ModelVersions lists versions of name (all models for ""), oldest first.
func (s *Store) ModelVersions(ctx context.Context, name string) ([]store.ModelVersion, error) {
	return versionList(ctx, s, modelTable, scanModel, name)
}

const reportCols = `model_version_id, digest, dataset_id, split, verdict, failed, created_at`

func scanReport(sc scanner) (store.EvalReport, error) {
	var r store.EvalReport
	var failed sql.NullString
	var created string
	if err := sc.Scan(&r.ModelVersionID, &r.Digest, &r.DatasetID, &r.Split, &r.Verdict, &failed, &created); err != nil {
		return r, err
	}
	if failed.Valid {
		if err := json.Unmarshal([]byte(failed.String), &r.Failed); err != nil {
			return r, fmt.Errorf("eval report %s failed gates: %w", r.Digest, err)
		}
	}
	var err error
	r.CreatedAt, err = parseTime("eval report "+r.Digest+" created_at", created)
	return r, err
}

// PutEvalReport attaches r to an existing model version.
func (s *Store) PutEvalReport(ctx context.Context, r store.EvalReport, events []store.Event) (store.EvalReport, []store.Event, error) {
	what := fmt.Sprintf("attach eval report %q to model version %q", r.Digest, r.ModelVersionID)
	if err := required(what, "model_version_id", r.ModelVersionID, "digest", r.Digest); err != nil {
		return r, nil, err
	}
	if r.Verdict != store.VerdictPass && r.Verdict != store.VerdictFail {
		return r, nil, errs.Invalid("%s: verdict %q is not pass or fail", what, r.Verdict)
	}
	r.CreatedAt = s.orNow(r.CreatedAt)
	created, err := formatTime(what+": created_at", r.CreatedAt)
	if err != nil {
		return r, nil, err
	}
	if len(r.Failed) == 0 {
		r.Failed = nil
	}
	failed, err := jsonOrNull(r.Failed == nil, r.Failed)
	if err != nil {
		return r, nil, fmt.Errorf("%s: failed gates: %w", what, err)
	}
	var out []store.Event
	p := store.ProjectFrom(ctx)
	err = s.write(ctx, func(tx *Tx) error {
		ok, err := s.exists(ctx, tx, `SELECT 1 FROM model_versions WHERE project = ? AND id = ?`, p, r.ModelVersionID)
		if err != nil {
			return err
		}
		if !ok {
			return errs.NotFound("model version not found")
		}
		dup, err := s.exists(ctx, tx, `SELECT 1 FROM eval_reports WHERE project = ? AND model_version_id = ? AND digest = ?`, p, r.ModelVersionID, r.Digest)
		if err != nil {
			return err
		}
		if dup {
			return errs.Conflict("already attached")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO eval_reports (project, `+reportCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			p, r.ModelVersionID, r.Digest, r.DatasetID, r.Split, string(r.Verdict), failed, created); err != nil {
			return err
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return r, nil, fmt.Errorf("%s: %w", what, err)
	}
	return r, out, nil
}

// EvalReports lists the reports attached to a model version, oldest first.
func (s *Store) EvalReports(ctx context.Context, modelVersionID string) ([]store.EvalReport, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+reportCols+` FROM eval_reports WHERE project = ? AND model_version_id = ? ORDER BY seq`,
		store.ProjectFrom(ctx), modelVersionID)
	if err != nil {
		return nil, fmt.Errorf("eval reports of model version %q: %w", modelVersionID, err)
	}
	return collect(rows, scanReport)
}
