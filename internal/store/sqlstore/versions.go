package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/store"
)

// refCond returns the SQL condition and arguments that select the version
// of name that refStr names in table t: latest, a version number (for
// tables without numbers, the Nth version by age), a content id or a
// prefix of one (refused when two versions share it), or an alias, read
// from the aliases of t's alias kind. ident.ParseRef is the grammar.
func (s *Store) refCond(ctx context.Context, t table, name, refStr string) (string, []any, error) {
	r, err := ident.ParseRef(refStr)
	if err != nil {
		return "", nil, fmt.Errorf("%s %q: %w", t.noun, name, err)
	}
	if r.Kind == ident.RefAlias {
		if t.aliases == "" {
			return "", nil, notFound(t.noun, name, refStr)
		}
		a, err := s.Alias(ctx, t.aliases, name, r.Alias)
		if err != nil {
			return "", nil, err
		}
		if r, err = ident.ParseRef(a.Target); err != nil || r.Kind == ident.RefAlias {
			return "", nil, fmt.Errorf("%s %q alias %q points at %q, not a version", t.noun, name, a.Alias, a.Target)
		}
	}
	p := store.ProjectFrom(ctx)
	switch {
	case r.Kind == ident.RefLatest:
		return "project = ? AND name = ? ORDER BY seq DESC LIMIT 1", []any{p, name}, nil
	case r.Kind == ident.RefVersion && t.numbered:
		return "project = ? AND name = ? AND version = ?", []any{p, name, r.Version}, nil
	case r.Kind == ident.RefVersion:
		return "project = ? AND name = ? ORDER BY seq LIMIT 1 OFFSET ?", []any{p, name, r.Version - 1}, nil
	case r.IsPrefix():
		var n int
		// #nosec G202 -- the table name comes from a constant table list in code; values are bound
		err := s.r.QueryRowContext(ctx, `SELECT COUNT(DISTINCT id) FROM `+t.name+` WHERE project = ? AND name = ? AND substr(id, 1, ?) = ?`,
			p, name, len(r.ID), r.ID).Scan(&n)
		if err != nil {
			return "", nil, fmt.Errorf("%s %q version %q: %w", t.noun, name, refStr, err)
		}
		if n > 1 {
			return "", nil, errs.Invalid("%s %q version %q: %d versions have ids starting so; write more of the id", t.noun, name, refStr, n)
		}
		return "project = ? AND name = ? AND substr(id, 1, ?) = ? ORDER BY seq LIMIT 1", []any{p, name, len(r.ID), r.ID}, nil
	}
	return "project = ? AND name = ? AND id = ?", []any{p, name, r.ID}, nil
}

func (s *Store) exists(ctx context.Context, tx *Tx, query string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func nextVersion(ctx context.Context, tx *Tx, table, project, name string) (int, error) {
	var v int
	// #nosec G202 -- the table name comes from a constant table list in code; values are bound
	err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) + 1 FROM "+table+" WHERE project = ? AND name = ?", project, name).Scan(&v)
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
	return s.putDataset(ctx, v, events, nil)
}

