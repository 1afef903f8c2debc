package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// Leases (store.Leases) are rows of the leases table (migration 0010).
// Every lease write is one write transaction, under the write lock (SQLite:
// BEGIN IMMEDIATE on one writer; PostgreSQL: the advisory lock), so
// acquisitions, renewals and the fence checks of other writes (checkFence,
// called by write) are serialized: a write fenced by term T commits before
// a new term's acquisition or not at all. Each engine's migration 0010
// makes the table.

const leaseCols = `name, holder, term, acquired_at, expires_at`

func scanLease(row scanner) (store.Lease, error) {
	var l store.Lease
	var acquired, expires string
	if err := row.Scan(&l.Name, &l.Holder, &l.Term, &acquired, &expires); err != nil {
		return l, err
	}
	var err error
	if l.AcquiredAt, err = parseTime("lease acquired_at", acquired); err != nil {
		return l, err
	}
	l.Expires, err = parseTime("lease expires_at", expires)
	return l, err
}

func leaseArgs(what string, name, holder string, now time.Time, ttl time.Duration) (acquired, expires string, err error) {
	if err := required(what, "name", name, "holder", holder); err != nil {
		return "", "", err
	}
	if ttl <= 0 {
		return "", "", errs.Invalid("%s: ttl %s must be positive", what, ttl)
	}
	if acquired, err = formatTime(what+": now", now); err != nil {
		return "", "", err
	}
	expires, err = formatTime(what+": expiry", now.Add(ttl))
	return acquired, expires, err
}

// AcquireLease implements store.Leases.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (store.Lease, error) {
	what := "acquire lease " + name
	acquired, expires, err := leaseArgs(what, name, holder, now, ttl)
	if err != nil {
		return store.Lease{}, err
	}
	var out store.Lease
	err = s.write(store.WithFence(ctx, store.Fence{}), func(tx *Tx) error {
		cur, err := scanLease(tx.QueryRowContext(ctx, `SELECT `+leaseCols+` FROM leases WHERE name = ?`, name))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			cur = store.Lease{}
		case err != nil:
			return err
		case cur.Holder != "" && cur.Holder != holder && cur.Expires.After(now):
			return &store.LeaseHeldError{Current: cur}
		}
		out = store.Lease{Name: name, Holder: holder, Term: cur.Term + 1, AcquiredAt: now.UTC(), Expires: now.Add(ttl).UTC()}
		_, err = tx.ExecContext(ctx, `INSERT INTO leases (`+leaseCols+`) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, term = excluded.term,
				acquired_at = excluded.acquired_at, expires_at = excluded.expires_at`,
			name, holder, out.Term, acquired, expires)
		return err
	})
	if err != nil {
		return store.Lease{}, err
	}
	// Read back what was stored, so times round-trip as they will later.
	return s.Lease(ctx, name)
}

// RenewLease implements store.Leases.
func (s *Store) RenewLease(ctx context.Context, l store.Lease, now time.Time, ttl time.Duration) (store.Lease, error) {
	what := "renew lease " + l.Name
	_, expires, err := leaseArgs(what, l.Name, l.Holder, now, ttl)
	if err != nil {
		return store.Lease{}, err
	}
	err = s.write(store.WithFence(ctx, store.Fence{}), func(tx *Tx) error {
		if err := checkFence(ctx, tx, store.FenceOf(l)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE leases SET expires_at = ? WHERE name = ?`, expires, l.Name)
		return err
	})
	if err != nil {
		return store.Lease{}, err
	}
	return s.Lease(ctx, l.Name)
}

// ReleaseLease implements store.Leases.
func (s *Store) ReleaseLease(ctx context.Context, l store.Lease, now time.Time) error {
	what := "release lease " + l.Name
	if err := required(what, "name", l.Name, "holder", l.Holder); err != nil {
		return err
	}
	ts, err := formatTime(what+": now", now)
	if err != nil {
		return err
	}
	return s.write(store.WithFence(ctx, store.Fence{}), func(tx *Tx) error {
		if err := checkFence(ctx, tx, store.FenceOf(l)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE leases SET holder = '', expires_at = ? WHERE name = ?`, ts, l.Name)
		return err
	})
}

// Lease implements store.Leases.
func (s *Store) Lease(ctx context.Context, name string) (store.Lease, error) {
	l, err := scanLease(s.r.QueryRowContext(ctx, `SELECT `+leaseCols+` FROM leases WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return l, errs.NotFound("lease %q not found: no replica has led yet", name)
	}
	return l, err
}

// checkFence fails with a *store.FenceError unless lease f.Lease is held
// by f.Holder in f.Term, inside tx.
func checkFence(ctx context.Context, tx *Tx, f store.Fence) error {
	cur, err := scanLease(tx.QueryRowContext(ctx, `SELECT `+leaseCols+` FROM leases WHERE name = ?`, f.Lease))
	if errors.Is(err, sql.ErrNoRows) {
		return &store.FenceError{Fence: f}
	}
	if err != nil {
		return err
	}
	if cur.Holder != f.Holder || cur.Term != f.Term {
		return &store.FenceError{Fence: f, Current: cur}
	}
	return nil
}
