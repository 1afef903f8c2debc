package train

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Seeder is implemented by models that draw randomness (dropout). Before
// every micro-batch the trainer calls SetSeed with a value from its own RNG,
// so the model's randomness is reproducible and resumes exactly.
type Seeder interface {
	SetSeed(seed uint64)
}

// StepInfo reports one finished optimizer step.
type StepInfo struct {
	Step, TotalSteps int     // Step is 1-based
	Epoch            int     // epoch of the next micro-batch
	Loss             float64 // mean over the step's loss terms
	LR               float64 // learning rate used for this update
	GradNorm         float64 // global L2 norm before clipping
	Tokens           int     // tokens in the step's micro-batches
	TokensPerSec     float64 // over this Run call so far
	ETA              time.Duration
}

// Hooks are the caller's callbacks; nil fields are skipped. They run on
// Run's goroutine.
type Hooks struct {
	OnStep func(StepInfo)
	// OnCheckpoint receives the step just finished and a function that
	// writes the checkpoint (see WriteCheckpoint); the caller decides
	// where it goes. An error stops the run.
	OnCheckpoint func(step int, write func(io.Writer) error) error
}

// Result summarizes a Run call.
type Result struct {
	Step, TotalSteps int     // steps completed in all, and planned
	Loss             float64 // loss of the last step (NaN if none ran)
	Tokens           int64   // tokens processed by this call
	Elapsed          time.Duration
}

// Trainer drives a Trainable over a Dataset. Create it with New; it is not
// safe for concurrent use.
type Trainer struct {
	model   engine.Trainable
	params  []*engine.Param
	data    Dataset
	opts    Options
	logger  *slog.Logger
	opt     Optimizer
	planner *planner
	rng     *RNG
	step    int
	cursor  Cursor
	total   int
	cur     *plan // cached plan of cursor.Epoch
}

// New validates opts, applies defaults and prepares a trainer at step 0.
// It reads every example once to learn the lengths.
func New(model engine.Trainable, data Dataset, opts Options, logger *slog.Logger) (*Trainer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	params := model.Params()
	if err := checkParams(params); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	n := data.Len()
	if n <= 0 {
		return nil, errs.Invalid("train: dataset is empty")
	}
	lengths := make([]int, n)
	for i := range lengths {
		ex := data.Example(i)
		if ex.LossMask != nil && len(ex.LossMask) != len(ex.Tokens) {
			return nil, errs.Invalid("train: example %d: loss mask has %d entries for %d tokens", i, len(ex.LossMask), len(ex.Tokens))
		}
		lengths[i] = len(truncate(ex, o.MaxSeqLen).Tokens)
	}
	opt, err := newOptimizer(params, o)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	t := &Trainer{
		model: model, params: params, data: data, opts: o, logger: logger, opt: opt,
		planner: &planner{seed: o.Seed, batchSize: o.BatchSize, window: o.BucketWindow,
			packing: o.Packing, maxLen: o.MaxSeqLen, lengths: lengths},
		rng: NewRNG(DeriveSeed(o.Seed, modelStream)),
	}
	t.total = t.totalSteps()
	return t, nil
}

// modelStream is the RNG stream id for the seeds handed to a Seeder.
const modelStream = 2

// checkParams rejects duplicate names and gradients of the wrong size.
func checkParams(params []*engine.Param) error {
	seen := map[string]bool{}
	for i, p := range params {
		switch {
		case p.Name == "":
			return errs.Invalid("param %d has no name", i)
		case seen[p.Name]:
			return errs.Invalid("param %q appears twice", p.Name)
		case len(p.Data) != engine.Numel(p.Shape) || len(p.Grad) != len(p.Data):
			return errs.Invalid("param %q: shape %v, %d values, %d gradients", p.Name, p.Shape, len(p.Data), len(p.Grad))
		}
		seen[p.Name] = true
	}
	return nil
}

// totalSteps is Options.Steps, or in epoch mode the steps needed to read
// every micro-batch of Epochs epochs (the last step may be short).
func (t *Trainer) totalSteps() int {
	if t.opts.Steps > 0 {
		return t.opts.Steps
	}
	micro := 0
	for e := range t.opts.Epochs {
		micro += len(t.planner.plan(e).batches)
	}
	return (micro + t.opts.GradAccum - 1) / t.opts.GradAccum
}

// Options returns the options in effect, defaults applied.
func (t *Trainer) Options() Options { return t.opts }

// Step returns the number of optimizer steps completed.
func (t *Trainer) Step() int { return t.step }

// TotalSteps returns the planned number of optimizer steps.
func (t *Trainer) TotalSteps() int { return t.total }

// Cursor returns the data position of the next micro-batch.
func (t *Trainer) Cursor() Cursor { return t.cursor }

