package serve

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tailor-ml/tailor/internal/errs"
)

// errQueueFull is what submit returns when the queue is at its bound; the
// handlers answer 429 with Retry-After.
var errQueueFull = errs.Unavailable("the server is at capacity: the request queue is full; retry after the Retry-After delay")

// classifyJob is one classify request.
type classifyJob struct {
	ctx  context.Context
	rows []ClassifyRow
	done chan classifyResult // buffered 1
}

type classifyResult struct {
	probs [][]float32
	err   error
}

// genJob is one generation request and its running state.
type genJob struct {
	ctx       context.Context
	model     *Loaded
	prompt    []int32
	maxTokens int
	stop      []string
	deadline  time.Time
	events    chan genEvent // buffered maxTokens+2: the loop never blocks on it

	seq     uint64
	tokens  []int32 // prompt + generated
	gen     []int32
	sampler *sampler
	emitted int // bytes of the decoded text already sent
}

// genEvent is a piece of generated text, or the end.
type genEvent struct {
	delta            string
	done             bool
	finish           string // "stop" or "length"
	promptTokens     int
	completionTokens int
	err              error
}

// scheduler runs one base's batches: continuous batching of generation
// (waiting requests join the running batch between steps, finished ones
// leave) and classify rows batched across adapters.
type scheduler struct {
	eng      Engine
	maxBatch int
	maxQueue int
	metrics  *metrics
	seqs     *atomic.Uint64

	in      chan any // *classifyJob or *genJob; cap maxQueue
	waiting atomic.Int64
	running atomic.Int64
	stop    chan struct{}
	wg      sync.WaitGroup
}

func newScheduler(eng Engine, maxBatch, maxQueue int, m *metrics, seqs *atomic.Uint64) *scheduler {
	s := &scheduler{eng: eng, maxBatch: maxBatch, maxQueue: maxQueue, metrics: m, seqs: seqs,
		in: make(chan any, maxQueue), stop: make(chan struct{})}
	s.wg.Add(1)
	go s.loop()
	return s
}

// submit queues a job, or returns errQueueFull.
func (s *scheduler) submit(job any) error {
	for {
		n := s.waiting.Load()
		if n >= int64(s.maxQueue) {
			return errQueueFull
		}
		if s.waiting.CompareAndSwap(n, n+1) {
			break
		}
	}
	s.in <- job // never blocks: at most maxQueue jobs are waiting
	return nil
}

func (s *scheduler) close() {
	close(s.stop)
	s.wg.Wait()
}

func (s *scheduler) loop() {
	defer s.wg.Done()
	var pendCls []*classifyJob
	var pendGen, running []*genJob
	take := func(j any) {
		switch j := j.(type) {
		case *classifyJob:
			pendCls = append(pendCls, j)
		case *genJob:
			pendGen = append(pendGen, j)
		}
	}
	for {
		if len(pendCls)+len(pendGen)+len(running) == 0 {
			select {
			case j := <-s.in:
				take(j)
			case <-s.stop:
				return
			}
		}
	drain:
		for {
			select {
			case j := <-s.in:
				take(j)
			default:
				break drain
			}
		}
		select {
		case <-s.stop:
			s.abort(pendCls, pendGen, running)
			return
		default:
		}
		var batch []*classifyJob
		batch, pendCls = s.takeClassify(pendCls)
		for len(running) < s.maxBatch && len(pendGen) > 0 {
			j := pendGen[0]
			pendGen = pendGen[1:]
			s.waiting.Add(-1)
			if err := j.ctx.Err(); err != nil {
				j.events <- genEvent{done: true, err: err}
				continue
			}
			j.seq = s.seqs.Add(1)
			j.tokens = slices.Clone(j.prompt)
			running = append(running, j)
		}
		s.running.Store(int64(len(running)))
		if len(batch) > 0 {
			s.classify(batch)
		}
		if len(running) > 0 {
			running = s.step(running)
			s.running.Store(int64(len(running)))
		}
	}
}

