package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// ref is a parsed version reference: latest, a version number, or an id.
type ref struct {
	latest  bool
	version int
	id      string
}

// parseRef reads "" / "latest", "v<N>" / "<N>", or anything else as an id.
func parseRef(s string) ref {
	if s == "" || s == "latest" {
		return ref{latest: true}
	}
	num := strings.TrimPrefix(s, "v")
	if num != "" && num[0] != '+' && num[0] != '-' {
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			return ref{version: n}
		}
	}
	return ref{id: s}
}

// where returns the SQL condition and arguments that select r within name.
func (r ref) where(name string) (string, []any) {
	switch {
	case r.latest:
		return "name = ? ORDER BY seq DESC LIMIT 1", []any{name}
	case r.version > 0:
		return "name = ? AND version = ?", []any{name, r.version}
	default:
		return "name = ? AND id = ?", []any{name, r.id}
	}
}

func (s *Store) exists(ctx context.Context, tx *sql.Tx, query string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func nextVersion(ctx context.Context, tx *sql.Tx, table, name string) (int, error) {
	var v int
	err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) + 1 FROM "+table+" WHERE name = ?", name).Scan(&v)
	return v, err
}

// notFound names what was looked up: `dataset "x" version "abc": not found`.
func notFound(noun, name, id string) error {
	if id == "" || id == "latest" {
		return errs.NotFound("%s %q: not found", noun, name)
	}
	return errs.NotFound("%s %q version %q: not found", noun, name, id)
}

const datasetCols = `id, name, task, manifest, records, bytes, region, owner, parent, created_at`

func scanDataset(sc scanner) (store.DatasetVersion, error) {
	var v store.DatasetVersion
	var created string
	if err := sc.Scan(&v.ID, &v.Name, &v.Task, &v.Manifest, &v.Records, &v.Bytes, &v.Region, &v.Owner, &v.Parent, &created); err != nil {
		return v, err
	}
	var err error
	v.CreatedAt, err = parseTime("dataset version "+v.ID+" created_at", created)
	return v, err
}

