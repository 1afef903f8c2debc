package postgres

import (
	"fmt"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/internal/store"
)

// TestFollowerSeesCommitOrder: writers on two stores (as two server
// replicas) append events while a follower reads Events(after) in a loop,
// as bus.Follow does. Every read must continue exactly where the last one
// ended: a seq is only ever visible after every smaller one, so a
// follower never skips an event that commits later with a smaller seq.
func TestFollowerSeesCommitOrder(t *testing.T) {
	url := pg.Database(t)
	a, b := openURL(t, url), openURL(t, url)
	const writers, each = 6, 25
	var wg sync.WaitGroup
	for w := range writers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for i := range each {
				if _, err := s.AppendEvents(ctx, []store.Event{{Type: "run.state.changed", Subject: fmt.Sprintf("w%d-%d", w, i)}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	follower := openURL(t, url)
	var last int64
	reads := 0
	for finished := false; !finished || last < writers*each; {
		select {
		case <-done:
			finished = true
		default:
		}
		evs, err := follower.Events(ctx, last, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Seq != last+1 {
				t.Fatalf("read %d: seq %d follows %d: the follower skipped %d", reads, ev.Seq, last, last+1)
			}
			last = ev.Seq
		}
		reads++
		if t.Failed() {
			return
		}
	}
	if last != writers*each {
		t.Errorf("the follower read up to seq %d, want %d", last, writers*each)
	}
	t.Logf("%d events read in %d polls", last, reads)
}
