package run

import (
	"context"
	"errors"
	"fmt"

	"github.com/tailor-ml/tailor/internal/store"
)

// ErrWorkerLost marks an attempt whose worker went away without reporting
// a result or a failure of its own: its Kubernetes Job or pod deleted by
// someone else, the pod evicted, its node lost. A Process's Wait wraps it;
// the scheduler then re-queues the run (up to Options.MaxAttempts
// attempts), and the next attempt resumes from the last recorded
// checkpoint. A worker that reported its own failure, or exited non-zero
// on this machine, fails the run instead.
var ErrWorkerLost = errors.New("worker lost")

// requeueLost moves a run whose worker was lost back to queued, to be
// started again from its last checkpoint.
func (s *Scheduler) requeueLost(ctx context.Context, id string, attempt int, cause error) error {
	r, err := s.opts.Store.Run(ctx, id)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("attempt %d lost (%v); re-queued", attempt, cause)
	if r.Checkpoint != "" {
		msg = fmt.Sprintf("attempt %d lost (%v); re-queued to resume from the checkpoint at step %d", attempt, cause, r.Step)
	}
	s.opts.Logger.Warn("worker lost; run re-queued", "run", id, "attempt", attempt, "err", cause)
	return s.transition(ctx, id, store.RunRunning, store.RunQueued, store.RunUpdate{}, msg)
}