// putDataset inserts v, then runs also (when set) and appends events, in
// one transaction.
func (s *Store) putDataset(ctx context.Context, v store.DatasetVersion, events []store.Event, also func(tx *Tx) error) ([]store.Event, error) {
	what := fmt.Sprintf("put dataset %q version %q", v.Name, v.ID)
	if err := required(what, "name", v.Name, "id", v.ID); err != nil {
		return nil, err
	}
	created, err := formatTime(what+": created_at", s.orNow(v.CreatedAt))
	if err != nil {
		return nil, err
	}
	var out []store.Event
	p := store.ProjectFrom(ctx)
	err = s.write(ctx, func(tx *Tx) error {
		dup, err := s.exists(ctx, tx, `SELECT 1 FROM dataset_versions WHERE project = ? AND name = ? AND id = ?`, p, v.Name, v.ID)
		if err != nil {
			return err
		}
		if dup {
			return errs.Conflict("already exists")
		}
		var latest string
		err = tx.QueryRowContext(ctx, `SELECT id FROM dataset_versions WHERE project = ? AND name = ? ORDER BY seq DESC LIMIT 1`, p, v.Name).Scan(&latest)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if latest != v.Parent {
			return &store.StaleParentError{Name: v.Name, Expected: v.Parent, Latest: latest}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dataset_versions (project, `+datasetCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p, v.ID, v.Name, v.Task, v.Manifest, v.Records, v.Bytes, v.Region, v.Owner, v.Parent, created); err != nil {
			return err
		}
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
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
	return versionByRef(ctx, s, datasetTable, scanDataset, name, id)
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
	return s.putBase(ctx, v, events, nil)
}

// putBase inserts v, then runs also (when set), in one transaction.
func (s *Store) putBase(ctx context.Context, v store.BaseVersion, events []store.Event, also func(tx *Tx) error) (store.BaseVersion, []store.Event, error) {
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
	v.Version, out, err = s.putNumbered(ctx, baseTable, v.Name, v.ID, events, func(tx *Tx, version int) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO base_versions (project, `+baseCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			store.ProjectFrom(ctx), v.ID, v.Name, version, v.Arch, v.Params, v.Manifest, v.Region, created)
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

// BaseVersion resolves ref ("", "latest", "v<N>", "<N>" or an id) within name.
func (s *Store) BaseVersion(ctx context.Context, name, refStr string) (store.BaseVersion, error) {
	return versionByRef(ctx, s, baseTable, scanBase, name, refStr)
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
	v.Version, out, err = s.putNumbered(ctx, recipeTable, v.Name, v.ID, events, func(tx *Tx, version int) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO recipe_versions (project, `+recipeCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
			store.ProjectFrom(ctx), v.ID, v.Name, version, v.Normalized, created)
		return err
	})
	if err != nil {
		return v, nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, out, nil
}

// RecipeVersion resolves ref ("", "latest", "v<N>", "<N>" or an id) within name.
func (s *Store) RecipeVersion(ctx context.Context, name, refStr string) (store.RecipeVersion, error) {
	return versionByRef(ctx, s, recipeTable, scanRecipe, name, refStr)
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
// table describes a versioned table: the noun its messages use, its name
// and columns, whether it numbers versions, and the kind of its aliases
// ("" when it has none).
type table struct {
	noun, name, cols string
	numbered         bool
	aliases          string
}

// The versioned tables.
var (
	datasetTable = table{noun: "dataset", name: "dataset_versions", cols: datasetCols}
	baseTable    = table{noun: "base", name: "base_versions", cols: baseCols, numbered: true, aliases: "base"}
	recipeTable  = table{noun: "recipe", name: "recipe_versions", cols: recipeCols, numbered: true}
	modelTable   = table{noun: "model", name: "model_versions", cols: modelCols, numbered: true, aliases: "model"}
)

// putNumbered inserts a new row of name in t under the next version number
// of name, with its events, in one transaction: (name, id) must be new, and
// insert writes the row given its number.
func (s *Store) putNumbered(ctx context.Context, t table, name, id string, events []store.Event, insert func(tx *Tx, version int) error) (int, []store.Event, error) {
	var version int
	var out []store.Event
	p := store.ProjectFrom(ctx)
	err := s.write(ctx, func(tx *Tx) error {
		// #nosec G202 -- the table name comes from a constant table list in code; values are bound
		dup, err := s.exists(ctx, tx, `SELECT 1 FROM `+t.name+` WHERE project = ? AND name = ? AND id = ?`, p, name, id)
		if err != nil {
			return err
		}
		if dup {
			return errs.Conflict("already exists")
		}
		if version, err = nextVersion(ctx, tx, t.name, p, name); err != nil {
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
func versionByRef[T any](ctx context.Context, s *Store, t table, scan func(scanner) (T, error), name, refStr string) (T, error) {
	var v T
	cond, args, err := s.refCond(ctx, t, name, refStr)
	if err != nil {
		return v, err
	}
	v, err = scan(s.r.QueryRowContext(ctx, `SELECT `+t.cols+` FROM `+t.name+` WHERE `+cond, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, notFound(t.noun, name, refStr)
	}
	if err != nil {
		return v, fmt.Errorf("%s %q version %q: %w", t.noun, name, refStr, err)
	}
	return v, nil
}

// versionByID reads a row of ctx's project by id alone (the oldest when
// several names share the same content).
func versionByID[T any](ctx context.Context, s *Store, t table, scan func(scanner) (T, error), id string) (T, error) {
	// #nosec G202 -- table and column names come from a constant table list in code; values are bound
	v, err := scan(s.r.QueryRowContext(ctx, `SELECT `+t.cols+` FROM `+t.name+` WHERE project = ? AND id = ? ORDER BY seq LIMIT 1`,
		store.ProjectFrom(ctx), id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, errs.NotFound("%s version %q: not found", t.noun, id)
	}
	if err != nil {
		return v, fmt.Errorf("%s version %q: %w", t.noun, id, err)
	}
	return v, nil
}

// versionList lists the rows of name (all names for "") in ctx's project,
// oldest first.
func versionList[T any](ctx context.Context, s *Store, t table, scan func(scanner) (T, error), name string) ([]T, error) {
	// #nosec G202 -- table and column names come from a constant table list in code; values are bound
	rows, err := s.r.QueryContext(ctx, `SELECT `+t.cols+` FROM `+t.name+` WHERE project = ? AND (? = '' OR name = ?) ORDER BY seq`,
		store.ProjectFrom(ctx), name, name)
	if err != nil {
		return nil, fmt.Errorf("list %s versions: %w", t.noun, err)
	}
	return collect(rows, scan)
}
