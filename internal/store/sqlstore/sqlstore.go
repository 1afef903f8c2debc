// Package sqlstore is the store.Store that the SQL engines share: every
// query, transaction and migration step of the metadata store, written once
// over database/sql and parameterised by a small Dialect. The engine
// packages (internal/store/sqlite, internal/store/postgres) only open the
// database, embed their own migrations/NNNN_*.sql (same numbers, same
// meaning, each in its own SQL) and describe their dialect.
//
// The SQL is the common part of SQLite (>= 3.35) and PostgreSQL: `?`
// placeholders (`?N` where one value is used twice), which a dialect may
// rebind to `$N`; INSERT … ON CONFLICT … DO NOTHING / DO UPDATE; RETURNING;
// times as fixed-width UTC text (timeLayout) so that they sort as text and
// round-trip to the nanosecond.
//
// Writes. Every write is one transaction begun by write. The dialect's
// WriteLock statement runs first in it (SQLite needs none: its transactions
// begin IMMEDIATE on one writer connection; PostgreSQL takes a transaction
// advisory lock), so write transactions run one at a time across every
// process sharing the database. Event seqs (MAX+1) and audit entries (the
// chain's head + 1, hashing the head) are allocated under that lock, so
// seqs are assigned in commit order and without gaps: a follower reading
// `seq > after` never misses one that commits later with a smaller seq.
// Migrations run in a write transaction too, so two processes starting at
// once apply each migration once.
//
// This package imports internal/store, internal/errs and internal/ident.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

var _ store.Store = (*Store)(nil)

// Dialect is what differs between the SQL engines.
type Dialect struct {
	// Name names the engine in messages ("sqlite", "postgres").
	Name string
	// Numbered rebinds `?` and `?N` placeholders to `$N`.
	Numbered bool
	// WriteLock, when set, is executed first in every write transaction:
	// it must block until no other write transaction on the database is
	// open, in any process.
	WriteLock string
	// MigrationSetup, when set, is executed first in the migration
	// transaction, before WriteLock (PostgreSQL: a longer lock_timeout,
	// so that a server starting while another migrates waits for it).
	MigrationSetup string
	// RowOrder is the column of the aliases table that orders rows by
	// insertion ("rowid" in SQLite).
	RowOrder string
	// Err gives the engine's errors their kinds: lock and serialization
	// failures errs.ErrUnavailable, unique violations errs.ErrConflict.
	// It returns err itself when it has no kind to add.
	Err func(err error) error
}

// Options tune a Store. Zero fields take the documented defaults.
type Options struct {
	// Now fills CreatedAt, UpdatedAt and event times left zero. Default
	// time.Now.
	Now func() time.Time
	// Logger receives migration messages. Default: discard.
	Logger *slog.Logger
	// Where names the database in log lines (a path, or host and database
	// name; never credentials).
	Where string
}

// Store is a metadata store on a SQL database. It is safe for concurrent
// use, and several Stores (in one or several processes) may share one
// database.
type Store struct {
	d    *Dialect
	opts Options
	w    *DB // write transactions
	r    *DB // reads outside transactions
}

// New returns a Store that writes through w and reads through r (which
// may be the same pool). It does not migrate; Close closes both.
func New(w, r *sql.DB, d Dialect, opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Err == nil {
		d.Err = func(err error) error { return err }
	}
	return &Store{d: &d, opts: opts, w: &DB{db: w, d: &d}, r: &DB{db: r, d: &d}}
}

// Close closes the pools given to New.
func (s *Store) Close() error {
	if s.r.db == s.w.db {
		return s.w.db.Close()
	}
	return errors.Join(s.r.db.Close(), s.w.db.Close())
}

