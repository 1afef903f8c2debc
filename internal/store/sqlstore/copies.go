package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

var _ store.Copies = (*Store)(nil)

const copyCols = `seq, kind, name, id, region, source_name, source_id, source_region, created_at`

func scanCopy(sc scanner) (store.Copy, error) {
	var c store.Copy
	var created string
	if err := sc.Scan(&c.Seq, &c.Kind, &c.Name, &c.ID, &c.Region, &c.SourceName, &c.SourceID, &c.SourceRegion, &created); err != nil {
		return c, err
	}
	var err error
	c.CreatedAt, err = parseTime("copy "+c.Name+" created_at", created)
	return c, err
}

// insertCopy checks c against the row it records (kind, name, id, region)
// and returns the insert to run in the row's transaction.
func (s *Store) insertCopy(ctx context.Context, c store.Copy, kind, name, id, region string) (func(tx *Tx) error, error) {
	what := fmt.Sprintf("copy %s %q version %q", kind, name, id)
	if c.Kind != kind || c.Name != name || c.ID != id || c.Region != region {
		return nil, errs.Invalid("%s: the record says %s %q version %q in region %q, the row %s in region %q",
			what, c.Kind, c.Name, c.ID, c.Region, kind, region)
	}
	if err := required(what, "region", c.Region, "source_name", c.SourceName, "source_id", c.SourceID, "source_region", c.SourceRegion); err != nil {
		return nil, err
	}
	created, err := formatTime(what+": created_at", s.orNow(c.CreatedAt))
	if err != nil {
		return nil, err
	}
	return func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO region_copies (project, kind, name, id, region, source_name, source_id, source_region, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, store.ProjectFrom(ctx), c.Kind, c.Name, c.ID, c.Region, c.SourceName, c.SourceID, c.SourceRegion, created)
		return err
	}, nil
}

// PutDatasetCopy inserts the dataset version v and its copy record c.
func (s *Store) PutDatasetCopy(ctx context.Context, v store.DatasetVersion, c store.Copy, events []store.Event) ([]store.Event, error) {
	ins, err := s.insertCopy(ctx, c, store.CopyDataset, v.Name, v.ID, v.Region)
	if err != nil {
		return nil, err
	}
	return s.putDataset(ctx, v, events, ins)
}

// PutBaseCopy inserts the base version v and its copy record c.
func (s *Store) PutBaseCopy(ctx context.Context, v store.BaseVersion, c store.Copy, events []store.Event) (store.BaseVersion, []store.Event, error) {
	ins, err := s.insertCopy(ctx, c, store.CopyBase, v.Name, v.ID, v.Region)
	if err != nil {
		return v, nil, err
	}
	return s.putBase(ctx, v, events, ins)
}

// PutModelCopy inserts the model version v and its copy record c.
func (s *Store) PutModelCopy(ctx context.Context, v store.ModelVersion, c store.Copy, events []store.Event) (store.ModelVersion, []store.Event, error) {
	ins, err := s.insertCopy(ctx, c, store.CopyModel, v.Name, v.ID, v.Region)
	if err != nil {
		return v, nil, err
	}
	return s.putModel(ctx, v, events, ins)
}

// CopySource returns the copy record of (kind, name, id).
func (s *Store) CopySource(ctx context.Context, kind, name, id string) (store.Copy, error) {
	c, err := scanCopy(s.r.QueryRowContext(ctx, `SELECT `+copyCols+` FROM region_copies WHERE project = ? AND kind = ? AND name = ? AND id = ?`,
		store.ProjectFrom(ctx), kind, name, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, errs.NotFound("%s %q version %q is not a copy", kind, name, id)
	}
	return c, s.dbErr(err)
}

// CopiesOf lists the copies of (kind, name, id), oldest first.
func (s *Store) CopiesOf(ctx context.Context, kind, name, id string) ([]store.Copy, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+copyCols+` FROM region_copies WHERE project = ? AND kind = ? AND source_name = ? AND source_id = ? ORDER BY seq`,
		store.ProjectFrom(ctx), kind, name, id)
	if err != nil {
		return nil, s.dbErr(err)
	}
	return collect(rows, scanCopy)
}
