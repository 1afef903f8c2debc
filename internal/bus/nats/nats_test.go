package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/bus/bustest"
	"github.com/tailor-ml/tailor/internal/bus/nats/natstest"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// The servers every test shares: one in this process, one nats-server
// child process (Debian's package). Each test uses streams of its own.
var embedded, process *natstest.Server

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "tailor-nats-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"embedded", "process"} {
		if err := os.Mkdir(dir+"/"+d, 0o755); err != nil {
			return 0, err
		}
	}
	if embedded, err = natstest.Embedded(dir + "/embedded"); err != nil {
		return 0, err
	}
	defer embedded.Close()
	if process, err = natstest.Process(dir + "/process"); err != nil {
		return 0, err
	}
	defer process.Close()
	fmt.Fprintf(os.Stderr, "nats: embedded server %s at %s; nats-server process %s at %s\n",
		embedded.Version, embedded.URL, process.Version, process.URL)
	return m.Run(), nil
}

var streams atomic.Int64

// options names a fresh stream on srv.
func options(t *testing.T, srv *natstest.Server) Options {
	n := streams.Add(1)
	return Options{
		URL:            srv.URL,
		Stream:         fmt.Sprintf("T%d", n),
		Subject:        fmt.Sprintf("t%d.events", n),
		ConnectOptions: []natsgo.Option{natsgo.ReconnectWait(50 * time.Millisecond)},
		PublishTimeout: 500 * time.Millisecond,
		CloseTimeout:   2 * time.Second,
		Logger:         slog.New(slog.DiscardHandler),
	}
}

