package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// testLeases checks store.Leases step by step on one lease: acquisition,
// refusal while another holds it, a holder's restart taking a new term,
// renewal fenced by term, takeover after expiry, release.
func testLeases(t *testing.T, s store.Store) {
	const ttl = 10 * time.Second
	if _, err := s.Lease(ctx, "leader"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("lease before any acquisition: %v, want not found", err)
	}
	a1, err := s.AcquireLease(ctx, "leader", "replica-a", at(0), ttl)
	must(t, err)
	equal(t, "first acquisition", a1, store.Lease{Name: "leader", Holder: "replica-a", Term: 1, AcquiredAt: at(0), Expires: at(0).Add(ttl)})
	got, err := s.Lease(ctx, "leader")
	must(t, err)
	equal(t, "lease read back", got, a1)

	// Another holder is refused while the lease lives, up to its last
	// nanosecond, and learns who holds it.
	for _, now := range []time.Time{at(0), at(0).Add(ttl - time.Nanosecond)} {
		_, err = s.AcquireLease(ctx, "leader", "replica-b", now, ttl)
		var held *store.LeaseHeldError
		if !errors.As(err, &held) || !errors.Is(err, errs.ErrConflict) || held.Current != a1 {
			t.Fatalf("acquire a live lease at %s: %v, want a *LeaseHeldError naming %+v", now, err, a1)
		}
	}
	// Other names are other leases.
	other, err := s.AcquireLease(ctx, "other", "replica-b", at(0), ttl)
	must(t, err)
	equal(t, "other lease term", other.Term, int64(1))

	// A holder acquiring again (a restart) gets a new term at once; its
	// previous incarnation is fenced.
	a2, err := s.AcquireLease(ctx, "leader", "replica-a", at(0).Add(time.Second), ttl)
	must(t, err)
	equal(t, "re-acquisition term", a2.Term, int64(2))
	if _, err := s.RenewLease(ctx, a1, at(0).Add(2*time.Second), ttl); !isFence(err, a2) {
		t.Fatalf("renew an old term: %v, want a *FenceError naming %+v", err, a2)
	}

	// Renewal keeps the term and moves the expiry, even just past it.
	renewed, err := s.RenewLease(ctx, a2, a2.Expires.Add(time.Millisecond), ttl)
	must(t, err)
	equal(t, "renewed", renewed, store.Lease{Name: "leader", Holder: "replica-a", Term: 2, AcquiredAt: a2.AcquiredAt,
		Expires: a2.Expires.Add(time.Millisecond + ttl)})

	// Expired: another holder takes it in the next term; the old holder's
	// renewal is fenced.
	b3, err := s.AcquireLease(ctx, "leader", "replica-b", renewed.Expires, ttl)
	must(t, err)
	equal(t, "takeover", b3, store.Lease{Name: "leader", Holder: "replica-b", Term: 3, AcquiredAt: renewed.Expires, Expires: renewed.Expires.Add(ttl)})
	if _, err := s.RenewLease(ctx, renewed, renewed.Expires, ttl); !isFence(err, b3) {
		t.Fatalf("renew after takeover: %v, want a *FenceError naming %+v", err, b3)
	}
	if err := s.ReleaseLease(ctx, renewed, renewed.Expires); !isFence(err, b3) {
		t.Fatalf("release after takeover: %v, want a *FenceError naming %+v", err, b3)
	}

	// Release: nobody holds it; anyone acquires at once, in a new term.
	must(t, s.ReleaseLease(ctx, b3, b3.AcquiredAt.Add(time.Second)))
	got, err = s.Lease(ctx, "leader")
	must(t, err)
	if got.Holder != "" || got.Term != 3 {
		t.Fatalf("released lease %+v, want no holder, term 3", got)
	}
	a4, err := s.AcquireLease(ctx, "leader", "replica-a", b3.AcquiredAt.Add(2*time.Second), ttl)
	must(t, err)
	equal(t, "acquisition after release", a4.Term, int64(4))

	// A lease write ignores a fence in its context, even a stale one.
	stale := store.WithFence(ctx, store.FenceOf(b3))
	if _, err := s.RenewLease(stale, a4, a4.AcquiredAt, ttl); err != nil {
		t.Fatalf("renew with a stale fence in ctx: %v", err)
	}
}

// isFence reports whether err is a *FenceError naming cur as the lease now.
func isFence(err error, cur store.Lease) bool {
	var fe *store.FenceError
	return errors.As(err, &fe) && errors.Is(err, errs.ErrConflict) && fe.Current.Holder == cur.Holder && fe.Current.Term == cur.Term
}