// PutDatasetVersion inserts v and events in one transaction.
func (s *Store) PutDatasetVersion(ctx context.Context, v store.DatasetVersion, events []store.Event) ([]store.Event, error) {
	what := fmt.Sprintf("put dataset %q version %q", v.Name, v.ID)
	if err := required(what, "name", v.Name, "id", v.ID); err != nil {
		return nil, err
	}
	created, err := formatTime(what+": created_at", s.orNow(v.CreatedAt))
	if err != nil {
		return nil, err
	}
	var out []store.Event
	err = s.write(ctx, func(tx *sql.Tx) error {
		dup, err := s.exists(ctx, tx, `SELECT 1 FROM dataset_versions WHERE name = ? AND id = ?`, v.Name, v.ID)
		if err != nil {
			return err
		}
		if dup {
			return errs.Conflict("already exists")
		}
		var latest string
		err = tx.QueryRowContext(ctx, `SELECT id FROM dataset_versions WHERE name = ? ORDER BY seq DESC LIMIT 1`, v.Name).Scan(&latest)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if latest != v.Parent {
			return &store.StaleParentError{Name: v.Name, Expected: v.Parent, Latest: latest}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dataset_versions (`+datasetCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.ID, v.Name, v.Task, v.Manifest, v.Records, v.Bytes, v.Region, v.Owner, v.Parent, created); err != nil {
			return err
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// DatasetVersion returns version id of name, or the newest for "" / "latest".
func (s *Store) DatasetVersion(ctx context.Context, name, id string) (store.DatasetVersion, error) {
	return versionByRef(ctx, s, datasetTable, scanDataset, name, ref{latest: id == "" || id == "latest", id: id}, id)
}

// DatasetVersions lists versions of name (all datasets for ""), oldest first.
func (s *Store) DatasetVersions(ctx context.Context, name string) ([]store.DatasetVersion, error) {
	return versionList(ctx, s, datasetTable, scanDataset, name)
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

const baseCols = `id, name, version, arch, params, manifest, region, created_at`

func scanBase(sc scanner) (store.BaseVersion, error) {
	var v store.BaseVersion
	var created string
	if err := sc.Scan(&v.ID, &v.Name, &v.Version, &v.Arch, &v.Params, &v.Manifest, &v.Region, &created); err != nil {
		return v, err
	}
	var err error
	v.CreatedAt, err = parseTime("base version "+v.ID+" created_at", created)
	return v, err
}

// PutBaseVersion inserts v with the next Version number of its name.
func (s *Store) PutBaseVersion(ctx context.Context, v store.BaseVersion, events []store.Event) (store.BaseVersion, []store.Event, error) {
	what := fmt.Sprintf("put base %q version %q", v.Name, v.ID)
	if err := required(what, "name", v.Name, "id", v.ID); err != nil {
		return v, nil, err
	}
	v.CreatedAt = s.orNow(v.CreatedAt)
	created, err := formatTime(what+": created_at", v.CreatedAt)
	if err != nil {
		return v, nil, err
	}
	var out []store.Event
	v.Version, out, err = s.putNumbered(ctx, baseTable, v.Name, v.ID, events, func(tx *sql.Tx, version int) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO base_versions (`+baseCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			v.ID, v.Name, version, v.Arch, v.Params, v.Manifest, v.Region, created)
		return err
	})
	if err != nil {
		return v, nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, out, nil
}

// BaseVersion resolves ref ("", "latest", "v<N>", "<N>" or an id) within name.
func (s *Store) BaseVersion(ctx context.Context, name, refStr string) (store.BaseVersion, error) {
	return versionByRef(ctx, s, baseTable, scanBase, name, parseRef(refStr), refStr)
}

// BaseVersions lists versions of name (all bases for ""), oldest first.
func (s *Store) BaseVersions(ctx context.Context, name string) ([]store.BaseVersion, error) {
	return versionList(ctx, s, baseTable, scanBase, name)
}

const recipeCols = `id, name, version, normalized, created_at`

func scanRecipe(sc scanner) (store.RecipeVersion, error) {
	var v store.RecipeVersion
	var created string
	if err := sc.Scan(&v.ID, &v.Name, &v.Version, &v.Normalized, &created); err != nil {
		return v, err
	}
	if v.Normalized == nil {
		v.Normalized = []byte{}
	}
	var err error
	v.CreatedAt, err = parseTime("recipe version "+v.ID+" created_at", created)
	return v, err
}

// PutRecipeVersion inserts v with the next Version number of its name.
func (s *Store) PutRecipeVersion(ctx context.Context, v store.RecipeVersion, events []store.Event) (store.RecipeVersion, []store.Event, error) {
	what := fmt.Sprintf("put recipe %q version %q", v.Name, v.ID)
	if err := required(what, "name", v.Name, "id", v.ID); err != nil {
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
	v.Version, out, err = s.putNumbered(ctx, recipeTable, v.Name, v.ID, events, func(tx *sql.Tx, version int) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO recipe_versions (`+recipeCols+`) VALUES (?, ?, ?, ?, ?)`,
			v.ID, v.Name, version, v.Normalized, created)
		return err
	})
	if err != nil {
		return v, nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, out, nil
}

// RecipeVersion resolves ref ("", "latest", "v<N>", "<N>" or an id) within name.
func (s *Store) RecipeVersion(ctx context.Context, name, refStr string) (store.RecipeVersion, error) {
	return versionByRef(ctx, s, recipeTable, scanRecipe, name, parseRef(refStr), refStr)
}

// RecipeVersionByID finds a recipe version by id alone (the oldest row when
// several names share the same text).
func (s *Store) RecipeVersionByID(ctx context.Context, id string) (store.RecipeVersion, error) {
	return versionByID(ctx, s, recipeTable, scanRecipe, id)
}

// RecipeVersions lists versions of name (all recipes for ""), oldest first.
func (s *Store) RecipeVersions(ctx context.Context, name string) ([]store.RecipeVersion, error) {
	return versionList(ctx, s, recipeTable, scanRecipe, name)
}

// table names a versioned table: the noun errors use, the table, its columns.
type table struct{ noun, name, cols string }

// The versioned tables.
var (
	datasetTable = table{"dataset", "dataset_versions", datasetCols}
	baseTable    = table{"base", "base_versions", baseCols}
	recipeTable  = table{"recipe", "recipe_versions", recipeCols}
	modelTable   = table{"model", "model_versions", modelCols}
)

// putNumbered inserts a new row of name in t under the next version number
// of name, with its events, in one transaction: (name, id) must be new, and
// insert writes the row given its number.
func (s *Store) putNumbered(ctx context.Context, t table, name, id string, events []store.Event, insert func(tx *sql.Tx, version int) error) (int, []store.Event, error) {
	var version int
	var out []store.Event
	err := s.write(ctx, func(tx *sql.Tx) error {
		dup, err := s.exists(ctx, tx, `SELECT 1 FROM `+t.name+` WHERE name = ? AND id = ?`, name, id)
		if err != nil {
			return err
		}
		if dup {
			return errs.Conflict("already exists")
		}
		if version, err = nextVersion(ctx, tx, t.name, name); err != nil {
			return err
		}
		if err := insert(tx, version); err != nil {
			return err
		}
		out, err = s.appendEvents(ctx, tx, events)
		return err
	})
	return version, out, err
}

// versionByRef reads the row of name that r selects; refStr is how the
// caller wrote it, for the error.
func versionByRef[T any](ctx context.Context, s *Store, t table, scan func(scanner) (T, error), name string, r ref, refStr string) (T, error) {
	cond, args := r.where(name)
	v, err := scan(s.r.QueryRowContext(ctx, `SELECT `+t.cols+` FROM `+t.name+` WHERE `+cond, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, notFound(t.noun, name, refStr)
	}
	if err != nil {
		return v, fmt.Errorf("%s %q version %q: %w", t.noun, name, refStr, err)
	}
	return v, nil
}

// versionByID reads a row by id alone (the oldest when several names share
// the same content).
func versionByID[T any](ctx context.Context, s *Store, t table, scan func(scanner) (T, error), id string) (T, error) {
	v, err := scan(s.r.QueryRowContext(ctx, `SELECT `+t.cols+` FROM `+t.name+` WHERE id = ? ORDER BY seq LIMIT 1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, errs.NotFound("%s version %q: not found", t.noun, id)
	}
	if err != nil {
		return v, fmt.Errorf("%s version %q: %w", t.noun, id, err)
	}
	return v, nil
}

// versionList lists the rows of name (all names for ""), oldest first.
func versionList[T any](ctx context.Context, s *Store, t table, scan func(scanner) (T, error), name string) ([]T, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+t.cols+` FROM `+t.name+` WHERE ? = '' OR name = ? ORDER BY seq`, name, name)
	if err != nil {
		return nil, fmt.Errorf("list %s versions: %w", t.noun, err)
	}
	return collect(rows, scan)
}
