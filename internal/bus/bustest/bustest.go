// Package bustest is the conformance suite every event bus must pass: the
// in-process internal/bus.Local and the NATS JetStream bus in
// internal/bus/nats. Implementations call Run from their own tests.
//
// The suite checks what internal/app relies on (see bus.Follow):
//
//   - Deliver: every event published after Subscribe returned reaches every
//     subscription, on the publishing client and on other clients of the
//     same bus, in publish order and at least once; a repeat is never of an
//     event newer than one already delivered.
//   - Overflow: Publish never blocks on a slow subscriber; that subscriber's
//     channel yields the events it buffered, then closes, and Err is an
//     *bus.OverflowError naming the first missed seq and the last delivered
//     (wrapping errs.ErrUnavailable); other subscribers go on.
//   - Close: a closed subscription ends with bus.ErrClosed after its
//     buffered events; closing a client ends its subscriptions with
//     ErrClosed, later Subscribes start closed, later Publishes are dropped,
//     and closing twice is harmless.
//   - Republish: events published again (a retried publish, a second replica
//     relaying the same committed events) reach a consumer that skips seqs
//     it has handled exactly once each.
//   - Follow: publish after commit plus replay from a sequence. A consumer
//     that starts after seq N, reads the committed events after N from the
//     event table, follows the bus, and when dropped for overflow resumes
//     from the table at the first missed seq, handles every committed event
//     after N exactly once, in order, although it was stuck long enough to
//     be dropped.
//   - Concurrent: publishers, subscribers with many buffer sizes and a
//     closer at once (run with -race): each subscriber sees a gap-free run
//     from the first event.
//
// This package imports internal/bus, internal/store and internal/errs.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// Bus is what the suite drives: bus.Bus, the interface internal/app uses.
// Close must be safe to call twice.
type Bus = bus.Bus

// wait bounds every wait for an event; it is a hang guard, not a latency
// requirement.
const wait = 30 * time.Second

// Run runs the suite. newBus must set up a fresh, empty bus and return a
// function that attaches a client to it; each call of that function
// attaches another client of the same bus, as a second replica would hold
// (another connection for a networked bus; the in-process bus can return
// itself every time). The attach function registers each client's Close
// with t.Cleanup; tests close clients themselves only to test closing.
func Run(t *testing.T, newBus func(t *testing.T) func(t *testing.T) Bus) {
	tests := []struct {
		name string
		fn   func(t *testing.T, client func(t *testing.T) Bus)
	}{
		{"Deliver", testDeliver},
		{"Overflow", testOverflow},
		{"Close", testClose},
		{"Republish", testRepublish},
		{"Follow", testFollow},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBus(t)) })
	}
}

// Events returns n committed-looking events with seqs from, from+1, ….
func Events(from, n int) []store.Event {
	out := make([]store.Event, n)
	for i := range out {
		seq := int64(from + i)
		out[i] = store.Event{Seq: seq, Type: "run.state.changed", Subject: fmt.Sprintf("r%d", seq),
			Time: time.Date(2025, 1, 1, 0, 0, 0, int(seq), time.UTC), Data: []byte(fmt.Sprintf(`{"n":%d}`, seq))}
	}
	return out
}

// collect reads s.C until it has seen seq last (or fails after wait), and
// returns everything it read, repeats included.
func collect(t *testing.T, s *bus.Subscription, last int64) []store.Event {
	t.Helper()
	var got []store.Event
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-s.C:
			if !ok {
				t.Fatalf("subscription closed after %d events, before seq %d: %v", len(got), last, s.Err())
			}
			got = append(got, e)
			if e.Seq == last {
				return got
			}
		case <-timer.C:
			t.Fatalf("no seq %d after %s; got %d events", last, wait, len(got))
		}
	}
}

// drain reads s.C until it closes.
func drain(t *testing.T, s *bus.Subscription) []store.Event {
	t.Helper()
	var got []store.Event
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-s.C:
			if !ok {
				return got
			}
			got = append(got, e)
		case <-timer.C:
			t.Fatalf("subscription still open after %s", wait)
		}
	}
}

// dedupe drops every event whose seq is not above the last one kept, as an
// idempotent consumer does, and reports how many it dropped.
func dedupe(evs []store.Event) ([]store.Event, int) {
	var out []store.Event
	var last int64
	for _, e := range evs {
		if e.Seq <= last {
			continue
		}
		out = append(out, e)
		last = e.Seq
	}
	return out, len(evs) - len(out)
}

// checkSame fails unless got, once deduplicated, is want, field by field.
func checkSame(t *testing.T, got, want []store.Event) {
	t.Helper()
	got, _ = dedupe(got)
	if len(got) != len(want) {
		t.Fatalf("got %d distinct events, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Type != w.Type || g.Subject != w.Subject || !g.Time.Equal(w.Time) || string(g.Data) != string(w.Data) {
			t.Fatalf("event %d = %+v, want %+v", i, g, w)
		}
	}
}

