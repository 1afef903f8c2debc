// Package sqlite is the embedded store.Store: one SQLite file through the
// pure-Go modernc.org/sqlite driver.
//
// The file is opened in WAL mode with a busy timeout, foreign keys on and
// synchronous=NORMAL, so the server and its worker child processes can open
// the same file at once. Each *Store keeps one writer connection (every write
// is a BEGIN IMMEDIATE transaction, so writers queue instead of failing on a
// lock upgrade) and a small pool of query-only reader connections.
//
// The schema is versioned: migrations/NNNN_name.sql files are embedded,
// applied in order inside one transaction and recorded in the
// schema_migrations table. Opening a file written by a newer schema fails
// with an error wrapping errs.ErrConflict.
//
// This package imports internal/store and internal/errs only.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
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
	path string
	opts Options
	w    *sql.DB // one connection; BEGIN IMMEDIATE
	r    *sql.DB // query-only pool
}

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
	if err := s.migrate(ctx, migs); err != nil {
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
	return s, nil
}

// Path returns the database file path.
func (s *Store) Path() string { return s.path }

// Close closes the connections.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// write runs fn in one BEGIN IMMEDIATE transaction and commits it. When
// ctx carries a store.Fence, the transaction first checks that its lease
// is still held in its term (leader.go) and writes nothing otherwise. A
// context reading every project (store.AllProjects) may not write: each
// change belongs to one project.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if store.IsAllProjects(ctx) {
		return errs.Invalid("a change belongs to one project; this context reads all of them (%q)", store.AllProjects)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dbErr(err)
	}
	if f, ok := store.FenceFrom(ctx); ok {
		if err := checkFence(ctx, tx, f); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return dbErr(err)
	}
	if err := tx.Commit(); err != nil {
		return dbErr(err)
	}
	return nil
}

// dbErr gives lock timeouts the errs.ErrUnavailable kind.
func dbErr(err error) error {
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return errs.Unavailable("metadata store busy, try again: %w", err)
		}
	}
	return err
}

// now returns the clock's time in UTC without a monotonic reading.
func (s *Store) now() time.Time { return s.opts.Now().UTC() }

// orNow returns t, or now when t is zero, normalized to UTC.
func (s *Store) orNow(t time.Time) time.Time {
	if t.IsZero() {
		return s.now()
	}
	return t.UTC()
}

// timeLayout is fixed width so that stored times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(field string, t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return "", errs.Invalid("%s: time %v outside years 1-9999", field, t)
	}
	return t.Format(timeLayout), nil
}

// nullTime stores a zero time as NULL.
func nullTime(field string, t time.Time) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	return formatTime(field, t)
}

func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(timeLayout, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: stored time %q: %w", field, v, err)
	}
	return t, nil
}

func parseNullTime(field string, v sql.NullString) (time.Time, error) {
	if !v.Valid {
		return time.Time{}, nil
	}
	return parseTime(field, v.String)
}

// nullJSON stores nil JSON as NULL after checking it is valid.
func nullJSON(field string, b json.RawMessage) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, errs.Invalid("%s: not valid JSON", field)
	}
	return string(b), nil
}

func rawJSON(v sql.NullString) json.RawMessage {
	if !v.Valid {
		return nil
	}
	return json.RawMessage(v.String)
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// limitArg turns "0: all" into SQLite's "LIMIT -1".
func limitArg(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}

func required(what string, fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return errs.Invalid("%s: %s is empty", what, fields[i])
		}
	}
	return nil
}
