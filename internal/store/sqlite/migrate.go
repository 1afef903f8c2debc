package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema step, NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

func embeddedMigrations() ([]migration, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return loadMigrations(sub)
}

// parseMigrationName parses "0001_init.sql" into 1. The number is 4 or more
// digits, the name lower-case letters, digits and underscores.
func parseMigrationName(file string) (int, error) {
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

// loadMigrations reads every *.sql file at the root of fsys and checks that
// the versions run 1, 2, 3… without gaps or duplicates.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, f := range files {
		v, err := parseMigrationName(f)
		if err != nil {
			return nil, err
		}
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("migration %q: %w", f, err)
		}
		out = append(out, migration{version: v, name: f, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, errs.Invalid("migration %q: version %d, want %d (versions must run 1, 2, 3… once each)", m.name, m.version, i+1)
		}
	}
	return out, nil
}

// migrate applies the migrations the file lacks, all in one transaction.
func (s *Store) migrate(ctx context.Context, migs []migration) error {
	latest := len(migs)
	var from int
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&from); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if from > latest {
			return errs.Conflict("schema version %d is newer than this binary knows (%d): use a newer tailor", from, latest)
		}
		now, err := formatTime("applied_at", s.now())
		if err != nil {
			return err
		}
		for _, m := range migs[from:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, now); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if from < latest {
		s.opts.Logger.Info("sqlite schema migrated", "path", s.path, "from", from, "to", latest)
	}
	return nil
}

// SchemaVersion returns the highest migration applied to the file.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
