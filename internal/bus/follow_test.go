package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlite"
)

// TestFollowLosesNothingOnOverflow: a consumer stuck on its first
// event makes the bus drop its subscription; once it moves again it gets
// every committed event exactly once, in order, the missed ones read back
// from the SQLite store.
func TestFollowLosesNothingOnOverflow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, b := followFixture(t)

	release := make(chan struct{})
	got := make(chan store.Event, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		bus.Follow(ctx, b, st, slog.New(slog.DiscardHandler), 2, -1, func(e store.Event) {
			if first {
				first = false
				<-release
			}
			got <- e
		})
	}()
	for b.Subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	const n = 20
	for i := range n {
		evs, err := st.AppendEvents(ctx, []store.Event{{Type: "model.alias.moved", Subject: fmt.Sprintf("e%d", i), Time: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		b.Publish(evs...)
	}
	if b.Subscribers() != 0 {
		t.Fatal("the stuck subscriber was not dropped: the test forces no overflow")
	}
	close(release)
	for i := range n {
		select {
		case e := <-got:
			if want := fmt.Sprintf("e%d", i); e.Subject != want {
				t.Fatalf("event %d is %s (seq %d), want %s", i, e.Subject, e.Seq, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d events handled after the overflow", i, n)
		}
	}
	// After catching up it follows the bus again.
	evs, err := st.AppendEvents(ctx, []store.Event{{Type: "model.alias.moved", Subject: "after", Time: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	for b.Subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	b.Publish(evs...)
	select {
	case e := <-got:
		if e.Subject != "after" {
			t.Fatalf("after catching up: got %s", e.Subject)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event after catching up")
	}
	select {
	case e := <-got:
		t.Fatalf("event %s handled twice", e.Subject)
	default:
	}
	cancel()
	b.Close()
	<-done
}

// TestFollowOutOfOrderPublish: two commits publish in the reverse of
// their seq order (commit and publish are not one step); the follower
// still handles both, in seq order, once each.
func TestFollowOutOfOrderPublish(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, b := followFixture(t)
	got := make(chan store.Event, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		bus.Follow(ctx, b, st, slog.New(slog.DiscardHandler), 16, -1, func(e store.Event) { got <- e })
	}()
	for b.Subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	commit := func(subject string) store.Event {
		evs, err := st.AppendEvents(ctx, []store.Event{{Type: "model.alias.moved", Subject: subject, Time: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		return evs[0]
	}
	first := commit("first") // the follower's starting point
	b.Publish(first)
	a, c := commit("a"), commit("b")
	b.Publish(c) // b's publisher wins the race
	b.Publish(a)
	d := commit("c")
	b.Publish(d)
	for _, want := range []string{"first", "a", "b", "c"} {
		select {
		case e := <-got:
			if e.Subject != want {
				t.Fatalf("handled %s (seq %d), want %s", e.Subject, e.Seq, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never handled", want)
		}
	}
	select {
	case e := <-got:
		t.Fatalf("event %s (seq %d) handled twice", e.Subject, e.Seq)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	b.Close()
	<-done
}

// followFixture is a real SQLite store and an in-process bus, closed when
// the test ends.
func followFixture(t *testing.T) (*sqlite.Store, *bus.Local) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := bus.New(nil)
	t.Cleanup(b.Close)
	return st, b
}

// TestFollowEndsWithContext: canceling ctx ends Follow while the bus stays
// open and nothing is published (a leader stepping down stops following).
func TestFollowEndsWithContext(t *testing.T) {
	st, b := followFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		bus.Follow(ctx, b, st, slog.New(slog.DiscardHandler), 4, 0, func(store.Event) {})
	}()
	for b.Subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a hang guard
		t.Fatal("Follow still running after its context ended")
	}
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("%d subscriptions left open", n)
	}
}

// TestFollowPollingFindsUnpublished: events committed but never published
// (their replica died between commit and publish) reach a polling
// follower with no later event to show the gap; a plain Follow would wait
// for one.
func TestFollowPollingFindsUnpublished(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, b := followFixture(t)
	first, err := st.AppendEvents(ctx, []store.Event{{Type: "model.alias.moved", Subject: "published", Time: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan store.Event, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		bus.FollowPolling(ctx, b, st, slog.New(slog.DiscardHandler), 4, -1, 10*time.Millisecond, func(e store.Event) { got <- e })
	}()
	for b.Subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	b.Publish(first...) // gives the follower its position
	for _, s := range []string{"lost-1", "lost-2"} {
		if _, err := st.AppendEvents(ctx, []store.Event{{Type: "model.alias.moved", Subject: s, Time: time.Now()}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"published", "lost-1", "lost-2"} {
		select {
		case e := <-got:
			if e.Subject != want {
				t.Fatalf("handled %s (seq %d), want %s", e.Subject, e.Seq, want)
			}
		case <-time.After(30 * time.Second): // a hang guard
			t.Fatalf("%s never handled", want)
		}
	}
	cancel()
	<-done
	select {
	case e := <-got:
		t.Fatalf("event %s (seq %d) handled twice", e.Subject, e.Seq)
	default:
	}
}
