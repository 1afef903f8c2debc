// Package nats is the scale-out event bus: committed store.Event values
// travel through a NATS JetStream stream, so every replica of the server
// sees the events every other replica commits.
//
// A Bus has the in-process bus's surface and semantics (internal/bus) and
// passes the same conformance suite (internal/bus/bustest):
//
//   - Publish never blocks. It queues the events, in order, for one
//     goroutine that publishes them to the stream, retrying while the server
//     is unreachable. Each message carries a JetStream message id derived
//     from the event (its seq and a hash of its bytes), so a retried publish
//     or a second replica relaying the same committed event within the
//     stream's duplicate window is stored once. Publish only committed
//     events (DESIGN.md invariant 6).
//   - Subscribe returns a *bus.Subscription fed by one JetStream ordered
//     consumer per Bus: it sees every event stored in the stream after the
//     Bus was created, from any replica, in stream order, and fans it out to
//     local subscribers through an in-process bus.Local. A slow subscriber is
//     dropped with a *bus.OverflowError exactly as on the in-process bus, and
//     resumes from the store (store.Store.Events), which stays the source of
//     truth.
//   - Consume (consume.go) processes events through a named durable
//     consumer: at-least-once, acknowledged only after the handler
//     succeeded, shared by every process that uses the same name, surviving
//     restarts of the processes and of the server.
//
// Stream order is publish order. With one publisher per process it follows
// seq order within that process; events committed by different replicas
// interleave in the order their publishes reach the server, which need not
// be seq order. See docs/scale-out.md for what that means for consumers.
//
// This package imports internal/bus, internal/store and internal/errs (and
// nats.go). It reads no environment: Options come from the config layer.
package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// Defaults of Options.
const (
	DefaultStream         = "TAILOR_EVENTS"
	DefaultSubject        = "tailor.events"
	DefaultMaxAge         = 7 * 24 * time.Hour
	DefaultDuplicates     = 10 * time.Minute
	DefaultOutbox         = 10000
	DefaultPublishTimeout = 5 * time.Second
	DefaultCloseTimeout   = 10 * time.Second
)

// Header names on every message, besides JetStream's Nats-Msg-Id.
const (
	HeaderSeq = "Tailor-Seq" // the event's store seq, in decimal
)

// Options configures a Bus. Every field has a default.
type Options struct {
	// URL is the server list for Connect, comma-separated
	// ("nats://10.0.0.1:4222,nats://10.0.0.2:4222"). Default
	// nats.DefaultURL (nats://127.0.0.1:4222). New ignores it.
	URL string
	// ConnectOptions are passed to nats.Connect after the package's own
	// (reconnect forever, a client name): credentials (nats.UserCredentials,
	// nats.Token), TLS (nats.RootCAs, nats.ClientCert), and so on.
	ConnectOptions []natsgo.Option

	// Stream is the JetStream stream's name. Default DefaultStream.
	Stream string
	// Subject is the subject prefix: an event of type T is published to
	// "<Subject>.<T>" (so a durable consumer can filter by type). Default
	// DefaultSubject.
	Subject string
	// Replicas is the stream's replica count in a NATS cluster (1, 3 or 5).
	// Default 1.
	Replicas int
	// MaxAge is how long the stream keeps an event. The store keeps every
	// event for good; the stream needs only as long as the longest
	// outage a durable consumer must survive. Default DefaultMaxAge.
	MaxAge time.Duration
	// Duplicates is the stream's duplicate window: a message id seen within
	// it is stored once. Default DefaultDuplicates.
	Duplicates time.Duration
	// MemoryStorage keeps the stream in memory instead of on disk (tests).
	MemoryStorage bool

	// Outbox is how many events Publish may queue while the server is slow
	// or away; beyond it Publish drops events (logged, counted by Dropped).
	// Default DefaultOutbox.
	Outbox int
	// PublishTimeout bounds one publish attempt. Default
	// DefaultPublishTimeout.
	PublishTimeout time.Duration
	// CloseTimeout bounds how long Close waits for queued events to reach
	// the server. Default DefaultCloseTimeout.
	CloseTimeout time.Duration

	// Logger receives publish retries, drops and consumer errors; nil
	// discards.
	Logger *slog.Logger
}

