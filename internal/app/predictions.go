package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailor-ml/tailor/internal/monitor"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/store"
)

// recorder is serving's Observer: it queues answered classifications
// without blocking the request (dropping, and counting, when the queue is
// full) and writes them to the store in batches, where the monitors and
// feedback read them.
type recorder struct {
	store   store.Store
	logger  *slog.Logger
	queue   chan store.Prediction
	flushed chan struct{} // signalled after each batch is stored
	dropped atomic.Int64
	stored  atomic.Int64

	mu      sync.Mutex
	waiters []chan struct{} // flush requests
	done    chan struct{}
	// watched maps a model name to the version its monitor watches and
	// that monitor's feature extractor: the features of that version's
	// answers are extracted while the input is in memory.
	watched map[string]watched
}

type watched struct {
	versionID string
	extract   *monitor.Extractor
}

// watch makes the recorder extract features of model's answers by
// version vid with profile p (replacing an earlier watch).
func (r *recorder) watch(model, vid string, p *monitor.Profile) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w, ok := r.watched[model]; ok && w.versionID == vid {
		return
	}
	r.watched[model] = watched{versionID: vid, extract: p.Extractor()}
}

// Recorder limits: the queue length, and how many predictions or how long
// a batch collects before it is written.
const (
	recorderQueue = 8192
	recorderBatch = 512
	recorderDelay = 100 * time.Millisecond
)

func newRecorder(st store.Store, logger *slog.Logger) *recorder {
	return &recorder{store: st, logger: logger, queue: make(chan store.Prediction, recorderQueue),
		flushed: make(chan struct{}, 1), done: make(chan struct{}), watched: map[string]watched{}}
}

var _ serve.Observer = (*recorder)(nil)

// Observe queues one classification; it never blocks.
func (r *recorder) Observe(o serve.Observation) {
	p := store.Prediction{RequestID: o.RequestID, Time: o.Time.UTC(), Model: o.Model, VersionID: o.VersionID, Variant: o.Variant,
		Label: o.Label, Truncated: o.Truncated, Probs: make(map[string]float64, len(o.Labels))}
	for i, l := range o.Labels {
		p.Probs[l] = o.Probs[i]
	}
	if o.Keep {
		p.Text = o.Input
	}
	r.mu.Lock()
	w, ok := r.watched[o.Model]
	r.mu.Unlock()
	if ok && w.versionID == o.VersionID {
		p.Features, _ = json.Marshal(w.extract.Extract(monitor.Request{Text: o.Input, Probs: o.Probs}))
	}
	select {
	case r.queue <- p:
	default:
		r.dropped.Add(1)
	}
}

// run writes batches until ctx ends, then writes what is queued.
func (r *recorder) run(ctx context.Context) {
	defer close(r.done)
	var batch []store.Prediction
	timer := time.NewTimer(recorderDelay)
	defer timer.Stop()
	// write drains the queue into the batch and stores it, so that a flush
	// waiter released here finds everything queued before it stored.
	write := func() {
		r.mu.Lock()
		waiters := r.waiters // those registered before the drain
		r.waiters = nil
		r.mu.Unlock()
		for drained := false; !drained; {
			select {
			case p := <-r.queue:
				batch = append(batch, p)
			default:
				drained = true
			}
		}
		if len(batch) > 0 {
			// A background context: a batch taken from the queue is written
			// even when the server is stopping.
			if err := r.store.PutPredictions(context.Background(), batch); err != nil {
				r.logger.Error("record predictions", "n", len(batch), "err", err)
			} else {
				r.stored.Add(int64(len(batch)))
			}
			batch = batch[:0]
			select {
			case r.flushed <- struct{}{}:
			default:
			}
		}
		for _, w := range waiters {
			close(w)
		}
	}
	for {
		select {
		case p := <-r.queue:
			batch = append(batch, p)
			if len(batch) >= recorderBatch {
				write()
			}
		case <-timer.C:
			write()
			timer.Reset(recorderDelay)
		case <-ctx.Done():
			write()
			return
		}
	}
}

// flush waits until what was queued before the call is stored (or ctx
// ends).
func (r *recorder) flush(ctx context.Context) {
	w := make(chan struct{})
	r.mu.Lock()
	r.waiters = append(r.waiters, w)
	r.mu.Unlock()
	select {
	case <-w:
	case <-r.done:
	case <-ctx.Done():
	}
}
