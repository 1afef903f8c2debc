package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
)

// Leadership among replicas.
//
// Several `tailor server` processes may share one metadata store, one
// artifact store and one event bus. Every replica serves inference and
// answers the whole API; exactly one, the leader, also runs the scheduler
// (starting queued runs, re-queuing runs a dead leader left running), the
// triggers, the monitors' background work and reconcile. The leader is the
// holder of the store's leader lease (store.Leases): it renews it every
// LeaseTTL/3; when it dies, the lease runs out and another replica
// acquires it, in a new term, within about LeaseTTL + LeaseTTL/3.
//
// Fencing: the leader does all its work under a context carrying its
// store.Fence (lease, holder, term). Every store write made with it checks,
// in its own transaction, that the term still holds the lease. A new
// leader's acquisition is itself a committed write, so from then on no
// write of the old term can commit: an old leader that is alive but cut
// off (a long pause, a lost store connection) cannot record a run's state,
// a firing's step or a trigger cursor over the new leader's. It also stops
// its work once it has not renewed for 2/3 of LeaseTTL, so side effects
// outside the store (a worker process, a webhook) end before the lease
// can run out for the others (clocks agreeing to well within LeaseTTL).
//
// Runs and firings are keyed in the store (run keys, (trigger, event)
// firings, steps compare-and-set), so the new leader resumes what the old
// one left: a running run is re-queued and resumes from its checkpoint, a
// running firing resumes at its step.

// DefaultLeaseTTL is Options.LeaseTTL's default.
const DefaultLeaseTTL = 5 * time.Second

// leaderLease is the name of the leader lease in the store.
const leaderLease = "leader"

// EventLeaderElected is appended when a replica starts leading.
const EventLeaderElected = "leader.elected"

// eventMonitorCreated is appended with a new monitor spec version.
const eventMonitorCreated = "monitor.version.created"

type leadership struct {
	a   *App
	ttl time.Duration

	mu      sync.Mutex
	leading bool
	lease   store.Lease // the lease as last read or held
	done    chan struct{}
}

func newLeadership(a *App) *leadership {
	return &leadership{a: a, ttl: a.opts.LeaseTTL, done: make(chan struct{})}
}

// start tries the lease once; when it gets it, it starts leading before
// returning (an error doing so is returned). Then a loop keeps competing
// for the lease, and renewing it while it leads, until ctx ends.
func (l *leadership) start(ctx context.Context) error {
	since := time.Now()
	lease, err := l.acquire(ctx)
	var first *leaderTerm
	if err == nil {
		if first, err = l.begin(ctx, lease, since); err != nil {
			close(l.done)
			return err
		}
	}
	go func() {
		defer close(l.done)
		if first != nil {
			l.keep(ctx, first)
		}
		l.loop(ctx)
	}()
	return nil
}

// wait blocks until the loop ended (after ctx), the leader's work stopped
// and the lease was released.
func (l *leadership) wait() { <-l.done }

// leaderTerm is one term of this replica's leadership.
type leaderTerm struct {
	lease  store.Lease
	since  time.Time // monotonic: when the acquisition began
	cancel context.CancelFunc
	wait   func()
}

// loop competes for the lease every LeaseTTL/3 until ctx ends.
func (l *leadership) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.ttl / 3):
		}
		since := time.Now()
		lease, err := l.acquire(ctx)
		if err != nil {
			continue
		}
		term, err := l.begin(ctx, lease, since)
		if err != nil {
			continue
		}
		l.keep(ctx, term)
	}
}

// acquire tries the lease once and records what it learned. It reads
// first, and writes only when the lease looks free (or its own), so
// followers do not queue for the store's writer every LeaseTTL/3.
func (l *leadership) acquire(ctx context.Context) (store.Lease, error) {
	a := l.a
	now := a.opts.Now()
	if cur, err := a.store.Lease(ctx, leaderLease); err == nil && cur.Holder != "" && cur.Holder != a.opts.Replica && cur.Expires.After(now) {
		l.set(false, cur)
		return store.Lease{}, &store.LeaseHeldError{Current: cur}
	}
	lease, err := a.store.AcquireLease(ctx, leaderLease, a.opts.Replica, now, l.ttl)
	var held *store.LeaseHeldError
	switch {
	case err == nil:
		return lease, nil
	case errors.As(err, &held):
		l.set(false, held.Current)
	case ctx.Err() == nil:
		a.logger.Warn("leader lease: acquire", "err", err)
	}
	return store.Lease{}, err
}

