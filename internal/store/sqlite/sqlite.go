// Package sqlite is the embedded store.Store: one SQLite file through the
// pure-Go modernc.org/sqlite driver. The queries are internal/store/sqlstore's;
// this package opens the file, holds the SQLite migrations and describes the
// dialect.
//
// The file is opened in WAL mode with a busy timeout, foreign keys on and
// synchronous=NORMAL, so the server and its worker child processes can open
// the same file at once. Each *Store keeps one writer connection (every write
// is a BEGIN IMMEDIATE transaction, so writers queue instead of failing on a
// lock upgrade) and a small pool of query-only reader connections.
//
// The schema is versioned: migrations/NNNN_name.sql files are embedded,
// applied in order inside one transaction and recorded in the
// schema_migrations table (sqlstore.Store.Migrate). Opening a file written
// by a newer schema fails with an error wrapping errs.ErrConflict.
//
// This package imports internal/store, internal/store/sqlstore and
// internal/errs only.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlstore"
)

var _ store.Store = (*Store)(nil)

// Options tune a Store. Zero fields take the documented defaults.
type Options struct {
	// BusyTimeout is how long a statement waits for another connection or
	// process to release a lock before failing (errs.ErrUnavailable).
	// Default 10s.
	BusyTimeout time.Duration
	// MaxReaders caps the reader connection pool. Default 4.
	MaxReaders int
	// Now fills CreatedAt, UpdatedAt and event times left zero. Default
	// time.Now.
	Now func() time.Time
	// Logger receives migration messages. Default: discard.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 10 * time.Second
	}
	if o.MaxReaders <= 0 {
		o.MaxReaders = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is a metadata store in one SQLite file. It is safe for concurrent
// use, and several Stores (in one or several processes) may share a file.
type Store struct {
	*sqlstore.Store
	path string
	opts Options
	w    *sql.DB // one connection; BEGIN IMMEDIATE
	r    *sql.DB // query-only pool
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one SQLite schema step.
type migration = sqlstore.Migration

func embeddedMigrations() ([]migration, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return sqlstore.LoadMigrations(sub)
}

// dialect is SQLite's: `?` placeholders as written, no lock statement
// (the one writer connection begins IMMEDIATE), rowid for insertion order.
var dialect = sqlstore.Dialect{Name: "sqlite", RowOrder: "rowid", Err: dbErr}

// Open opens (creating if needed) the SQLite file at path and brings its
// schema up to date.
func Open(path string, opts Options) (*Store, error) {
	migs, err := embeddedMigrations()
	if err != nil {
		return nil, err
	}
	return open(path, opts, migs)
}

func open(path string, opts Options, migs []migration) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, ":memory:") {
		return nil, errs.Invalid("sqlite store: path %q: want a file path without '?' or '#'", path)
	}
	opts.defaults()
	s := &Store{path: path, opts: opts}
	busy := fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds())

	wq := url.Values{}
	wq.Add("_pragma", busy)
	wq.Add("_pragma", "journal_mode(WAL)")
	wq.Add("_pragma", "foreign_keys(1)")
	wq.Add("_pragma", "synchronous(NORMAL)")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	s.w = w

	ctx := context.Background()
	if err := w.PingContext(ctx); err != nil {
		// #nosec G104 -- cleanup on an error path; the ping error is returned
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, dbErr(err))
	}
	sopts := sqlstore.Options{Now: opts.Now, Logger: opts.Logger, Where: path}
	// Migrations go through the writer alone: the readers open after.
	if err := sqlstore.New(w, w, dialect, sopts).Migrate(ctx, migs); err != nil {
		// #nosec G104 -- cleanup on an error path; the migration error is returned
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}

	rq := url.Values{}
	rq.Add("_pragma", busy)
	rq.Add("_pragma", "foreign_keys(1)")
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		// #nosec G104 -- cleanup on an error path; the open error is returned
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(opts.MaxReaders)
	r.SetMaxIdleConns(opts.MaxReaders)
	s.r = r
	s.Store = sqlstore.New(w, r, dialect, sopts)
	return s, nil
}

// Path returns the database file path.
func (s *Store) Path() string { return s.path }

// dbErr gives lock timeouts the errs.ErrUnavailable kind and unique
// violations errs.ErrConflict.
func dbErr(err error) error {
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return errs.Unavailable("metadata store busy, try again: %w", err)
		}
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return errs.Conflict("%w", err)
		}
	}
	return err
}
