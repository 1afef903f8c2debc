package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Migration is one schema step, NNNN_name.sql, in one engine's SQL.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// ParseMigrationName parses "0001_init.sql" into 1. The number is 4 or more
// digits, the name lower-case letters, digits and underscores.
func ParseMigrationName(file string) (int, error) {
	base, ok := strings.CutSuffix(file, ".sql")
	if !ok {
		return 0, errs.Invalid("migration %q: want NNNN_name.sql", file)
	}
	num, name, ok := strings.Cut(base, "_")
	if !ok || len(num) < 4 || name == "" {
		return 0, errs.Invalid("migration %q: want NNNN_name.sql", file)
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, errs.Invalid("migration %q: version %q is not a number", file, num)
		}
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return 0, errs.Invalid("migration %q: name %q: want lower-case letters, digits and _", file, name)
		}
	}
	v, err := strconv.Atoi(num)
	if err != nil || v < 1 {
		return 0, errs.Invalid("migration %q: version %q out of range", file, num)
	}
	return v, nil
}

// LoadMigrations reads every *.sql file at the root of fsys and checks that
// each version appears once. Versions may have gaps: numbers are handed
// out to parallel branches, which land in any order, and migrate applies
// every version a file lacks, not only those above its highest.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, f := range files {
		v, err := ParseMigrationName(f)
		if err != nil {
			return nil, err
		}
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("migration %q: %w", f, err)
		}
		out = append(out, Migration{Version: v, Name: f, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, errs.Invalid("migration %q: version %d is also %q (each version once)", out[i].Name, out[i].Version, out[i-1].Name)
		}
	}
	return out, nil
}

// Migrate applies the migrations the database lacks, in version order, all
// in one write transaction (so a second process starting at once waits,
// then finds them applied). A database that records a version this binary
// does not know is refused with errs.ErrConflict.
func (s *Store) Migrate(ctx context.Context, migs []Migration) error {
	known := map[int]bool{}
	latest := 0
	for _, m := range migs {
		known[m.Version] = true
		latest = max(latest, m.Version)
	}
	applied := 0
	err := s.write(context.WithValue(ctx, migrationKey{}, s.d.MigrationSetup), func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		done, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		for _, v := range done {
			if !known[v] {
				return errs.Conflict("schema version %d is not one this binary knows (it has up to %d): use a newer tailor", v, latest)
			}
		}
		now, err := formatTime("applied_at", s.now())
		if err != nil {
			return err
		}
		for _, m := range migs {
			if slices.Contains(done, m.Version) {
				continue
			}
			applied++
			// The file's own SQL, as written: no placeholders to rebind.
			if _, err := tx.tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, now); err != nil {
				return fmt.Errorf("record migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if applied > 0 {
		s.opts.Logger.Info(s.d.Name+" schema migrated", "where", s.opts.Where, "applied", applied, "to", latest)
	}
	return nil
}

// appliedVersions lists the versions recorded in schema_migrations.
func appliedVersions(ctx context.Context, tx *Tx) ([]int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read schema versions: %w", err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema versions: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// SchemaVersion returns the highest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