func connect(t *testing.T, o Options) *Bus {
	t.Helper()
	b, err := Connect(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func conformance(t *testing.T, srv *natstest.Server) {
	bustest.Run(t, func(t *testing.T) func(t *testing.T) bustest.Bus {
		o := options(t, srv)
		return func(t *testing.T) bustest.Bus { return connect(t, o) }
	})
}

func TestConformanceEmbedded(t *testing.T) { conformance(t, embedded) }
func TestConformanceProcess(t *testing.T)  { conformance(t, process) }

// publish publishes events and waits until the server stored them.
func publish(t *testing.T, b *Bus, evs ...store.Event) {
	t.Helper()
	b.Publish(evs...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMessage: the stored message's subject, headers and id.
func TestMessage(t *testing.T) {
	o := options(t, embedded)
	b := connect(t, o)
	evs := bustest.Events(7, 1)
	bad := evs[0]
	bad.Seq, bad.Type = 8, "bad type*"
	publish(t, b, evs[0], bad)
	stream, err := b.js.Stream(context.Background(), o.Stream)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		seq     uint64
		subject string
		header  string
	}{
		{1, o.Subject + ".run.state.changed", "7"},
		{2, o.Subject + "._", "8"},
	}
	for _, tc := range tests {
		m, err := stream.GetMsg(context.Background(), tc.seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != tc.subject || m.Header.Get(HeaderSeq) != tc.header || m.Header.Get(jetstream.MsgIDHeader) == "" {
			t.Errorf("message %d: subject %q, %s %q, id %q; want %q, %q, an id", tc.seq, m.Subject, HeaderSeq,
				m.Header.Get(HeaderSeq), m.Header.Get(jetstream.MsgIDHeader), tc.subject, tc.header)
		}
	}
}

// recorder is an idempotent handler: it applies each seq once and counts
// every attempt.
type recorder struct {
	mu       sync.Mutex
	applied  []int64
	attempts map[int64]int
	last     int64
	notify   chan int64
}

func newRecorder() *recorder {
	return &recorder{attempts: map[int64]int{}, notify: make(chan int64, 1000)}
}

func (r *recorder) handle(_ context.Context, e store.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts[e.Seq]++
	if e.Seq > r.last {
		r.applied = append(r.applied, e.Seq)
		r.last = e.Seq
		r.notify <- e.Seq
	}
	return nil
}

func (r *recorder) waitFor(t *testing.T, seq int64) {
	t.Helper()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		select {
		case s := <-r.notify:
			if s == seq {
				return
			}
		case <-timer.C:
			t.Fatalf("seq %d not handled after 30s; applied %v", seq, r.snapshot())
		}
	}
}

func (r *recorder) snapshot() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.applied...)
}

func consume(ctx context.Context, b *Bus, name string, o ConsumeOptions, h func(context.Context, store.Event) error) chan error {
	done := make(chan error, 1)
	go func() { done <- b.Consume(ctx, name, o, h) }()
	return done
}

func want(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestConsumeAtLeastOnce: a failed handler gets the event again; an event
// held by a process that died goes to the other process sharing the
// consumer; with an idempotent handler every event is applied once, in
// order.
func TestConsumeAtLeastOnce(t *testing.T) {
	o := options(t, embedded)
	pub := connect(t, o)
	a, b := connect(t, o), connect(t, o)
	publish(t, pub, bustest.Events(1, 10)...)

	rec := newRecorder()
	failed := false
	stuck := make(chan struct{})
	unblock := make(chan struct{})
	handleA := func(ctx context.Context, e store.Event) error {
		switch {
		case e.Seq == 3 && !failed:
			failed = true
			return errors.New("transient failure")
		case e.Seq == 6:
			close(stuck)
			<-unblock // the process "dies" holding seq 6
			return errors.New("dead")
		}
		return rec.handle(ctx, e)
	}
	copts := ConsumeOptions{AckWait: time.Second, RetryDelay: 10 * time.Millisecond}
	doneA := consume(context.Background(), a, "workers", copts, handleA)
	select {
	case <-stuck:
	case <-time.After(30 * time.Second):
		t.Fatalf("process A never reached seq 6; applied %v", rec.snapshot())
	}
	a.Conn().Close() // the connection dies with seq 6 unacknowledged
	unblock <- struct{}{}
	if err := <-doneA; !errors.Is(err, errs.ErrUnavailable) {
		t.Errorf("Consume on a closed connection = %v, want ErrUnavailable", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	doneB := consume(ctx, b, "workers", copts, rec.handle)
	rec.waitFor(t, 10)
	cancel()
	if err := <-doneB; !errors.Is(err, context.Canceled) {
		t.Errorf("Consume after cancel = %v, want context.Canceled", err)
	}
	if got := rec.snapshot(); !equal(got, want(1, 10)) {
		t.Fatalf("applied %v, want 1..10 once each", got)
	}
	if !failed {
		t.Error("seq 3 never failed")
	}
}

// TestConsumeAfter: a new consumer starts after a given seq, as from a
// cursor kept elsewhere, and a second run resumes after its last ack.
func TestConsumeAfter(t *testing.T) {
	o := options(t, embedded)
	b := connect(t, o)
	publish(t, b, bustest.Events(1, 10)...)
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := consume(ctx, b, "cursor", ConsumeOptions{After: 4}, rec.handle)
	rec.waitFor(t, 10)
	cancel()
	<-done
	if got := rec.snapshot(); !equal(got, want(5, 10)) {
		t.Fatalf("applied %v, want 5..10", got)
	}
	publish(t, b, bustest.Events(11, 2)...)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done = consume(ctx, b, "cursor", ConsumeOptions{After: 4}, rec.handle)
	rec.waitFor(t, 12)
	cancel()
	<-done
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for s, n := range rec.attempts {
		if n != 1 {
			t.Errorf("seq %d handled %d times; the second run did not resume after the last ack", s, n)
		}
	}
}

// TestConsumeFilter: a consumer limited to some event types sees only them.
func TestConsumeFilter(t *testing.T) {
	o := options(t, embedded)
	b := connect(t, o)
	evs := bustest.Events(1, 6)
	for i := range evs {
		if i%2 == 1 {
			evs[i].Type = "model.alias.moved"
		}
	}
	publish(t, b, evs...)
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := consume(ctx, b, "aliases", ConsumeOptions{FilterType: "model.>"}, rec.handle)
	rec.waitFor(t, 6)
	cancel()
	<-done
	if got := rec.snapshot(); !equal(got, []int64{2, 4, 6}) {
		t.Fatalf("applied %v, want 2, 4, 6", got)
	}
}

func TestConsumeBadName(t *testing.T) {
	b := connect(t, options(t, embedded))
	for _, name := range []string{"", "a.b", "a b", "x*", ">"} {
		if err := b.Consume(context.Background(), name, ConsumeOptions{}, nil); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("Consume(%q) = %v, want ErrInvalid", name, err)
		}
	}
}

// TestServerKilled: a nats-server process killed with SIGKILL and started
// again on the same directory loses nothing. Events published while it was
// away wait in the outbox and go out after it returns; a subscription made
// before the kill receives them; the durable consumer resumes after its last
// acknowledged event; an outbox too small to wait drops and counts.
func TestServerKilled(t *testing.T) {
	o := options(t, process)
	b := connect(t, o)
	sub := b.Subscribe(100)
	publish(t, b, bustest.Events(1, 5)...)
	rec := newRecorder()
	// A short AckWait: events whose acks the crash lost come back sooner.
	survivor := ConsumeOptions{AckWait: 2 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := consume(ctx, b, "survivor", survivor, rec.handle)
	rec.waitFor(t, 5)
	cancel()
	<-done

	small := options(t, process) // a stream of its own
	small.Outbox = 3
	tiny := connect(t, small)

	start := time.Now()
	process.Kill()
	b.Publish(bustest.Events(6, 3)...) // queued while the server is away
	tiny.Publish(bustest.Events(100, 10)...)
	if err := process.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: restarted", time.Since(start))
	publish(t, b, bustest.Events(9, 2)...)
	t.Logf("%s: published 6..10", time.Since(start))

	if d := tiny.Dropped(); d < 6 || d > 7 {
		t.Errorf("a 3-event outbox dropped %d of 10 events published while the server was away, want 6 or 7", d)
	}
	if d := b.Dropped(); d != 0 {
		t.Errorf("the roomy outbox dropped %d events", d)
	}
	var got []int64
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for len(got) == 0 || got[len(got)-1] != 10 {
		select {
		case e, ok := <-sub.C:
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			if len(got) == 0 || e.Seq > got[len(got)-1] {
				got = append(got, e.Seq)
			}
		case <-timer.C:
			t.Fatalf("subscription got %v after the restart, want up to 10", got)
		}
	}
	t.Logf("%s: subscription got 10", time.Since(start))
	if !equal(got, want(1, 10)) {
		t.Errorf("subscription got %v, want 1..10", got)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done = consume(ctx, b, "survivor", survivor, rec.handle)
	rec.waitFor(t, 10)
	cancel()
	<-done
	t.Logf("%s: durable consumer handled 10", time.Since(start))
	if got := rec.snapshot(); !equal(got, want(1, 10)) {
		t.Fatalf("durable consumer applied %v, want 1..10", got)
	}
	// At least once: the server flushes consumer state to disk
	// asynchronously, so acks just before a SIGKILL may be lost and those
	// events delivered again; the idempotent handler applied each once.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	again := 0
	for s := range want(1, 10) {
		if rec.attempts[int64(s+1)] > 1 {
			again++
		}
	}
	t.Logf("events delivered again after the server's restart: %d of 10", again)
}

func TestConnectErrors(t *testing.T) {
	o := options(t, embedded)
	o.URL = "nats://127.0.0.1:1"
	if _, err := Connect(context.Background(), o); !errors.Is(err, errs.ErrUnavailable) {
		t.Errorf("Connect to a closed port = %v, want ErrUnavailable", err)
	}
	o = options(t, embedded)
	o.Subject = "bad subject"
	if _, err := Connect(context.Background(), o); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("Connect with subject %q = %v, want ErrInvalid", o.Subject, err)
	}
}

// A connection closed under a Bus made with New ends its subscriptions
// instead of leaving them waiting for events that cannot come.
func TestConnectionClosedEndsSubscriptions(t *testing.T) {
	o := options(t, embedded)
	nc, err := natsgo.Connect(o.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background(), nc, o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s := b.Subscribe(4)
	nc.Close()
	select {
	case _, ok := <-s.C:
		if ok {
			t.Fatal("an event arrived after the connection closed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the subscription is still open 30s after the connection closed")
	}
	if !errors.Is(s.Err(), bus.ErrClosed) {
		t.Errorf("Err() = %v, want bus.ErrClosed", s.Err())
	}
}