// write runs fn in one write transaction (the dialect's WriteLock taken
// first) and commits it. When ctx carries a store.Fence, the transaction
// then checks that its lease is still held in its term (leader.go) and
// writes nothing otherwise; under the write lock, a fenced write and a new
// term's acquisition are serialized. A context reading every project
// (store.AllProjects) may not write: each change belongs to one project.
func (s *Store) write(ctx context.Context, fn func(tx *Tx) error) error {
	if store.IsAllProjects(ctx) {
		return errs.Invalid("a change belongs to one project; this context reads all of them (%q)", store.AllProjects)
	}
	stx, err := s.w.db.BeginTx(ctx, nil)
	if err != nil {
		return s.dbErr(err)
	}
	tx := &Tx{tx: stx, d: s.d}
	if setup, _ := ctx.Value(migrationKey{}).(string); setup != "" {
		if _, err := stx.ExecContext(ctx, setup); err != nil {
			_ = stx.Rollback()
			return s.dbErr(err)
		}
	}
	if s.d.WriteLock != "" {
		if _, err := stx.ExecContext(ctx, s.d.WriteLock); err != nil {
			_ = stx.Rollback()
			return s.dbErr(fmt.Errorf("take the write lock: %w", err))
		}
	}
	if f, ok := store.FenceFrom(ctx); ok {
		if err := checkFence(ctx, tx, f); err != nil {
			_ = stx.Rollback()
			return s.dbErr(err)
		}
	}
	if err := fn(tx); err != nil {
		_ = stx.Rollback()
		return s.dbErr(err)
	}
	if err := stx.Commit(); err != nil {
		return s.dbErr(err)
	}
	return nil
}

// dbErr gives engine errors their kinds (Dialect.Err). An error that
// already has a kind keeps it.
func (s *Store) dbErr(err error) error {
	if err == nil || errs.Kind(err) != "internal" {
		return err
	}
	return s.d.Err(err)
}

// migrationKey marks the context of the migration transaction; its value
// is the dialect's MigrationSetup.
type migrationKey struct{}

// DB is a pool whose queries are written with `?` placeholders.
type DB struct {
	db *sql.DB
	d  *Dialect
}

// QueryContext runs a query that returns rows.
func (db *DB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return db.db.QueryContext(ctx, db.d.rebind(q), args...)
}

// QueryRowContext runs a query that returns at most one row.
func (db *DB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return db.db.QueryRowContext(ctx, db.d.rebind(q), args...)
}

// Tx is a write transaction whose statements are written with `?`
// placeholders.
type Tx struct {
	tx *sql.Tx
	d  *Dialect
}

// ExecContext runs a statement.
func (tx *Tx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, tx.d.rebind(q), args...)
}

// QueryContext runs a query that returns rows.
func (tx *Tx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, tx.d.rebind(q), args...)
}

// QueryRowContext runs a query that returns at most one row.
func (tx *Tx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, tx.d.rebind(q), args...)
}

// PrepareContext prepares a statement for repeated use in tx.
func (tx *Tx) PrepareContext(ctx context.Context, q string) (*sql.Stmt, error) {
	return tx.tx.PrepareContext(ctx, tx.d.rebind(q))
}

// rebind rewrites q's placeholders for the dialect.
func (d *Dialect) rebind(q string) string {
	if !d.Numbered {
		return q
	}
	return Rebind(q)
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

// TimeLayout is fixed width so that stored times sort as text.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(field string, t time.Time) (string, error) {
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return "", errs.Invalid("%s: time %v outside years 1-9999", field, t)
	}
	return t.Format(TimeLayout), nil
}

// nullTime stores a zero time as NULL.
func nullTime(field string, t time.Time) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	return formatTime(field, t)
}

func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(TimeLayout, v)
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

// limitArg turns "0: all" into a LIMIT both engines take.
func limitArg(limit int) int64 {
	if limit <= 0 {
		return math.MaxInt64
	}
	return int64(limit)
}

func required(what string, fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return errs.Invalid("%s: %s is empty", what, fields[i])
		}
	}
	return nil
}