func (o *Options) fill() {
	if o.URL == "" {
		o.URL = natsgo.DefaultURL
	}
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.Subject == "" {
		o.Subject = DefaultSubject
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Duplicates == 0 {
		o.Duplicates = DefaultDuplicates
	}
	if o.Outbox == 0 {
		o.Outbox = DefaultOutbox
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

var _ bus.Bus = (*Bus)(nil)

// Bus is an event bus on a JetStream stream. It is safe for concurrent use.
//
// Lock order: mu guards closed and the outbox channel's closing; the
// in-process bus's own lock is taken only by the fan-out goroutine and by
// subscribers, never under mu.
type Bus struct {
	opts  Options
	nc    *natsgo.Conn
	owned bool // Close closes nc
	js    jetstream.JetStream
	local *bus.Local

	mu     sync.RWMutex
	closed bool
	outbox chan outItem

	pubCtx    context.Context // canceled when Close gives up waiting
	pubCancel context.CancelFunc
	pubDone   chan struct{}

	fanout     jetstream.MessagesContext
	fanoutDone chan struct{}

	dropped   atomic.Int64
	published atomic.Int64
}

// outItem is an event to publish, or (flush != nil) a marker that Flush
// waits on.
type outItem struct {
	ev    store.Event
	flush chan struct{}
}

var errClosed = errs.Unavailable("event bus: closed")

// Connect connects to opts.URL and returns a Bus that closes the
// connection when it is closed.
func Connect(ctx context.Context, opts Options) (*Bus, error) {
	opts.fill()
	copts := append([]natsgo.Option{natsgo.Name("tailor"), natsgo.MaxReconnects(-1)}, opts.ConnectOptions...)
	nc, err := natsgo.Connect(opts.URL, copts...)
	if err != nil {
		return nil, errs.Unavailable("event bus: connect to NATS at %s: %v; check that nats-server runs with JetStream (-js) and the URL", opts.URL, err)
	}
	b, err := New(ctx, nc, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.owned = true
	return b, nil
}

// New returns a Bus on an existing connection, which the caller keeps and
// closes after the Bus. It creates the stream, or updates its limits to
// opts, and starts following it from its current end.
func New(ctx context.Context, nc *natsgo.Conn, opts Options) (*Bus, error) {
	opts.fill()
	if err := checkSubject(opts.Subject); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, errs.Unavailable("event bus: %v", err)
	}
	storage := jetstream.FileStorage
	if opts.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        opts.Stream,
		Description: "Tailor's committed events (store.Event as JSON)",
		Subjects:    []string{opts.Subject + ".>"},
		Storage:     storage,
		Replicas:    opts.Replicas,
		MaxAge:      opts.MaxAge,
		Duplicates:  opts.Duplicates,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return nil, errs.Unavailable("event bus: create stream %s on subjects %s.>: %v; check that JetStream is enabled (nats-server -js) and the account may create streams", opts.Stream, opts.Subject, err)
	}
	// Follow from the stream's end as it is now: every event stored from
	// here on reaches the local subscribers, whichever replica published it.
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, errs.Unavailable("event bus: stream %s: %v", opts.Stream, err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   info.State.LastSeq + 1,
	})
	if err != nil {
		return nil, errs.Unavailable("event bus: follow stream %s: %v", opts.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, errs.Unavailable("event bus: follow stream %s: %v", opts.Stream, err)
	}
	b := &Bus{
		opts:       opts,
		nc:         nc,
		js:         js,
		local:      bus.New(opts.Logger),
		outbox:     make(chan outItem, opts.Outbox),
		pubDone:    make(chan struct{}),
		fanout:     it,
		fanoutDone: make(chan struct{}),
	}
	b.pubCtx, b.pubCancel = context.WithCancel(context.Background())
	go b.publishLoop()
	go b.fanoutLoop()
	return b, nil
}

// Publish queues committed events for the stream, in order. It never
// blocks: when the outbox is full the events that do not fit are dropped
// (logged and counted by Dropped); subscribers, here and on other replicas,
// then find them in the store. Publishing on a closed Bus drops the events.
func (b *Bus) Publish(events ...store.Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return
	}
	for i, ev := range events {
		select {
		case b.outbox <- outItem{ev: ev}:
		default:
			n := int64(len(events) - i)
			b.dropped.Add(n)
			b.opts.Logger.Error("event bus: outbox full; events dropped from the bus (they stay in the store)",
				"outbox", b.opts.Outbox, "first_seq", ev.Seq, "dropped", n)
			return
		}
	}
}

// Flush waits until every event Publish queued before the call is stored
// in the stream (or dropped), or ctx ends.
func (b *Bus) Flush(ctx context.Context) error {
	done := make(chan struct{})
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errClosed
	}
	select {
	case b.outbox <- outItem{flush: done}:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe returns a subscription to every event stored in the stream from
// now on (and possibly a few stored just before), with the given buffer
// (at least 1). See bus.Local.Subscribe.
func (b *Bus) Subscribe(buffer int) *bus.Subscription { return b.local.Subscribe(buffer) }

// Subscribers reports how many local subscriptions are open.
func (b *Bus) Subscribers() int { return b.local.Subscribers() }

// Dropped reports how many events Publish dropped because the outbox was
// full or Close gave up waiting for the server.
func (b *Bus) Dropped() int64 { return b.dropped.Load() }

// Published reports how many events the server has stored (or recognized
// as duplicates) for this Bus.
func (b *Bus) Published() int64 { return b.published.Load() }

// Conn returns the Bus's connection.
func (b *Bus) Conn() *natsgo.Conn { return b.nc }

// Close stops accepting events, waits up to Options.CloseTimeout for the
// queued ones to reach the server, ends every local subscription with
// bus.ErrClosed, and closes the connection if Connect opened it. Closing
// twice is harmless.
func (b *Bus) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	close(b.outbox)
	b.mu.Unlock()

	timer := time.NewTimer(b.opts.CloseTimeout)
	select {
	case <-b.pubDone:
	case <-timer.C:
		b.pubCancel() // gives up on what is still queued
		<-b.pubDone
	}
	timer.Stop()
	b.pubCancel()
	b.fanout.Stop()
	<-b.fanoutDone
	b.local.Close()
	if b.owned {
		b.nc.Close()
	}
}

// publishLoop publishes queued events one at a time, in order, retrying
// each until the server stores it or Close gives up.
func (b *Bus) publishLoop() {
	defer close(b.pubDone)
	for it := range b.outbox {
		if it.flush != nil {
			close(it.flush)
			continue
		}
		if b.pubCtx.Err() != nil {
			b.dropped.Add(1)
			continue
		}
		b.publish(it.ev)
	}
}

func (b *Bus) publish(ev store.Event) {
	msg, id, err := b.message(ev)
	if err != nil {
		b.dropped.Add(1)
		b.opts.Logger.Error("event bus: cannot encode event; dropped from the bus", "seq", ev.Seq, "type", ev.Type, "err", err)
		return
	}
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(b.pubCtx, b.opts.PublishTimeout)
		_, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(b.opts.Stream))
		cancel()
		if err == nil {
			b.published.Add(1)
			if attempt > 1 {
				b.opts.Logger.Info("event bus: published after retrying", "seq", ev.Seq, "attempts", attempt)
			}
			return
		}
		if b.pubCtx.Err() != nil {
			b.dropped.Add(1)
			b.opts.Logger.Error("event bus: closed before the server stored an event; dropped from the bus (it stays in the store)", "seq", ev.Seq, "err", err)
			return
		}
		if attempt == 1 || attempt%20 == 0 {
			b.opts.Logger.Warn("event bus: publish failed; retrying", "seq", ev.Seq, "attempt", attempt, "err", err)
		}
		select {
		case <-time.After(backoff):
		case <-b.pubCtx.Done():
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// message encodes ev as the message the stream stores, and its id.
func (b *Bus) message(ev store.Event) (*natsgo.Msg, string, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(data)
	id := strconv.FormatInt(ev.Seq, 10) + "-" + hex.EncodeToString(sum[:12])
	msg := natsgo.NewMsg(b.opts.Subject + "." + subjectToken(ev.Type))
	msg.Data = data
	msg.Header.Set(HeaderSeq, strconv.FormatInt(ev.Seq, 10))
	return msg, id, nil
}

// fanoutLoop hands every event the ordered consumer delivers to the local
// subscribers.
func (b *Bus) fanoutLoop() {
	defer close(b.fanoutDone)
	backoff := 50 * time.Millisecond
	for {
		msg, err := b.fanout.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			b.mu.RLock()
			closing := b.closed
			b.mu.RUnlock()
			if !closing {
				// The connection was closed under the Bus: nothing more
				// will arrive, so end the subscriptions rather than leave
				// them waiting.
				b.opts.Logger.Error("event bus: the connection closed; ending local subscriptions")
				b.local.Close()
			}
			return
		}
		if err != nil {
			// The ordered consumer recreates itself after gaps, server
			// restarts and reconnects; errors here are transient.
			b.opts.Logger.Warn("event bus: following the stream", "err", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		ev, err := decode(msg)
		if err != nil {
			b.opts.Logger.Error("event bus: undecodable message skipped", "subject", msg.Subject(), "err", err)
			continue
		}
		b.local.Publish(ev)
	}
}

func decode(msg jetstream.Msg) (store.Event, error) {
	var ev store.Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		return ev, err
	}
	if ev.Seq <= 0 {
		return ev, fmt.Errorf("event without a seq")
	}
	return ev, nil
}

// subjectToken turns an event type ("run.state.changed") into subject
// tokens; a type that cannot be one goes to "_".
func subjectToken(typ string) string {
	if typ == "" || checkSubject(typ) != nil {
		return "_"
	}
	return typ
}

// checkSubject accepts dot-separated tokens of printable characters other
// than the wildcards.
func checkSubject(s string) error {
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n*>") {
			return errs.Invalid("event bus: subject %q: want dot-separated tokens without spaces or wildcards", s)
		}
	}
	return nil
}