// allDone returns a context that ends once every one of ctxs has: an
// engine call for a batch is abandoned only when nobody waits for it.
// Call cancel when the call returns.
func allDone(ctxs []context.Context) (ctx context.Context, cancel func()) {
	ctx, cancelAll := context.WithCancel(context.Background())
	var left atomic.Int64
	left.Store(int64(len(ctxs)))
	stops := make([]func() bool, len(ctxs))
	for i, c := range ctxs {
		stops[i] = context.AfterFunc(c, func() {
			if left.Add(-1) == 0 {
				cancelAll()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancelAll()
	}
}

// takeClassify takes whole jobs, at least one, up to maxBatch rows.
func (s *scheduler) takeClassify(pend []*classifyJob) (batch, rest []*classifyJob) {
	rows := 0
	for len(pend) > 0 && (len(batch) == 0 || rows+len(pend[0].rows) <= s.maxBatch) {
		j := pend[0]
		pend = pend[1:]
		s.waiting.Add(-1)
		if err := j.ctx.Err(); err != nil {
			j.done <- classifyResult{err: err}
			continue
		}
		batch = append(batch, j)
		rows += len(j.rows)
	}
	return batch, pend
}

func (s *scheduler) abort(cls []*classifyJob, gen, running []*genJob) {
	err := errs.Unavailable("the server is shutting down")
	for _, j := range cls {
		j.done <- classifyResult{err: err}
	}
	for _, j := range append(gen, running...) {
		j.events <- genEvent{done: true, err: err}
	}
}

func (s *scheduler) classify(batch []*classifyJob) {
	var rows []ClassifyRow
	ctxs := make([]context.Context, len(batch))
	for i, j := range batch {
		rows = append(rows, j.rows...)
		ctxs[i] = j.ctx
	}
	ctx, cancel := allDone(ctxs)
	probs, err := s.eng.Classify(ctx, rows)
	cancel()
	if err != nil && len(batch) > 1 {
		// One bad job must not fail the others: run each alone.
		for _, j := range batch {
			p, err := s.eng.Classify(j.ctx, j.rows)
			j.done <- classifyResult{probs: p, err: err}
		}
		return
	}
	off := 0
	for _, j := range batch {
		if err != nil {
			j.done <- classifyResult{err: err}
			continue
		}
		j.done <- classifyResult{probs: probs[off : off+len(j.rows)]}
		off += len(j.rows)
	}
}

// step runs one generation step over the running batch and returns the
// sequences that go on.
func (s *scheduler) step(running []*genJob) []*genJob {
	live := running[:0:0]
	now := time.Now()
	for _, j := range running {
		switch {
		case j.ctx.Err() != nil: // client gone: free the slot
			s.retire(j, "", j.ctx.Err())
		case !j.deadline.IsZero() && now.After(j.deadline):
			s.retire(j, "length", nil)
		default:
			live = append(live, j)
		}
	}
	if len(live) == 0 {
		return nil
	}
	rows := make([]StepRow, len(live))
	ctxs := make([]context.Context, len(live))
	for i, j := range live {
		rows[i] = StepRow{Seq: j.seq, Model: j.model, Tokens: j.tokens}
		ctxs[i] = j.ctx
	}
	ctx, cancel := allDone(ctxs)
	logits, err := s.eng.Logits(ctx, rows)
	cancel()
	if err != nil {
		logits = make([][]float32, len(live))
		for i := range live {
			var one [][]float32
			if one, err = s.eng.Logits(live[i].ctx, rows[i:i+1]); err != nil {
				s.retire(live[i], "", err)
				live[i] = nil
				continue
			}
			logits[i] = one[0]
		}
	}
	next := live[:0:0]
	for i, j := range live {
		if j == nil {
			continue
		}
		if finish := s.advance(j, logits[i]); finish != "" {
			s.retire(j, finish, nil)
			continue
		}
		next = append(next, j)
	}
	s.metrics.generated(len(live))
	return next
}

// advance samples one token for j and sends the text that is safe to send.
// It returns the finish reason when j is done.
func (s *scheduler) advance(j *genJob, logits []float32) string {
	tok := j.sampler.next(logits)
	if slices.Contains(j.model.EOS, tok) {
		return "stop"
	}
	j.tokens = append(j.tokens, tok)
	j.gen = append(j.gen, tok)
	text := j.model.Tokenizer.Decode(j.gen, true)
	for _, st := range j.stop {
		if k := strings.Index(text, st); k >= 0 && k+len(st) > j.emitted {
			if k > j.emitted {
				j.events <- genEvent{delta: text[j.emitted:k]}
			}
			j.emitted = len(text) // nothing after the stop sequence is sent
			return "stop"
		}
	}
	if len(j.gen) >= j.maxTokens || len(j.tokens) >= j.model.MaxPositions {
		return "length"
	}
	safe := len(text) - holdBack(text, j.stop)
	if safe > j.emitted {
		j.events <- genEvent{delta: text[j.emitted:safe]}
		j.emitted = safe
	}
	return ""
}

// holdBack is how many trailing bytes of text must wait: an incomplete
// UTF-8 character or a prefix of a stop sequence.
func holdBack(text string, stop []string) int {
	n := 0
	for i := len(text) - 1; i >= 0 && i >= len(text)-utf8.UTFMax; i-- {
		if utf8.RuneStart(text[i]) {
			if !utf8.FullRuneInString(text[i:]) {
				n = len(text) - i
			}
			break
		}
	}
	for _, st := range stop {
		for k := min(len(st)-1, len(text)); k > n; k-- {
			if strings.HasSuffix(text, st[:k]) {
				n = k
				break
			}
		}
	}
	return n
}

// retire ends j: the rest of its text, then the end event.
func (s *scheduler) retire(j *genJob, finish string, err error) {
	s.eng.Release(j.seq)
	if err == nil && finish != "stop" {
		if text := j.model.Tokenizer.Decode(j.gen, true); len(text) > j.emitted {
			j.events <- genEvent{delta: text[j.emitted:]}
			j.emitted = len(text)
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = errs.Unavailable("request ended before generation finished: %w", err)
	}
	j.events <- genEvent{done: true, finish: finish, err: err, promptTokens: len(j.prompt), completionTokens: len(j.gen)}
}
