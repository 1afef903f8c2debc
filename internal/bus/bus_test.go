package bus

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

func events(from, n int) []store.Event {
	out := make([]store.Event, n)
	for i := range out {
		seq := int64(from + i)
		out[i] = store.Event{Seq: seq, Type: "run.state.changed", Subject: fmt.Sprintf("r%d", seq),
			Time: time.Date(2025, 1, 1, 0, 0, 0, int(seq), time.UTC)}
	}
	return out
}

func drain(t *testing.T, s *Subscription) []store.Event {
	t.Helper()
	var got []store.Event
	for ev := range s.C {
		got = append(got, ev)
	}
	return got
}

func TestPublishSubscribe(t *testing.T) {
	tests := []struct {
		name   string
		subs   int
		buffer int
		events int
	}{
		{"one subscriber", 1, 10, 5},
		{"three subscribers", 3, 8, 8},
		{"no events", 2, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := New(nil)
			var subs []*Subscription
			for range tc.subs {
				subs = append(subs, b.Subscribe(tc.buffer))
			}
			if got := b.Subscribers(); got != tc.subs {
				t.Fatalf("Subscribers() = %d, want %d", got, tc.subs)
			}
			want := events(1, tc.events)
			b.Publish(want...)
			for _, s := range subs {
				s.Close()
				got := drain(t, s)
				if len(got) != len(want) {
					t.Fatalf("got %d events, want %d", len(got), len(want))
				}
				for i := range got {
					if got[i].Seq != want[i].Seq || got[i].Subject != want[i].Subject {
						t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
					}
				}
				if !errors.Is(s.Err(), ErrClosed) {
					t.Errorf("Err() = %v, want ErrClosed", s.Err())
				}
			}
			if got := b.Subscribers(); got != 0 {
				t.Errorf("Subscribers() after close = %d, want 0", got)
			}
		})
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	b := New(nil)
	slow := b.Subscribe(2)
	fast := b.Subscribe(100)
	if slow.Err() != nil {
		t.Fatalf("Err() on open subscription = %v", slow.Err())
	}
	done := make(chan struct{})
	go func() {
		b.Publish(events(1, 5)...) // must not block on slow
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Publish blocked on a full subscriber")
	}
	got := drain(t, slow)
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("slow subscriber got %+v, want seq 1 and 2", got)
	}
	var oe *OverflowError
	if !errors.As(slow.Err(), &oe) {
		t.Fatalf("Err() = %v, want *OverflowError", slow.Err())
	}
	if oe.MissedSeq != 3 || oe.Delivered != 2 || oe.Buffer != 2 {
		t.Errorf("OverflowError = %+v, want missed 3, delivered 2, buffer 2", oe)
	}
	if !errors.Is(slow.Err(), errs.ErrUnavailable) {
		t.Errorf("overflow error is not ErrUnavailable: %v", slow.Err())
	}
	// The fast subscriber is unaffected and keeps receiving.
	b.Publish(events(6, 1)...)
	fast.Close()
	if got := drain(t, fast); len(got) != 6 {
		t.Errorf("fast subscriber got %d events, want 6", len(got))
	}
	// Publishing after the slow one was dropped does not panic.
	b.Publish(events(7, 3)...)
}

func TestCloseBus(t *testing.T) {
	b := New(nil)
	s := b.Subscribe(4)
	b.Close()
	if got := drain(t, s); len(got) != 0 {
		t.Errorf("got %d events after bus close", len(got))
	}
	if !errors.Is(s.Err(), ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", s.Err())
	}
	late := b.Subscribe(4)
	if _, ok := <-late.C; ok {
		t.Error("subscription on closed bus delivered an event")
	}
	if !errors.Is(late.Err(), ErrClosed) {
		t.Errorf("late Err() = %v, want ErrClosed", late.Err())
	}
	b.Publish(events(1, 2)...)
	s.Close() // twice is harmless
}

func TestSubscribeZeroBuffer(t *testing.T) {
	b := New(nil)
	s := b.Subscribe(0)
	b.Publish(events(1, 1)...)
	if ev := <-s.C; ev.Seq != 1 {
		t.Fatalf("got seq %d, want 1", ev.Seq)
	}
	s.Close()
}

// TestConcurrent runs publishers, subscribers and closers at once; run with
// -race. Every subscriber sees a strictly increasing prefix of the stream.
func TestConcurrent(t *testing.T) {
	b := New(nil)
	const total = 2000
	var wg sync.WaitGroup
	results := make([][]int64, 8)
	ready := make(chan struct{})
	var subs []*Subscription
	for i := range results {
		s := b.Subscribe(1 + i*64)
		subs = append(subs, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			for ev := range s.C {
				results[i] = append(results[i], ev.Seq)
			}
		}()
	}
	close(ready)
	var pub sync.Mutex // one publisher at a time keeps the stream ordered
	var pwg sync.WaitGroup
	next := int64(1)
	for range 4 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for range total / 4 {
				pub.Lock()
				b.Publish(events(int(next), 1)...)
				next++
				pub.Unlock()
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
	b.Close()
	wg.Wait()
	for i, seqs := range results {
		for j := 1; j < len(seqs); j++ {
			if seqs[j] != seqs[j-1]+1 {
				t.Fatalf("subscriber %d: seq %d after %d", i, seqs[j], seqs[j-1])
			}
		}
		if len(seqs) > 0 && seqs[0] != 1 {
			t.Errorf("subscriber %d: first seq %d, want 1", i, seqs[0])
		}
		if err := subs[i].Err(); err == nil {
			t.Errorf("subscriber %d: Err() nil after bus close", i)
		}
	}
}
