// Package bus is Tailor's event bus: the Bus interface the application
// depends on, and Local, the in-process bus that fans committed store.Event
// values out to subscribers inside one process (the embedded default).
//
// Callers publish only after the store has committed the change the events
// describe (DESIGN.md invariant 6): the events passed to Publish are the ones
// a store.Store method returned, with their Seq filled in. The bus keeps no
// history; a subscriber that needs everything reads store.Store.Events from
// the last Seq it saw and then follows the bus, which is what Follow does.
//
// Publish never blocks. A subscriber whose buffer is full is closed, and its
// Err reports an *OverflowError naming the first event it missed, so it can
// resume from the store. This package imports only internal/store and
// internal/errs. The scale-out equivalent on NATS JetStream is
// internal/bus/nats; both pass the conformance suite in internal/bus/bustest,
// and internal/bus/busaddr opens the one an address names.
package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// ErrClosed is what Subscription.Err reports after the subscriber or the bus
// closed the subscription.
var ErrClosed = errors.New("bus: subscription closed")

// OverflowError is what Subscription.Err reports when the subscription was
// closed because its buffer was full. It wraps errs.ErrUnavailable.
type OverflowError struct {
	Buffer     int   // the subscription's buffer size
	MissedSeq  int64 // Seq of the first event that could not be delivered
	Delivered  int64 // Seq of the last event put in the buffer (0 if none)
	MissedType string
}

func (e *OverflowError) Error() string {
	return fmt.Sprintf("bus: subscriber too slow: buffer of %d full at event seq %d (%s); resume from the store after seq %d",
		e.Buffer, e.MissedSeq, e.MissedType, e.Delivered)
}

// Unwrap makes errors.Is(err, errs.ErrUnavailable) true.
func (e *OverflowError) Unwrap() error { return errs.ErrUnavailable }

// Bus is what the application needs of an event bus: Local in one
// process, internal/bus/nats across replicas. Both pass bustest.
type Bus interface {
	// Publish hands committed events to every subscription (on every
	// replica, for a networked bus). It never blocks.
	Publish(events ...store.Event)
	// Subscribe returns a subscription to the events published from now
	// on, with the given buffer.
	Subscribe(buffer int) *Subscription
	// Close ends every subscription with ErrClosed; closing twice is
	// harmless.
	Close()
}

var _ Bus = (*Local)(nil)

// Local fans events out to subscribers in this process. The zero value is
// not usable; call New.
//
// Lock order: Local.mu is the only lock; a subscription's state is guarded
// by the bus lock, so Publish and Close never race on a channel.
type Local struct {
	logger *slog.Logger

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

// New returns an empty in-process bus. A nil logger discards log output.
func New(logger *slog.Logger) *Local {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Local{logger: logger, subs: make(map[*Subscription]struct{})}
}

// Subscription receives events published after Subscribe returned.
type Subscription struct {
	// C delivers events in publish order. It is closed when the
	// subscription ends; Err then says why.
	C <-chan store.Event

	bus       *Local
	ch        chan store.Event
	buffer    int
	delivered int64
	err       error // guarded by bus.mu; nil while open
}

// Subscribe returns a subscription with the given buffer size (at least 1).
// Subscribing to a closed bus returns a subscription that is already closed.
func (b *Local) Subscribe(buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	ch := make(chan store.Event, buffer)
	s := &Subscription{C: ch, bus: b, ch: ch, buffer: buffer}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.err = ErrClosed
		close(ch)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// Publish delivers events, in order, to every subscriber. It never blocks: a
// subscriber whose buffer cannot take an event is closed with an
// *OverflowError and receives nothing more. Publish only committed events.
func (b *Local) Publish(events ...store.Event) {
	if len(events) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		for _, ev := range events {
			select {
			case s.ch <- ev:
				s.delivered = ev.Seq
				continue
			default:
			}
			err := &OverflowError{Buffer: s.buffer, MissedSeq: ev.Seq, Delivered: s.delivered, MissedType: ev.Type}
			b.logger.Warn("bus subscriber dropped", "buffer", s.buffer, "missed_seq", ev.Seq, "delivered_seq", s.delivered)
			b.endLocked(s, err)
			break
		}
	}
}

// Close ends every subscription with ErrClosed; later subscriptions start
// closed and later publishes are dropped.
func (b *Local) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.endLocked(s, ErrClosed)
	}
}

// Subscribers reports how many subscriptions are open.
func (b *Local) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func (b *Local) endLocked(s *Subscription, err error) {
	if s.err != nil {
		return
	}
	s.err = err
	delete(b.subs, s)
	close(s.ch)
}

// Close ends the subscription; C is closed (after any buffered events) and
// Err reports ErrClosed. Closing twice is harmless.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.endLocked(s, ErrClosed)
}

// Err is nil while the subscription is open. After C is closed it reports
// why: ErrClosed, or an *OverflowError when the subscriber fell behind.
func (s *Subscription) Err() error {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.err
}