// testLeaseInvalid: bad arguments are refused, naming the field.
func testLeaseInvalid(t *testing.T, s store.Store) {
	cases := []struct {
		name, lease, holder string
		ttl                 time.Duration
		field               string
	}{
		{"no name", "", "a", time.Second, "name"},
		{"no holder", "leader", "", time.Second, "holder"},
		{"zero ttl", "leader", "a", 0, "ttl"},
		{"negative ttl", "leader", "a", -time.Second, "ttl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.AcquireLease(ctx, c.lease, c.holder, at(0), c.ttl)
			wantKind(t, c.name, err, errs.ErrInvalid, c.field)
		})
	}
	if _, err := s.Lease(ctx, "leader"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("refused acquisitions stored a lease: %v", err)
	}
}

// testFencedWrites: a write made with a fence commits only while its term
// holds the lease; a fenced-out write changes nothing and appends no
// event.
func testFencedWrites(t *testing.T, s store.Store) {
	const ttl = 10 * time.Second
	a, err := s.AcquireLease(ctx, "leader", "replica-a", at(0), ttl)
	must(t, err)
	r := newRun("run-fenced", "k-fenced", 0)
	_, err = s.CreateRun(store.WithFence(ctx, store.FenceOf(a)), r, []store.Event{ev("run.created", r.ID)})
	must(t, err)
	running := store.RunRunning
	_, _, err = s.UpdateRun(store.WithFence(ctx, store.FenceOf(a)), r.ID, store.RunUpdate{State: &running}, []store.Event{ev("run.state.changed", r.ID)})
	must(t, err)

	b, err := s.AcquireLease(ctx, "leader", "replica-b", a.Expires, ttl)
	must(t, err)
	prev := lastSeq(t, s)
	oldCtx := store.WithFence(ctx, store.FenceOf(a))
	done := store.RunSucceeded
	writes := []struct {
		name string
		fn   func() error
	}{
		{"UpdateRun", func() error {
			_, _, err := s.UpdateRun(oldCtx, r.ID, store.RunUpdate{State: &done}, []store.Event{ev("run.state.changed", r.ID)})
			return err
		}},
		{"CreateRun", func() error {
			_, err := s.CreateRun(oldCtx, newRun("run-late", "k-late", 1), []store.Event{ev("run.created", "run-late")})
			return err
		}},
		{"AppendEvents", func() error { _, err := s.AppendEvents(oldCtx, []store.Event{ev("x.happened", "x")}); return err }},
		{"SaveTriggerCursor", func() error { return s.SaveTriggerCursor(oldCtx, 99) }},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			if err := w.fn(); !isFence(err, b) {
				t.Fatalf("%s under term %d after term %d began: %v, want a *FenceError", w.name, a.Term, b.Term, err)
			}
		})
	}
	got, err := s.Run(ctx, r.ID)
	must(t, err)
	if got.State != store.RunRunning {
		t.Errorf("fenced UpdateRun changed the run to %s", got.State)
	}
	if _, err := s.Run(ctx, "run-late"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("fenced CreateRun stored a run: %v", err)
	}
	if _, err := s.TriggerCursor(ctx); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("fenced SaveTriggerCursor stored a cursor: %v", err)
	}
	if seq := lastSeq(t, s); seq != prev {
		t.Errorf("fenced writes appended events: last seq %d, want %d", seq, prev)
	}
	// The new term writes; so does an unfenced caller (an API request).
	_, _, err = s.UpdateRun(store.WithFence(ctx, store.FenceOf(b)), r.ID, store.RunUpdate{State: &done}, nil)
	must(t, err)
	_, err = s.AppendEvents(ctx, []store.Event{ev("x.happened", "y")})
	must(t, err)
}

// testLeaseRace: replicas racing for a free lease, in rounds, each round
// at a later time than the last expiry: exactly one wins each round, and
// terms count up by one.
func testLeaseRace(t *testing.T, s store.Store) {
	const replicas, rounds, ttl = 8, 5, time.Minute
	for r := range rounds {
		now := at(0).Add(time.Duration(r) * 2 * ttl)
		var wg sync.WaitGroup
		leases := make([]store.Lease, replicas)
		errs := make([]error, replicas)
		for i := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				leases[i], errs[i] = s.AcquireLease(ctx, "leader", fmt.Sprintf("replica-%d-%d", r, i), now, ttl)
			}()
		}
		wg.Wait()
		var won []store.Lease
		for i, err := range errs {
			var held *store.LeaseHeldError
			switch {
			case err == nil:
				won = append(won, leases[i])
			case errors.As(err, &held):
			default:
				t.Fatalf("round %d replica %d: %v", r, i, err)
			}
		}
		if len(won) != 1 || won[0].Term != int64(r+1) {
			t.Fatalf("round %d: winners %+v, want one in term %d", r, won, r+1)
		}
	}
}
