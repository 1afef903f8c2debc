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
	r := ref{latest: id == "" || id == "latest", id: id}
	cond, args := r.where(name)
	v, err := scanDataset(s.r.QueryRowContext(ctx, `SELECT `+datasetCols+` FROM dataset_versions WHERE `+cond, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, notFound("dataset", name, id)
	}
	if err != nil {
		return v, fmt.Errorf("dataset %q version %q: %w", name, id, err)
	}
	return v, nil
}

// DatasetVersions lists versions of name (all datasets for ""), oldest first.
func (s *Store) DatasetVersions(ctx context.Context, name string) ([]store.DatasetVersion, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+datasetCols+` FROM dataset_versions WHERE ? = '' OR name = ? ORDER BY seq`, name, name)
	if err != nil {
		return nil, fmt.Errorf("list dataset versions: %w", err)
	}
	return collect(rows, scanDataset)
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
	err = s.write(ctx, func(tx *sql.Tx) error {
		dup, err := s.exists(ctx, tx, `SELECT 1 FROM base_versions WHERE name = ? AND id = ?`, v.Name, v.ID)
		if err != nil {
			return err
		}
		if dup {
			return errs.Conflict("already exists")
		}
		if v.Version, err = nextVersion(ctx, tx, "base_versions", v.Name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO base_versions (`+baseCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			v.ID, v.Name, v.Version, v.Arch, v.Params, v.Manifest, v.Region, created); err != nil {
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

// BaseVersion resolves ref ("", "latest", "v<N>", "<N>" or an id) within name.
func (s *Store) BaseVersion(ctx context.Context, name, refStr string) (store.BaseVersion, error) {
	cond, args := parseRef(refStr).where(name)
	v, err := scanBase(s.r.QueryRowContext(ctx, `SELECT `+baseCols+` FROM base_versions WHERE `+cond, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, notFound("base", name, refStr)
	}
	if err != nil {
		return v, fmt.Errorf("base %q version %q: %w", name, refStr, err)
	}
	return v, nil
}

// BaseVersions lists versions of name (all bases for ""), oldest first.
func (s *Store) BaseVersions(ctx context.Context, name string) ([]store.BaseVersion, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+baseCols+` FROM base_versions WHERE ? = '' OR name = ? ORDER BY seq`, name, name)
	if err != nil {
		return nil, fmt.Errorf("list base versions: %w", err)
	}
	return collect(rows, scanBase)
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
	err = s.write(ctx, func(tx *sql.Tx) error {
		dup, err := s.exists(ctx, tx, `SELECT 1 FROM recipe_versions WHERE name = ? AND id = ?`, v.Name, v.ID)
		if err != nil {
			return err
		}
		if dup {
			return errs.Conflict("already exists")
		}
		if v.Version, err = nextVersion(ctx, tx, "recipe_versions", v.Name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO recipe_versions (`+recipeCols+`) VALUES (?, ?, ?, ?, ?)`,
			v.ID, v.Name, v.Version, v.Normalized, created); err != nil {
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

// RecipeVersion resolves ref ("", "latest", "v<N>", "<N>" or an id) within name.
func (s *Store) RecipeVersion(ctx context.Context, name, refStr string) (store.RecipeVersion, error) {
	cond, args := parseRef(refStr).where(name)
	v, err := scanRecipe(s.r.QueryRowContext(ctx, `SELECT `+recipeCols+` FROM recipe_versions WHERE `+cond, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, notFound("recipe", name, refStr)
	}
	if err != nil {
		return v, fmt.Errorf("recipe %q version %q: %w", name, refStr, err)
	}
	return v, nil
}

// RecipeVersionByID finds a recipe version by id alone (the oldest row when
// several names share the same text).
func (s *Store) RecipeVersionByID(ctx context.Context, id string) (store.RecipeVersion, error) {
	v, err := scanRecipe(s.r.QueryRowContext(ctx, `SELECT `+recipeCols+` FROM recipe_versions WHERE id = ? ORDER BY seq LIMIT 1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, errs.NotFound("recipe version %q: not found", id)
	}
	if err != nil {
		return v, fmt.Errorf("recipe version %q: %w", id, err)
	}
	return v, nil
}

// RecipeVersions lists versions of name (all recipes for ""), oldest first.
func (s *Store) RecipeVersions(ctx context.Context, name string) ([]store.RecipeVersion, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+recipeCols+` FROM recipe_versions WHERE ? = '' OR name = ? ORDER BY seq`, name, name)
	if err != nil {
		return nil, fmt.Errorf("list recipe versions: %w", err)
	}
	return collect(rows, scanRecipe)
}
