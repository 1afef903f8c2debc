package auth

import (
	"crypto/rand"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// workerPrefix starts a worker credential's text: "tlw_" + id + "_" +
// secret, the same shape as a user token, so neither can pass for the
// other.
const workerPrefix = "tlw_"

// WorkerCredentials are the run-scoped credentials of remote training
// workers (a Kubernetes Job's pod): the server mints one when it starts an
// attempt, the worker sends it to fetch that run's spec and post that
// run's messages, and nothing else accepts it. It is revoked when the
// attempt ends and expires after TTL in any case. Credentials live in this
// process's memory only (their SHA-256, never the secret): a server that
// restarts re-queues its running runs and mints new ones.
type WorkerCredentials struct {
	rand io.Reader
	now  func() time.Time
	ttl  time.Duration

	mu     sync.Mutex
	grants map[string]workerGrant // by credential id
}

type workerGrant struct {
	hash    string
	run     string
	attempt int
	expires time.Time
}

// WorkerOptions configure WorkerCredentials.
type WorkerOptions struct {
	// TTL bounds a credential's life even if its attempt never ends
	// (default 7 days).
	TTL time.Duration
	// Rand draws secrets (default crypto/rand); Now is the clock.
	Rand io.Reader
	Now  func() time.Time
}

// NewWorkerCredentials returns an empty set of worker credentials.
func NewWorkerCredentials(o WorkerOptions) *WorkerCredentials {
	if o.TTL <= 0 {
		o.TTL = 7 * 24 * time.Hour
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &WorkerCredentials{rand: o.Rand, now: o.Now, ttl: o.TTL, grants: map[string]workerGrant{}}
}

// Mint returns the text of a new credential for attempt of run. The text
// is shown once, to the executor that hands it to the worker.
func (w *WorkerCredentials) Mint(run string, attempt int) (string, error) {
	sec, err := NewSecret(w.rand)
	if err != nil {
		return "", err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.grants[sec.ID] = workerGrant{hash: sec.Hash(), run: run, attempt: attempt, expires: w.now().Add(w.ttl)}
	return workerPrefix + sec.ID + "_" + sec.secret, nil
}

// Verify checks that text is a live credential for run and returns the
// attempt it was minted for. Errors are errs.ErrUnauthenticated (unknown,
// malformed, expired, revoked) or errs.ErrForbidden (another run's); they
// name the credential by id at most.
func (w *WorkerCredentials) Verify(text, run string) (int, error) {
	rest, ok := strings.CutPrefix(text, workerPrefix)
	if !ok {
		return 0, errs.Unauthenticated("malformed worker credential: want tlw_<id>_<secret>, as the server hands it to the worker in TAILOR_TOKEN")
	}
	sec, err := ParseSecret(tokenPrefix + rest)
	if err != nil {
		return 0, errs.Unauthenticated("malformed worker credential: want tlw_<id>_<secret>")
	}
	w.mu.Lock()
	g, ok := w.grants[sec.ID]
	if ok && !w.now().Before(g.expires) {
		delete(w.grants, sec.ID)
		ok = false
	}
	w.mu.Unlock()
	if !ok || !sec.Matches(g.hash) {
		return 0, errs.Unauthenticated("worker credential %s%s is not known to this server (its attempt ended, it expired, or the server restarted)", workerPrefix, sec.ID)
	}
	if g.run != run {
		return 0, errs.Forbidden("worker credential %s%s is for another run, not %s", workerPrefix, sec.ID, run)
	}
	return g.attempt, nil
}

// Revoke ends every credential of attempt of run.
func (w *WorkerCredentials) Revoke(run string, attempt int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, g := range w.grants {
		if g.run == run && g.attempt == attempt {
			delete(w.grants, id)
		}
	}
}

// WorkerActor names a worker in the request context (store.WithActor).
func WorkerActor(run string, attempt int) string {
	return "worker:" + run + "/" + strconv.Itoa(attempt)
}