func testDeliver(t *testing.T, client func(t *testing.T) Bus) {
	tests := []struct {
		name         string
		local, other int // subscribers on the publishing client and on another
		events       int
	}{
		{"one subscriber", 1, 0, 5},
		{"one on another client", 0, 1, 5},
		{"three and three", 3, 3, 50},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Each case has seqs of its own: the cases share one bus, and a
			// bus may drop an event it has seen as a duplicate.
			first := 1000*i + 1
			pub, other := client(t), client(t)
			var subs []*bus.Subscription
			for i := range tc.local + tc.other {
				b := pub
				if i >= tc.local {
					b = other
				}
				subs = append(subs, b.Subscribe(tc.events))
			}
			want := Events(first, tc.events)
			pub.Publish(want...)
			for _, s := range subs {
				got := collect(t, s, want[len(want)-1].Seq)
				checkSame(t, got, want)
				s.Close()
				drain(t, s)
				if !errors.Is(s.Err(), bus.ErrClosed) {
					t.Errorf("Err() after Close = %v, want ErrClosed", s.Err())
				}
			}
		})
	}
}

func testOverflow(t *testing.T, client func(t *testing.T) Bus) {
	pub, b := client(t), client(t)
	slow := b.Subscribe(2)
	fast := b.Subscribe(100)
	if slow.Err() != nil {
		t.Fatalf("Err() on an open subscription = %v", slow.Err())
	}
	done := make(chan struct{})
	go func() {
		pub.Publish(Events(1, 5)...) // must not block on slow
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Publish blocked on a full subscriber")
	}
	collect(t, fast, 5)
	got := drain(t, slow)
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("slow subscriber got %v, want seq 1 and 2", seqs(got))
	}
	var oe *bus.OverflowError
	if !errors.As(slow.Err(), &oe) {
		t.Fatalf("Err() = %v, want *bus.OverflowError", slow.Err())
	}
	if oe.MissedSeq != 3 || oe.Delivered != 2 || oe.Buffer != 2 {
		t.Errorf("OverflowError = %+v, want missed 3, delivered 2, buffer 2", oe)
	}
	if !errors.Is(slow.Err(), errs.ErrUnavailable) {
		t.Errorf("overflow error is not ErrUnavailable: %v", slow.Err())
	}
	// The fast subscriber goes on.
	pub.Publish(Events(6, 1)...)
	if got := collect(t, fast, 6); got[len(got)-1].Seq != 6 {
		t.Errorf("fast subscriber after the overflow got %v", seqs(got))
	}
}

func testClose(t *testing.T, client func(t *testing.T) Bus) {
	b := client(t)
	// A closed subscription still yields what it buffered, then ends.
	s := b.Subscribe(4)
	b.Publish(Events(1, 2)...)
	collectN(t, s, 2)
	b.Publish(Events(3, 1)...)
	waitBuffered(t, s, 1)
	s.Close()
	got := drain(t, s)
	if len(got) != 1 || got[0].Seq != 3 {
		t.Errorf("after Close the subscription yielded %v, want its buffered seq 3", seqs(got))
	}
	if !errors.Is(s.Err(), bus.ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", s.Err())
	}
	s.Close() // twice is harmless

	open := b.Subscribe(4)
	b.Close()
	drain(t, open)
	if !errors.Is(open.Err(), bus.ErrClosed) {
		t.Errorf("Err() after the bus closed = %v, want ErrClosed", open.Err())
	}
	late := b.Subscribe(4)
	if _, ok := <-late.C; ok {
		t.Error("a subscription on a closed bus delivered an event")
	}
	if !errors.Is(late.Err(), bus.ErrClosed) {
		t.Errorf("late Err() = %v, want ErrClosed", late.Err())
	}
	b.Publish(Events(4, 2)...) // dropped, no panic
	b.Close()                  // twice is harmless
}

// collectN reads n events from s.
func collectN(t *testing.T, s *bus.Subscription, n int) {
	t.Helper()
	for range n {
		select {
		case _, ok := <-s.C:
			if !ok {
				t.Fatalf("subscription closed: %v", s.Err())
			}
		case <-time.After(wait):
			t.Fatalf("no event after %s", wait)
		}
	}
}

// waitBuffered waits until s holds n events in its buffer.
func waitBuffered(t *testing.T, s *bus.Subscription, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for len(s.C) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the subscription buffered %d events after %s, want %d", len(s.C), wait, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func testRepublish(t *testing.T, client func(t *testing.T) Bus) {
	pub, relay, b := client(t), client(t), client(t)
	s := b.Subscribe(100)
	all := Events(1, 6)
	pub.Publish(all[:5]...)
	got := collect(t, s, 5)
	relay.Publish(all[2:5]...) // a retry, or a second replica relaying the same commits
	pub.Publish(all[5])
	got = append(got, collect(t, s, 6)...)
	checkSame(t, got, all)
	_, repeats := dedupe(got)
	t.Logf("%d events delivered for 6 distinct (%d repeats dropped by the consumer)", len(got), repeats)
}

// Log is an in-memory committed-event table with what bus.Follow reads
// from store.Store: Commit assigns seqs, Events reads after a seq.
type Log struct {
	mu  sync.Mutex
	evs []store.Event
}