// Run trains until TotalSteps, ctx is done (checked at every step
// boundary; the error then wraps ctx.Err() and the trainer stays
// consistent, ready for WriteCheckpoint or another Run), a hook fails or a
// step fails. A failed step leaves weights, cursor and RNG as they were
// before it.
func (t *Trainer) Run(ctx context.Context, hooks Hooks) (Result, error) {
	clock := t.opts.Clock
	start := clock()
	res := Result{Step: t.step, TotalSteps: t.total, Loss: math.NaN()}
	first := t.step
	for t.step < t.total {
		if err := ctx.Err(); err != nil {
			res.Elapsed = clock().Sub(start)
			return res, fmt.Errorf("train: stopped after step %d: %w", t.step, err)
		}
		info, err := t.trainStep()
		if err != nil {
			res.Elapsed = clock().Sub(start)
			return res, fmt.Errorf("train: step %d: %w", t.step+1, err)
		}
		elapsed := clock().Sub(start)
		res.Step, res.Loss = t.step, info.Loss
		res.Tokens += int64(info.Tokens)
		if s := elapsed.Seconds(); s > 0 {
			info.TokensPerSec = float64(res.Tokens) / s
		}
		info.ETA = time.Duration(float64(elapsed) / float64(t.step-first) * float64(t.total-t.step))
		t.logger.Debug("train step", "step", info.Step, "total", info.TotalSteps, "loss", info.Loss,
			"lr", info.LR, "grad_norm", info.GradNorm, "tokens", info.Tokens)
		if hooks.OnStep != nil {
			hooks.OnStep(info)
		}
		if hooks.OnCheckpoint != nil && (t.step == t.total || (t.opts.CheckpointEvery > 0 && t.step%t.opts.CheckpointEvery == 0)) {
			if err := hooks.OnCheckpoint(t.step, t.WriteCheckpoint); err != nil {
				res.Elapsed = clock().Sub(start)
				return res, fmt.Errorf("train: checkpoint at step %d: %w", t.step, err)
			}
			t.logger.Info("train checkpoint", "step", t.step, "loss", info.Loss)
		}
	}
	res.Elapsed = clock().Sub(start)
	t.logger.Info("train done", "steps", t.step, "loss", res.Loss, "tokens", res.Tokens, "elapsed", res.Elapsed)
	return res, nil
}

// trainStep runs GradAccum micro-batches and one optimizer update. On error
// it restores the cursor and RNG; weights are untouched.
func (t *Trainer) trainStep() (StepInfo, error) {
	savedCursor, savedRNG := t.cursor, *t.rng
	fail := func(err error) (StepInfo, error) {
		t.cursor, *t.rng = savedCursor, savedRNG
		return StepInfo{}, err
	}
	zeroGrads(t.params)
	var lossSum float64
	count, tokens := 0, 0
	for m := 0; m < t.opts.GradAccum; m++ {
		at := t.cursor
		b, ok := t.nextBatch()
		if !ok {
			break
		}
		if s, ok := t.model.(Seeder); ok {
			s.SetSeed(t.rng.Uint64())
		}
		l, c, err := t.model.ForwardBackward(b)
		if err != nil {
			return fail(fmt.Errorf("micro-batch %d (epoch %d, batch %d): %w", m, at.Epoch, at.Batch, err))
		}
		lossSum += l
		count += c
		for _, ex := range b.Examples {
			tokens += len(ex.Tokens)
		}
	}
	info := StepInfo{Step: t.step + 1, TotalSteps: t.total, Tokens: tokens, Epoch: t.cursor.Epoch}
	if count == 0 {
		// Every loss term was masked out: nothing to learn from, no update.
		t.logger.Warn("train step has no loss terms; skipping update", "step", info.Step)
		t.step++
		return info, nil
	}
	info.Loss = lossSum / float64(count)
	if math.IsNaN(info.Loss) || math.IsInf(info.Loss, 0) {
		return fail(errs.Invalid("loss is %v; lower the learning rate or set grad_clip", info.Loss))
	}
	scaleGrads(t.params, 1/float64(count))
	info.GradNorm = ClipGradNorm(t.params, t.opts.GradClip)
	f, err := LRFactor(t.opts.Schedule, t.step, t.opts.WarmupSteps, t.total)
	if err != nil {
		return fail(err)
	}
	info.LR = t.opts.LR * f
	t.opt.Step(t.params, info.LR, t.step+1)
	t.step++
	return info, nil
}

// nextBatch returns the micro-batch at the cursor and advances it, moving
// to the next epoch at the end of one. In epoch mode it reports false once
// Epochs epochs are read.
func (t *Trainer) nextBatch() (engine.Batch, bool) {
	for {
		if t.opts.Steps == 0 && t.cursor.Epoch >= t.opts.Epochs {
			return engine.Batch{}, false
		}
		p := t.epochPlan(t.cursor.Epoch)
		if t.cursor.Batch < len(p.batches) {
			rows := p.batches[t.cursor.Batch]
			t.cursor.Batch++
			return materialize(t.data, rows, t.opts.MaxSeqLen, t.opts.Packing), true
		}
		t.cursor = Cursor{Epoch: t.cursor.Epoch + 1}
	}
}

// epochPlan returns epoch e's plan, cached.
func (t *Trainer) epochPlan(e int) *plan {
	if t.cur == nil || t.cur.epoch != e {
		t.cur = t.planner.plan(e)
	}
	return t.cur
}
