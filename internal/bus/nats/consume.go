package nats

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// ConsumeOptions configures a durable consumer. Every field has a default.
type ConsumeOptions struct {
	// After makes a consumer that is being created skip (acknowledge
	// without handling) every event with Seq <= After: a consumer that
	// replaces a cursor kept elsewhere starts where that cursor stood. It
	// has no effect on events the consumer already acknowledged.
	After int64
	// AckWait is how long the server waits for a handled event's
	// acknowledgement before it delivers the event again, to this process
	// or another one sharing the consumer. While handle runs the consumer
	// tells the server it is still working, so AckWait bounds only how long
	// a dead process holds an event. Default 30 s.
	AckWait time.Duration
	// MaxAckPending is how many events may be handed out at once across all
	// processes sharing the consumer. Default 1: one at a time, in stream
	// order.
	MaxAckPending int
	// RetryDelay is how long the server waits before delivering an event
	// again after handle returned an error. Default 1 s.
	RetryDelay time.Duration
	// FilterType limits the consumer to events whose type matches this
	// subject pattern ("run.>", "model.alias.moved"); empty: every event.
	FilterType string
}

func (o *ConsumeOptions) fill() {
	if o.AckWait == 0 {
		o.AckWait = 30 * time.Second
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = 1
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = time.Second
	}
}

// Consume hands events from the stream to handle through the durable
// consumer named name, until ctx ends; it then returns ctx's error.
//
// Delivery is at least once: an event is acknowledged only after handle
// returned nil for it; an error makes the server deliver it again after
// RetryDelay, and an event held by a process that died is delivered again
// after AckWait. Every process that consumes with the same name shares the
// consumer: each event goes to one of them at a time. The consumer lives on
// the server, so a restarted process resumes after the last acknowledged
// event, including events stored while it was away (as long as the
// stream's MaxAge keeps them). Handlers must be idempotent: skip an event
// whose Seq they have already applied.
func (b *Bus) Consume(ctx context.Context, name string, o ConsumeOptions, handle func(context.Context, store.Event) error) error {
	o.fill()
	if err := checkSubject(name); err != nil || len(name) > 200 || strings.Contains(name, ".") {
		return errs.Invalid("event bus: consumer name %q: want letters, digits, - and _", name)
	}
	filter := ""
	if o.FilterType != "" {
		filter = b.opts.Subject + "." + o.FilterType
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, b.opts.Stream, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "Tailor durable event consumer",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: o.MaxAckPending,
		FilterSubject: filter,
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errs.Unavailable("event bus: durable consumer %s on stream %s: %v", name, b.opts.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return errs.Unavailable("event bus: durable consumer %s: %v", name, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && b.nc.IsClosed():
			return errs.Unavailable("event bus: durable consumer %s: connection closed", name)
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return errs.Unavailable("event bus: durable consumer %s: stopped by the client library", name)
		}
		if err != nil {
			b.opts.Logger.Warn("event bus: durable consumer", "consumer", name, "err", err)
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		b.handle(ctx, name, o, msg, handle)
	}
}

// handle runs the handler for one message and acknowledges it, or asks
// for it again.
func (b *Bus) handle(ctx context.Context, name string, o ConsumeOptions, msg jetstream.Msg, handle func(context.Context, store.Event) error) {
	ev, err := decode(msg)
	if err != nil {
		b.opts.Logger.Error("event bus: undecodable message terminated", "consumer", name, "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	if ev.Seq <= o.After {
		_ = msg.Ack()
		return
	}
	// Keep the server from redelivering while the handler works.
	working := make(chan struct{})
	go func() {
		t := time.NewTicker(max(o.AckWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = msg.InProgress()
			case <-working:
				return
			}
		}
	}()
	err = handle(ctx, ev)
	close(working)
	if err != nil {
		b.opts.Logger.Warn("event bus: handler failed; the event will be delivered again", "consumer", name, "seq", ev.Seq, "type", ev.Type, "err", err)
		_ = msg.NakWithDelay(o.RetryDelay)
		return
	}
	// A double ack waits for the server to record it, so "handled" is
	// durable before the next event comes.
	actx, cancel := context.WithTimeout(context.Background(), b.opts.PublishTimeout)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		b.opts.Logger.Warn("event bus: acknowledgement not confirmed; the event may be delivered again", "consumer", name, "seq", ev.Seq, "err", err)
	}
}