// Commit appends events, assigning the next seqs, and returns them as
// committed.
func (l *Log) Commit(evs ...store.Event) []store.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]store.Event, len(evs))
	for i, e := range evs {
		e.Seq = int64(len(l.evs) + 1)
		l.evs = append(l.evs, e)
		out[i] = e
	}
	return out
}

// Events returns at most limit committed events with Seq > after, as
// store.Store does (bus.EventReader).
func (l *Log) Events(_ context.Context, after int64, limit int) ([]store.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if after < 0 {
		after = 0
	}
	if after >= int64(len(l.evs)) {
		return nil, nil
	}
	out := l.evs[after:]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return append([]store.Event(nil), out...), nil
}

// recording is a Bus whose subscriptions are reported on subs, so a test
// can watch the one bus.Follow holds.
type recording struct {
	Bus
	subs chan *bus.Subscription
}

func (r recording) Subscribe(buffer int) *bus.Subscription {
	s := r.Bus.Subscribe(buffer)
	r.subs <- s
	return s
}

func testFollow(t *testing.T, client func(t *testing.T) Bus) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	committer, b := client(t), client(t)
	var l Log
	commit := func(i int) {
		evs := l.Commit(store.Event{Type: "model.alias.moved", Subject: fmt.Sprintf("e%d", i), Time: time.Now().UTC()})
		committer.Publish(evs...) // after the commit, never before
	}
	// Ten events committed before the consumer starts; it resumes after
	// seq 4, as from a saved cursor.
	for i := 1; i <= 10; i++ {
		commit(i)
	}
	const after, total = 4, 60
	subs := make(chan *bus.Subscription, 100)
	release := make(chan struct{})
	got := make(chan store.Event, total)
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		bus.Follow(ctx, recording{b, subs}, &l, slog.New(slog.DiscardHandler), 2, after, func(e store.Event) {
			if first { // stuck long enough to be dropped
				first = false
				<-release
			}
			got <- e
		})
	}()
	sub := <-subs
	for i := 11; i <= total; i++ {
		commit(i)
	}
	// Wait until the bus has dropped the stuck consumer.
	deadline := time.Now().Add(wait)
	for sub.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the stuck consumer was not dropped after %s: the test forces no overflow", wait)
		}
		time.Sleep(time.Millisecond)
	}
	var oe *bus.OverflowError
	if !errors.As(sub.Err(), &oe) {
		t.Fatalf("the stuck consumer's subscription ended with %v, want an overflow", sub.Err())
	}
	close(release)
	for i := after + 1; i <= total; i++ {
		select {
		case e := <-got:
			if want := fmt.Sprintf("e%d", i); e.Subject != want || e.Seq != int64(i) {
				t.Fatalf("handled %s (seq %d), want %s (seq %d)", e.Subject, e.Seq, want, i)
			}
		case <-time.After(wait):
			t.Fatalf("only events up to seq %d handled after the overflow", i-1)
		}
	}
	// Caught up, it follows the bus again.
	commit(total + 1)
	select {
	case e := <-got:
		if e.Seq != total+1 {
			t.Fatalf("after catching up: handled seq %d, want %d", e.Seq, total+1)
		}
	case <-time.After(wait):
		t.Fatal("no event handled after catching up")
	}
	select {
	case e := <-got:
		t.Fatalf("seq %d handled twice", e.Seq)
	default:
	}
	cancel()
	b.Close()
	<-done
}

func testConcurrent(t *testing.T, client func(t *testing.T) Bus) {
	pub, b := client(t), client(t)
	const total = 400
	results := make([][]int64, 8)
	subs := make([]*bus.Subscription, len(results))
	roomy := len(results) - 1 // its buffer holds every event: it sees them all
	sawAll := make(chan struct{})
	var wg sync.WaitGroup
	for i := range results {
		s := b.Subscribe(1 + i*64)
		subs[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range s.C {
				results[i] = append(results[i], e.Seq)
				if i == roomy && e.Seq == total {
					close(sawAll)
				}
			}
		}()
	}
	var mu sync.Mutex // one publisher at a time keeps the stream ordered
	next := 1
	var pwg sync.WaitGroup
	for range 4 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for range total / 4 {
				mu.Lock()
				pub.Publish(Events(next, 1)...)
				next++
				mu.Unlock()
			}
		}()
	}
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		subs[0].Close()
		_ = subs[1].Err()
	}()
	pwg.Wait()
	select {
	case <-sawAll:
	case <-time.After(wait):
		t.Errorf("the subscriber with room for every event did not see seq %d", total)
	}
	b.Close()
	wg.Wait()
	for i, got := range results {
		var last int64
		for j, seq := range got {
			switch {
			case seq <= last: // a repeat: allowed, skipped by the consumer
			case j == 0 && seq != 1:
				t.Errorf("subscriber %d: first seq %d, want 1", i, seq)
			case j > 0 && seq != last+1:
				t.Fatalf("subscriber %d: seq %d after %d", i, seq, last)
			}
			last = max(last, seq)
		}
		if err := subs[i].Err(); err == nil {
			t.Errorf("subscriber %d: Err() nil after the bus closed", i)
		}
	}
}

func seqs(evs []store.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}
