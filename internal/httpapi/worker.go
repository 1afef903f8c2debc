package httpapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
)

// Workers serves the routes of remote training workers (run.Remote): a
// worker in a Kubernetes Job fetches its run's spec and posts its
// messages with the run-scoped credential the server minted for its
// attempt. These routes speak the worker protocol of internal/run, not
// api/: they are for `tailor worker train --api`, not for clients.
type Workers interface {
	// Authenticate checks the Authorization header against run's open
	// attempt and returns the attempt's number.
	Authenticate(header, run string) (int, error)
	Spec(run string, attempt int) (run.Spec, error)
	Deliver(ctx context.Context, run string, attempt int, b run.Batch) (run.Ack, error)
}

// maxWorkerBatch bounds a posted batch of worker messages (a local
// worker's line may be 8 MiB).
const maxWorkerBatch = 16 << 20

type workerAttemptKey struct{}

func (s *server) workerRoutes(mux *router) {
	mux.Handle("GET /v1/runs/{id}/worker/spec", s.handle(func(r *http.Request) (any, error) {
		return s.opts.Workers.Spec(r.PathValue("id"), workerAttempt(r.Context()))
	}))
	mux.Handle("POST /v1/runs/{id}/worker/messages", s.handle(func(r *http.Request) (any, error) {
		var b run.Batch
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxWorkerBatch))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			return nil, errs.Invalid("%s %s: request body: %v", r.Method, r.URL.Path, err)
		}
		return s.opts.Workers.Deliver(r.Context(), r.PathValue("id"), workerAttempt(r.Context()), b)
	}))
}

// guardWorker authenticates a worker route's caller by the run-scoped
// credential of the run in its path; user tokens are refused. The change
// it causes is attributed to the worker (auth.WorkerActor).
func (s *server) guardWorker(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Workers == nil {
			s.writeError(w, r, errs.NotFound("%s %s: this server runs no remote workers (start it with --executor kubernetes)", r.Method, r.URL.Path))
			return
		}
		id := r.PathValue("id")
		attempt, err := s.opts.Workers.Authenticate(r.Header.Get("Authorization"), id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		ctx := store.WithActor(r.Context(), auth.WorkerActor(id, attempt))
		h.ServeHTTP(w, r.WithContext(context.WithValue(ctx, workerAttemptKey{}, attempt)))
	})
}

func workerAttempt(ctx context.Context) int {
	a, _ := ctx.Value(workerAttemptKey{}).(int)
	return a
}
