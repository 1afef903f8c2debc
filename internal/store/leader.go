package store

import (
	"context"
	"fmt"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Lease is a named, expiring claim kept in the store: the leader lease
// says which server replica runs the scheduler, the triggers, the monitors
// and reconcile (internal/app, leader.go). Term counts the holders: every
// acquisition by a new holder (or a new incarnation of one) adds one,
// while renewals keep it.
type Lease struct {
	Name       string    `json:"name"`
	Holder     string    `json:"holder"` // "" once released
	Term       int64     `json:"term"`
	AcquiredAt time.Time `json:"acquired_at"`
	Expires    time.Time `json:"expires"`
}

// Fence is what a leader's writes must still hold: lease Name held by
// Holder in Term.
type Fence struct {
	Lease  string
	Holder string
	Term   int64
}

// FenceOf is the fence of a held lease.
func FenceOf(l Lease) Fence { return Fence{Lease: l.Name, Holder: l.Holder, Term: l.Term} }

type fenceKey struct{}

// WithFence returns ctx carrying fence f: every write a store makes with
// it first checks, in the same transaction, that lease f.Lease is still
// held by f.Holder in f.Term, and fails with a *FenceError (and writes
// nothing) otherwise. A leader runs its work under its fence, so once
// another replica has acquired the lease (a new term, committed before
// that replica acts), none of the old leader's writes can commit. The
// zero Fence removes a fence from ctx.
//
// An implementation must make the check and the write one step with
// respect to lease acquisitions: SQLite's single writer (BEGIN IMMEDIATE)
// does, and so does a PostgreSQL store that serializes its write
// transactions under one lock; one that does not must read the lease row
// with SELECT … FOR SHARE inside the write's transaction, so that an
// acquisition's UPDATE waits for the fenced write to commit, and a fenced
// write that starts after an acquisition sees the new term.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the fence ctx carries, if any.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, _ := ctx.Value(fenceKey{}).(Fence)
	return f, f != (Fence{})
}

// FenceError is a fenced write refused because its lease has moved on: to
// Current (a new term, another holder, or released). It wraps
// errs.ErrConflict.
type FenceError struct {
	Fence   Fence
	Current Lease // zero when the lease does not exist
}

func (e *FenceError) Error() string {
	return fmt.Sprintf("lease %q: term %d of %s is over (now term %d, holder %q); this replica no longer leads, so it may not write",
		e.Fence.Lease, e.Fence.Term, e.Fence.Holder, e.Current.Term, e.Current.Holder)
}

// Unwrap makes errors.Is(err, errs.ErrConflict) true.
func (e *FenceError) Unwrap() error { return errs.ErrConflict }

// LeaseHeldError is an acquisition refused because another holder's lease
// has not expired. It wraps errs.ErrConflict.
type LeaseHeldError struct {
	Current Lease
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("lease %q is held by %q (term %d) until %s",
		e.Current.Name, e.Current.Holder, e.Current.Term, e.Current.Expires.UTC().Format(time.RFC3339Nano))
}

// Unwrap makes errors.Is(err, errs.ErrConflict) true.
func (e *LeaseHeldError) Unwrap() error { return errs.ErrConflict }

// Leases keeps leases. Times are the caller's clock: replicas' clocks must
// agree to well within a lease's ttl. Lease writes ignore a fence in ctx.
type Leases interface {
	// AcquireLease takes lease name for holder until now+ttl, in a new
	// term, when it does not exist, has expired (Expires <= now), was
	// released, or is held by holder itself (a restarted holder takes its
	// lease back at once, fencing its previous incarnation). Otherwise it
	// fails with a *LeaseHeldError naming the current lease.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (Lease, error)
	// RenewLease extends l to now+ttl when l.Holder still holds it in
	// l.Term (even past its expiry, as long as nobody acquired it since:
	// no other term can have acted). Otherwise it fails with a
	// *FenceError.
	RenewLease(ctx context.Context, l Lease, now time.Time, ttl time.Duration) (Lease, error)
	// ReleaseLease gives l up at once (Holder becomes "") when l.Holder
	// still holds it in l.Term; otherwise it fails with a *FenceError.
	ReleaseLease(ctx context.Context, l Lease, now time.Time) error
	// Lease returns lease name (errs.ErrNotFound before its first
	// acquisition).
	Lease(ctx context.Context, name string) (Lease, error)
}
