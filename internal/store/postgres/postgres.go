// Package postgres is the scale-out store.Store: a PostgreSQL database
// through github.com/jackc/pgx/v5 and its database/sql driver. The queries
// are internal/store/sqlstore's, the same as the SQLite store's; this package
// opens the database, holds the PostgreSQL migrations (the same numbers and
// meaning as internal/store/sqlite/migrations) and describes the dialect.
//
// Several server processes may share one database; nothing here assumes one
// process:
//
//   - Every write transaction first takes one transaction-scoped advisory
//     lock (pg_advisory_xact_lock(writeLockKey)), so write transactions run
//     one at a time, as SQLite's one writer does. Event seqs and audit
//     entries are allocated under that lock (highest + 1), so seqs are
//     assigned in commit order and without gaps: bus.Follow reading
//     `seq > after` never misses an event that commits later with a smaller
//     seq, and each audit entry hashes the entry committed before it. A
//     sequence or identity column would give neither (nextval is not
//     transactional: a rolled-back insert leaves a gap, and two transactions
//     may commit in the other order than they drew). The cost is that writes
//     do not run in parallel; reads never wait for the lock.
//   - Migrations run in a write transaction, under the same lock: two
//     processes starting at once apply each migration once, and the second
//     finds the schema up to date. Open waits up to 5 minutes for the lock
//     to migrate (other writes wait LockTimeout). A database that records a
//     migration this binary does not know is refused with errs.ErrConflict.
//   - Text columns are COLLATE "C", so ordering and comparison are byte-wise
//     as in SQLite, whatever the database's default collation. Times are the
//     same fixed-width UTC text as in SQLite, so they round-trip to the
//     nanosecond.
//
// Connection settings come from the URL (postgres://user:password@host:port/db?sslmode=…)
// and the usual PG* environment variables (PGPASSWORD, PGHOST, …) that pgx
// reads; Where, used in log lines, never carries the password.
//
// This package imports internal/store, internal/store/sqlstore and
// internal/errs only.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlstore"
)

var _ store.Store = (*Store)(nil)

// writeLockKey is the advisory lock every write transaction takes: "tailor"
// in ASCII. Other applications sharing the database must not use it.
const writeLockKey = 0x7461696c6f72

// migrationLockTimeout is how long Open waits for the write lock to
// migrate, e.g. while another process applies a long migration.
const migrationLockTimeout = "5min"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options tune a Store. Zero fields take the documented defaults.
type Options struct {
	// LockTimeout is how long a write waits for the write lock (another
	// transaction, in any process) before failing with
	// errs.ErrUnavailable. Default 10s.
	LockTimeout time.Duration
	// MaxWriters caps the connections of write transactions, which wait
	// for the write lock one after another. Default 4.
	MaxWriters int
	// MaxReaders caps the connections of reads, a pool apart so that reads
	// never queue behind writers waiting for the lock. Default 8.
	MaxReaders int
	// Now fills CreatedAt, UpdatedAt and event times left zero. Default
	// time.Now.
	Now func() time.Time
	// Logger receives migration messages. Default: discard.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 10 * time.Second
	}
	if o.MaxWriters <= 0 {
		o.MaxWriters = 4
	}
	if o.MaxReaders <= 0 {
		o.MaxReaders = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is a metadata store in one PostgreSQL database. It is safe for
// concurrent use, and several Stores (in one or several processes) may
// share a database.
type Store struct {
	*sqlstore.Store
	db    *sql.DB // the writers' pool, for tests
	where string
}

// dialect is PostgreSQL's: $N placeholders, the advisory write lock, an
// identity column for the aliases' insertion order.
var dialect = sqlstore.Dialect{
	Name:      "postgres",
	Numbered:  true,
	WriteLock: "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(writeLockKey, 10) + ")",
	// A server starting while another applies migrations waits for it
	// longer than a write waits for another write.
	MigrationSetup: "SET LOCAL lock_timeout = '" + migrationLockTimeout + "'",
	RowOrder:       "seq",
	Err:            dbErr,
}

// Open connects to the database that url names (a postgres:// URL or a
// key=value connection string; PG* environment variables fill what it
// leaves out) and brings its schema up to date. The database must exist.
func Open(url string, opts Options) (*Store, error) {
	migs, err := embeddedMigrations()
	if err != nil {
		return nil, err
	}
	return open(url, opts, migs)
}

func embeddedMigrations() ([]sqlstore.Migration, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return sqlstore.LoadMigrations(sub)
}

func open(url string, opts Options, migs []sqlstore.Migration) (*Store, error) {
	opts.defaults()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx leaves the password out of its parse errors.
		return nil, errs.Invalid("postgres store: %v", err)
	}
	where := describe(cfg)
	cfg.RuntimeParams["lock_timeout"] = strconv.FormatInt(opts.LockTimeout.Milliseconds(), 10)
	cfg.RuntimeParams["application_name"] = "tailor"
	w, r := pool(cfg, opts.MaxWriters), pool(cfg, opts.MaxReaders)
	s := &Store{db: w, where: where, Store: sqlstore.New(w, r, dialect,
		sqlstore.Options{Now: opts.Now, Logger: opts.Logger, Where: where})}

	ctx := context.Background()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := w.PingContext(pctx); err != nil {
		// #nosec G104 -- cleanup on an error path; the ping error is returned
		s.Close()
		return nil, errs.Unavailable("open postgres %s: %w", where, err)
	}
	if err := s.Migrate(ctx, migs); err != nil {
		// #nosec G104 -- cleanup on an error path; the migration error is returned
		s.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	return s, nil
}

// pool opens a pool of at most n connections to cfg's database.
func pool(cfg *pgx.ConnConfig, n int) *sql.DB {
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db
}

// describe names the database of cfg for messages:
// user@host:port/database, never the password.
func describe(cfg *pgx.ConnConfig) string {
	return cfg.User + "@" + net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database
}

// Where names the database (user@host:port/database).
func (s *Store) Where() string { return s.where }

// dbErr gives lock timeouts, serialization failures and lost connections
// the errs.ErrUnavailable kind and unique violations errs.ErrConflict.
func dbErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "55P03", // lock_not_available (lock_timeout)
			"40001", // serialization_failure
			"40P01", // deadlock_detected
			"53300", // too_many_connections
			"57P01", // admin_shutdown
			"57P03": // cannot_connect_now
			return errs.Unavailable("metadata store busy, try again: %w", err)
		case "23505": // unique_violation
			return errs.Conflict("%w", err)
		}
		return err
	}
	if pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return errs.Unavailable("metadata store unreachable, try again: %w", err)
	}
	return err
}