// begin starts leading in lease's term, acquired at since. On an error
// it has stopped again and released the lease.
func (l *leadership) begin(ctx context.Context, lease store.Lease, since time.Time) (*leaderTerm, error) {
	a := l.a
	l.set(true, lease)
	a.logger.Info("leading: this replica runs the scheduler, triggers and monitors", "replica", lease.Holder, "term", lease.Term)
	lctx, cancel := context.WithCancel(store.WithFence(ctx, store.FenceOf(lease)))
	if evs, err := a.store.AppendEvents(store.WithActor(lctx, serverActor), []store.Event{a.event(EventLeaderElected, lease.Holder,
		map[string]any{"replica": lease.Holder, "term": lease.Term})}); err == nil {
		a.publish(evs)
	}
	wait, err := a.startLeading(lctx)
	if err != nil {
		cancel()
		if wait != nil {
			wait()
		}
		l.release(ctx, lease)
		a.logger.Error("leading: start", "term", lease.Term, "err", err)
		return nil, err
	}
	return &leaderTerm{lease: lease, since: since, cancel: cancel, wait: wait}, nil
}

// keep renews t's lease every LeaseTTL/3 until ctx ends (then it stops
// the work and releases the lease) or the lease is lost or could not be
// renewed for 2/3 of LeaseTTL (then it stops the work).
func (l *leadership) keep(ctx context.Context, t *leaderTerm) {
	a := l.a
	lease := t.lease
	renewed := t.since // monotonic: at the latest, when the lease last had LeaseTTL left
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.cancel()
			t.wait()
			l.release(ctx, lease)
			return
		case <-tick.C:
		}
		start := time.Now()
		// A renewal stuck behind a busy store gives up in time to retry.
		rctx, rcancel := context.WithTimeout(ctx, l.ttl/3)
		next, err := a.store.RenewLease(rctx, lease, a.opts.Now(), l.ttl)
		rcancel()
		if err == nil {
			lease, renewed = next, start
			l.set(true, lease)
			continue
		}
		if ctx.Err() != nil {
			continue // shutting down: stop and release above
		}
		var fenced *store.FenceError
		lost := errors.As(err, &fenced)
		if !lost && time.Since(renewed) < l.ttl*2/3 {
			a.logger.Warn("leader lease: renew; retrying", "term", lease.Term, "err", err)
			continue
		}
		if lost && fenced.Current.Holder == a.opts.Replica {
			a.logger.Error("leader lease taken in a new term under this replica's own name: another process runs with the same --replica (or --data-dir); give each replica its own",
				"replica", a.opts.Replica, "term", fenced.Current.Term)
		}
		a.logger.Warn("leader lease lost: stopping the leader's work", "term", lease.Term, "err", err)
		t.cancel()
		t.wait()
		cur := store.Lease{}
		if lost {
			cur = fenced.Current
		}
		l.set(false, cur)
		return
	}
}

// release gives the lease up so another replica leads at once.
func (l *leadership) release(ctx context.Context, lease store.Lease) {
	a := l.a
	if err := a.store.ReleaseLease(context.WithoutCancel(ctx), lease, a.opts.Now()); err != nil {
		a.logger.Warn("leader lease: release", "term", lease.Term, "err", err)
	} else {
		a.logger.Info("leader lease released", "term", lease.Term)
	}
	l.set(false, store.Lease{Name: lease.Name, Term: lease.Term})
}

func (l *leadership) set(leading bool, lease store.Lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leading, l.lease = leading, lease
}

// Health says that the server answers and which replica leads.
func (a *App) Health(ctx context.Context) (api.Health, error) {
	h := api.Health{Status: "ok", Replica: a.opts.Replica}
	l := a.lead
	l.mu.Lock()
	h.Leading, h.Leader, h.Term, h.LeaseExpires = l.leading, l.lease.Holder, l.lease.Term, l.lease.Expires
	l.mu.Unlock()
	if !h.Leading {
		// What the store says now, not what this replica last saw.
		if cur, err := a.store.Lease(ctx, leaderLease); err == nil {
			h.Leader, h.Term, h.LeaseExpires = cur.Holder, cur.Term, cur.Expires
			if !cur.Expires.After(a.opts.Now()) {
				h.Leader = "" // expired: nobody leads until a replica acquires it
			}
		}
	}
	return h, nil
}

// followForLeader wakes the leader's loops on events committed by any
// replica: a run queued (or re-queued) elsewhere, a monitor applied
// elsewhere, a cancel asked of a run this replica supervises.
func (a *App) followForLeader(ctx context.Context) {
	bus.FollowPolling(ctx, a.bus, a.store, a.logger, 256, -1, a.followPoll(), func(e store.Event) {
		switch e.Type {
		case run.EventStateChanged:
			a.sched.Wake()
		case eventMonitorCreated:
			a.monitors.wake()
		case run.EventCancelRequested:
			a.sched.CancelRequested(e)
		}
	})
}

// replicaPoll is how often a follower of a networked bus also reads the
// store (bus.FollowPolling): the longest an event whose publish was lost
// waits.
const replicaPoll = 500 * time.Millisecond

// followPoll is replicaPoll with a networked bus; with the in-process bus
// every committed event is published in this process and none is lost.
func (a *App) followPoll() time.Duration {
	if _, local := a.bus.(*bus.Local); local {
		return 0
	}
	return replicaPoll
}

// defaultReplica names a replica by its host and data directory, so a
// restarted server is the same replica (and takes its lease back at once).
func defaultReplica(dataDir string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return host + "-" + hex.EncodeToString(sum[:4])
}
