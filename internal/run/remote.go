package run

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Credentials mint and check the run-scoped credentials of remote workers
// (internal/auth.WorkerCredentials).
type Credentials interface {
	Mint(run string, attempt int) (string, error)
	// Verify returns the attempt text was minted for, or an error when it
	// is not a live credential of run.
	Verify(text, run string) (int, error)
	Revoke(run string, attempt int)
}

// Remote is the server's side of workers that run elsewhere (a
// Kubernetes Job's pod) and reach the server over its API: a remote
// executor opens an attempt here when it starts one, and hands the
// worker the attempt's credential; the worker fetches the attempt's Spec
// (GET /v1/runs/{id}/worker/spec) and posts its Messages (POST
// /v1/runs/{id}/worker/messages), which arrive on the attempt's
// Messages channel as a local worker's stdout lines would.
//
// Attempts live in this process's memory: the worker's API address must
// reach the server that runs the scheduler.
type Remote struct {
	creds  Credentials
	logger *slog.Logger

	mu   sync.Mutex
	open map[string]*RemoteAttempt // by run id
}

// NewRemote returns a Remote that guards its attempts with creds.
func NewRemote(creds Credentials, logger *slog.Logger) *Remote {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Remote{creds: creds, logger: logger, open: map[string]*RemoteAttempt{}}
}

// RemoteAttempt is one open attempt of a remote worker.
type RemoteAttempt struct {
	remote *Remote
	spec   Spec
	msgs   chan Message

	mu      sync.Mutex
	closed  bool
	next    int64  // sequence number of the next message expected
	failure string // the worker's own MsgError, if it sent one
}

// Batch is what a remote worker posts: its messages numbered from Seq (the
// first message of a worker is 0). A batch sent again after a lost answer
// repeats numbers the server already has; those are skipped.
type Batch struct {
	Seq      int64     `json:"seq"`
	Messages []Message `json:"messages"`
}

// Ack answers a Batch: Next is the sequence number the server expects next.
type Ack struct {
	Next int64 `json:"next"`
}

// Open registers the attempt spec.Attempt of spec.RunID and mints its
// credential. An attempt of the same run still open is closed first: its
// worker's credential stops working.
func (r *Remote) Open(spec Spec) (*RemoteAttempt, string, error) {
	token, err := r.creds.Mint(spec.RunID, spec.Attempt)
	if err != nil {
		return nil, "", err
	}
	a := &RemoteAttempt{remote: r, spec: spec, msgs: make(chan Message, 64)}
	r.mu.Lock()
	old := r.open[spec.RunID]
	r.open[spec.RunID] = a
	r.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return a, token, nil
}

// Authenticate checks an Authorization header ("Bearer tlw_…") against
// the open attempt of run and returns the attempt's number.
func (r *Remote) Authenticate(header, run string) (int, error) {
	scheme, text, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return 0, errs.Unauthenticated("Authorization header: want Bearer <worker credential>")
	}
	attempt, err := r.creds.Verify(strings.TrimSpace(text), run)
	if err != nil {
		return 0, err
	}
	if _, err := r.attempt(run, attempt); err != nil {
		return 0, err
	}
	return attempt, nil
}

func (r *Remote) attempt(run string, attempt int) (*RemoteAttempt, error) {
	r.mu.Lock()
	a := r.open[run]
	r.mu.Unlock()
	if a == nil || a.spec.Attempt != attempt {
		return nil, errs.Conflict("run %s attempt %d is over; this worker should stop", run, attempt)
	}
	return a, nil
}

// Spec returns the spec of the open attempt of run.
func (r *Remote) Spec(run string, attempt int) (Spec, error) {
	a, err := r.attempt(run, attempt)
	if err != nil {
		return Spec{}, err
	}
	return a.spec, nil
}

// Deliver hands a batch of the worker's messages to the attempt. It waits
// while the scheduler is behind, and fails with a conflict once the
// attempt is over.
func (r *Remote) Deliver(ctx context.Context, run string, attempt int, b Batch) (Ack, error) {
	a, err := r.attempt(run, attempt)
	if err != nil {
		return Ack{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return Ack{}, errs.Conflict("run %s attempt %d is over; this worker should stop", run, attempt)
	}
	if b.Seq > a.next {
		return Ack{Next: a.next}, errs.Invalid("run %s attempt %d: batch starts at message %d but the server has %d; send from %d", run, attempt, b.Seq, a.next, a.next)
	}
	for i, m := range b.Messages {
		seq := b.Seq + int64(i)
		if seq < a.next {
			continue // sent before; its answer was lost
		}
		if m.Type == MsgError {
			a.failure = m.Message
		} else {
			select {
			case a.msgs <- m:
			case <-ctx.Done():
				return Ack{Next: a.next}, ctx.Err()
			}
		}
		a.next = seq + 1
	}
	return Ack{Next: a.next}, nil
}

// Spec is the attempt's spec.
func (a *RemoteAttempt) Spec() Spec { return a.spec }

// Messages delivers the worker's messages but MsgError; it is closed by
// Close.
func (a *RemoteAttempt) Messages() <-chan Message { return a.msgs }

// Failure is the worker's own report of its failure ("" when it sent
// none).
func (a *RemoteAttempt) Failure() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failure
}

// Close ends the attempt: its credential is revoked, later posts fail, and
// Messages is closed. It is safe to call more than once.
func (a *RemoteAttempt) Close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	close(a.msgs)
	a.mu.Unlock()
	r := a.remote
	r.creds.Revoke(a.spec.RunID, a.spec.Attempt)
	r.mu.Lock()
	if r.open[a.spec.RunID] == a {
		delete(r.open, a.spec.RunID)
	}
	r.mu.Unlock()
}
