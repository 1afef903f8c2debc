package bus

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/tailor-ml/tailor/internal/store"
)

// Subscriber is what Follow reads live events from: *Bus, or the NATS bus.
type Subscriber interface {
	Subscribe(buffer int) *Subscription
}

// EventReader reads committed events back (store.Store satisfies it).
type EventReader interface {
	Events(ctx context.Context, after int64, limit int) ([]store.Event, error)
}

// Follow hands every event committed after seq after (after < 0: every
// event committed after it starts) to handle, in seq order and once each,
// until ctx ends or the bus closes (it returns soon after either). It
// follows the bus; when the bus drops
// it for falling behind (an *OverflowError), it subscribes again and first
// reads from the store every event from the first one it missed, so a slow
// consumer loses nothing. With after >= 0 it starts that way too:
// subscribed, it first reads the stored events after after.
//
// Events are published after their commit, but two commits may publish
// out of seq order: an event whose seq skips past the next one expected
// sends the follower to the store for the ones in between (committed
// already, since the store assigns seqs in commit order) before it goes on.
func Follow(ctx context.Context, b Subscriber, st EventReader, logger *slog.Logger, buffer int, after int64, handle func(store.Event)) {
	FollowPolling(ctx, b, st, logger, buffer, after, 0, handle)
}

// FollowPolling is Follow that also reads the store every poll (0: never)
// once it has a position (after >= 0, or an event handled): an event whose
// publish was lost (its replica died between commit and publish, or a
// full outbox dropped it) is handled within poll even when no later event
// comes to show the gap. Serving and the leader follow this way across
// replicas.
func FollowPolling(ctx context.Context, b Subscriber, st EventReader, logger *slog.Logger, buffer int, after int64, poll time.Duration, handle func(store.Event)) {
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	var last int64 // seq of the last event handled; 0: none yet
	var resume int64
	if after >= 0 {
		last, resume = after, after+1
	}
	started := after >= 0 // last is a real position to count gaps from
	fill := func(from int64) {
		if err := Replay(ctx, st, from, func(e store.Event) {
			if e.Seq > last {
				handle(e)
				last = e.Seq
			}
		}); err != nil {
			logger.Error("replay missed events from the store", "after", from, "err", err)
		}
	}
	for ctx.Err() == nil {
		sub := b.Subscribe(buffer)
		stop := context.AfterFunc(ctx, sub.Close) // ctx's end ends the wait below
		if resume > 0 {
			// Subscribed first, then read: an event committed meanwhile
			// is either in the store or on the new subscription.
			fill(resume - 1)
			started = true
		}
		for open := true; open; {
			var e store.Event
			select {
			case e, open = <-sub.C:
			case <-tick:
				if started {
					fill(last) // anything committed but never published
				}
				continue
			}
			if !open {
				break
			}
			if e.Seq <= last {
				continue // replayed already
			}
			if started && e.Seq > last+1 {
				fill(last) // published ahead of the events before it
			}
			if e.Seq > last {
				handle(e)
				last = e.Seq
			}
			started = true
		}
		stop()
		err := sub.Err()
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return
		}
		var oe *OverflowError
		if errors.As(err, &oe) {
			resume = oe.MissedSeq
		} else {
			resume = last + 1
		}
		logger.Warn("event subscription ended; resubscribing and replaying from the store", "from_seq", resume, "err", err)
	}
}

// Replay hands every stored event after seq after to fn, in seq order,
// reading them in pages.
func Replay(ctx context.Context, st EventReader, after int64, fn func(store.Event)) error {
	const page = 1000
	for {
		evs, err := st.Events(ctx, after, page)
		if err != nil {
			return err
		}
		for _, e := range evs {
			fn(e)
			after = e.Seq
		}
		if len(evs) < page {
			return nil
		}
	}
}
