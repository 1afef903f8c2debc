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
// full) and writes them to the store in batches, each prediction in the
// project of its request, where the monitors and feedback read them.
type recorder struct {
	store   store.Store
	logger  *slog.Logger
	queue   chan queued
	flushed chan struct{} // signalled after each batch is stored
	dropped atomic.Int64
	stored  atomic.Int64

	mu      sync.Mutex
	waiters []chan struct{} // flush requests
	done    chan struct{}
	// watched maps a model of a project to the version its monitor
	// watches and that monitor's feature extractor: the features of that
	// version's answers are extracted while the input is in memory.
	watched map[projectModel]watched
}

// queued is a prediction and the project of its request.
type queued struct {
	project string
	p       store.Prediction
}

// projectModel names a model within its project.
type projectModel struct{ project, model string }

type watched struct {
	versionID string
	extract   *monitor.Extractor
}

// watch makes the recorder extract features of the answers of model of
// project by version vid with profile p (replacing an earlier watch).
func (r *recorder) watch(project, model, vid string, p *monitor.Profile) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := projectModel{project, model}
	if w, ok := r.watched[key]; ok && w.versionID == vid {
		return
	}
	r.watched[key] = watched{versionID: vid, extract: p.Extractor()}
}

// Recorder limits: the queue length, and how many predictions or how long
// a batch collects before it is written.
const (
	recorderQueue = 8192
	recorderBatch = 512
	recorderDelay = 100 * time.Millisecond
)

func newRecorder(st store.Store, logger *slog.Logger) *recorder {
	return &recorder{store: st, logger: logger, queue: make(chan queued, recorderQueue),
		flushed: make(chan struct{}, 1), done: make(chan struct{}), watched: map[projectModel]watched{}}
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
	project := o.Scope
	if project == "" {
		project = store.DefaultProject
	}
	r.mu.Lock()
	w, ok := r.watched[projectModel{project, o.Model}]
	r.mu.Unlock()
	if ok && w.versionID == o.VersionID {
		p.Features, _ = json.Marshal(w.extract.Extract(monitor.Request{Text: o.Input, Probs: o.Probs}))
	}
	select {
	case r.queue <- queued{project, p}:
	default:
		r.dropped.Add(1)
	}
}

// run writes batches until ctx ends, then writes what is queued.
func (r *recorder) run(ctx context.Context) {
	defer close(r.done)
	var batch []queued
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
			r.store1(batch)
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

// store1 writes one batch, one PutPredictions per project in the order
// the projects first appear, with a background context: a batch taken from
// the queue is written even when the server is stopping.
func (r *recorder) store1(batch []queued) {
	var order []string
	by := map[string][]store.Prediction{}
	for _, q := range batch {
		if _, ok := by[q.project]; !ok {
			order = append(order, q.project)
		}
		by[q.project] = append(by[q.project], q.p)
	}
	for _, project := range order {
		ps := by[project]
		if err := r.store.PutPredictions(store.WithProject(context.Background(), project), ps); err != nil {
			r.logger.Error("record predictions", "project", project, "n", len(ps), "err", err)
		} else {
			r.stored.Add(int64(len(ps)))
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
