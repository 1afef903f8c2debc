package worker

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/engine/train"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/meter"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/run"
)

// loaded is a materialized base model.
type loaded struct {
	manifest *basemodel.Manifest
	weights  map[string]engine.Tensor
	tok      *tokenizer.Tokenizer
}

func (j *job) loadBase(ctx context.Context) (*loaded, error) {
	b, err := basemodel.Load(ctx, j.blobs, j.spec.Inputs.Base.Manifest, j.dir)
	if err != nil {
		return nil, err
	}
	return &loaded{manifest: b.Manifest, weights: b.Weights, tok: b.Tokenizer}, nil
}

// examples is a train.Dataset over tokenized records.
type examples []engine.Example

func (e examples) Len() int                     { return len(e) }
func (e examples) Example(i int) engine.Example { return e[i] }

// loadData reads one split of the dataset version and tokenizes it. For
// classification, labels fixes the class order (nil: the dataset's labels,
// sorted).
//
// Examples are cut to maxLen tokens, the same way for training and
// evaluation: classification keeps the first tokens, SFT the prompt's end.
func (j *job) loadData(ctx context.Context, r *recipe.Recipe, tok *tokenizer.Tokenizer, split string, labels []string, maxLen int) ([]labeled, []string, error) {
	return j.loadDataFrom(ctx, j.spec.Inputs.Dataset.Manifest, r, tok, split, labels, maxLen)
}

// loadDataFrom is loadData on the dataset version whose manifest has the
// given digest.
func (j *job) loadDataFrom(ctx context.Context, manifest string, r *recipe.Recipe, tok *tokenizer.Tokenizer, split string, labels []string, maxLen int) ([]labeled, []string, error) {
	var m data.Manifest
	if err := j.readJSONBlob(ctx, manifest, &m); err != nil {
		return nil, nil, fmt.Errorf("read dataset manifest: %w", err)
	}
	if r.Task == recipe.TaskClassify && labels == nil {
		if m.Profile == nil || m.Profile.OtherLabels > 0 {
			return nil, nil, errs.Invalid("dataset %s: label set unknown or too large for a classification head", m.ID)
		}
		for l := range m.Profile.Labels {
			labels = append(labels, l)
		}
		slices.Sort(labels)
	}
	index := map[string]int{}
	for i, l := range labels {
		index[l] = i
	}
	var out []labeled
	err := data.ReadRecords(ctx, j.blobs, &m, split, func(rec data.Record) error {
		l := labeled{id: rec.ID, text: rec.Text, label: rec.Label, fields: stringFields(rec.Metadata)}
		switch r.Task {
		case recipe.TaskClassify:
			ids := truncate(tok.Encode(rec.Text, true), maxLen)
			if len(ids) == 0 {
				return nil
			}
			c, ok := index[rec.Label]
			if !ok {
				return errs.Invalid("dataset %s record %s: label %q is not one of the model's labels %v", m.ID, rec.ID, rec.Label, labels)
			}
			l.ex = engine.Example{Tokens: ids, Label: c}
		case recipe.TaskSFT:
			prompt, completion := rec.Prompt, rec.Completion
			if len(rec.Messages) > 0 {
				var err error
				if prompt, completion, err = chatPair(tok, rec.Messages); err != nil {
					return err
				}
			}
			l.text, l.label = prompt, completion
			l.ex = sftExample(tok, prompt, completion, maxLen)
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, labels, nil
}

// sftExample tokenizes prompt + completion + EOS with the loss on the
// completion only: position i predicts token i+1. Over maxLen, the
// completion is cut at its end and the prompt loses its beginning.
func sftExample(tok *tokenizer.Tokenizer, prompt, completion string, maxLen int) engine.Example {
	p := tok.Encode(prompt, true)
	c := tok.Encode(completion, false)
	if eos := tok.EOS(); eos >= 0 {
		c = append(c, eos)
	}
	if maxLen > 0 && len(p)+len(c) > maxLen {
		c = truncate(c, maxLen-1)
		p = p[len(p)-min(len(p), maxLen-len(c)):]
	}
	ids := append(append([]int32{}, p...), c...)
	mask := make([]bool, len(ids))
	for i := max(len(p)-1, 0); i < len(ids)-1; i++ {
		mask[i] = true
	}
	return engine.Example{Tokens: ids, LossMask: mask, Label: -1}
}

// truncate cuts ids to maxLen tokens (0: no limit).
func truncate(ids []int32, maxLen int) []int32 {
	if maxLen > 0 && len(ids) > maxLen {
		return ids[:maxLen]
	}
	return ids
}

// maxTokens is the longest example a model takes under recipe r.
func maxTokens(r *recipe.Recipe, cfg engine.Config) int {
	if r.Train.MaxSeqLen > 0 && (cfg.MaxPositions == 0 || r.Train.MaxSeqLen < cfg.MaxPositions) {
		return r.Train.MaxSeqLen
	}
	return cfg.MaxPositions
}

// stringFields keeps the string-valued metadata, for slicing reports.
func stringFields(md map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range md {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

func examplesOf(set []labeled) examples {
	out := make(examples, len(set))
	for i, l := range set {
		out[i] = l.ex
	}
	return out
}

// chatPair renders all but the last assistant turn as the prompt (with the
// chat template's generation prompt) and the last assistant turn as the
// completion.
func chatPair(tok *tokenizer.Tokenizer, msgs []data.Message) (string, string, error) {
	last := len(msgs) - 1
	if msgs[last].Role != "assistant" {
		return "", "", errs.Invalid("chat record: the last message must be the assistant's answer")
	}
	conv := make([]tokenizer.Message, last)
	for i, m := range msgs[:last] {
		conv[i] = tokenizer.Message{Role: m.Role, Content: m.Content}
	}
	prompt, err := tok.ApplyChat(conv, true)
	if err != nil {
		return "", "", err
	}
	return prompt, msgs[last].Content, nil
}

func modelOptions(r *recipe.Recipe, numLabels, threads int) model.Options {
	// #nosec G115 -- recipe checks seed >= 0, so it converts exactly
	// The GEMM is left to the model: it follows the recipe's precision
	// (bf16 computes in fp32 where the CPU lacks AVX512_BF16; the engine
	// version, part of the run key, says which).
	o := model.Options{Seed: uint64(r.Seed), Workers: threads, Precision: gemm.Precision(r.Train.Precision)}
	if r.Method.LoRA != nil {
		o.LoRA = model.LoRAOptions{Rank: r.Method.LoRA.Rank, Alpha: r.Method.LoRA.Alpha, Dropout: r.Method.LoRA.Dropout, Targets: r.Method.LoRA.Targets}
	}
	switch {
	case r.Task == recipe.TaskClassify:
		o.Method = model.Head
		o.Head = model.HeadOptions{NumLabels: numLabels, Pooling: model.Pooling(r.Method.Head.Pooling)}
		if r.Method.Kind == "head" {
			o.LoRA = model.LoRAOptions{}
		}
	case r.Method.Kind == "lora":
		o.Method = model.LoRA
	default:
		o.Method = model.Full
	}
	return o
}

func trainOptions(r *recipe.Recipe) train.Options {
	t := r.Train
	return train.Options{Steps: t.MaxSteps, Epochs: t.Epochs, BatchSize: t.BatchSize, GradAccum: t.GradAccum, LR: t.LearningRate,
		// #nosec G115 -- recipe checks seed >= 0, so it converts exactly
		Schedule: t.Schedule, WarmupSteps: t.WarmupSteps, WeightDecay: t.WeightDecay, GradClip: t.GradClip, Seed: uint64(r.Seed),
		MaxSeqLen: t.MaxSeqLen, Packing: t.Packing, CheckpointEvery: t.CheckpointEvery}
}

func (j *job) finetune(ctx context.Context, r *recipe.Recipe) error {
	base, err := j.loadBase(ctx)
	if err != nil {
		return err
	}
	j.base = base
	maxLen := maxTokens(r, base.manifest.Config)
	init, err := j.loadInit(ctx, r)
	if err != nil {
		return err
	}
	var labels []string
	if init != nil {
		labels = init.Manifest.Labels // the head's class order is the champion's
	}
	trainSet, labels, err := j.loadData(ctx, r, base.tok, r.Data.Split, labels, maxLen)
	if err != nil {
		return err
	}
	if len(trainSet) == 0 {
		return errs.Invalid("dataset %s: split %q has no records to train on", j.spec.Inputs.Dataset.ID, r.Data.Split)
	}
	newRecords := len(trainSet)
	if init != nil {
		if trainSet, err = j.withReplay(ctx, r, base, trainSet, labels, maxLen); err != nil {
			return err
		}
	}
	m, err := model.New(base.manifest.Config, base.weights, modelOptions(r, len(labels), j.opts.Threads))
	if err != nil {
		return fmt.Errorf("build model: %w", err)
	}
	if init != nil {
		if err := initFrom(m, init); err != nil {
			return fmt.Errorf("start from %s: %w", j.spec.Inputs.Init.Name, err)
		}
		j.logf("starting from %s (%s): %d new and %d replayed training records", j.spec.Inputs.Init.Name, j.spec.Inputs.Init.ID,
			newRecords, len(trainSet)-newRecords)
	}
	res, err := j.train(ctx, r, m, examplesOf(trainSet))
	if err != nil {
		return err
	}
	metrics := map[string]any{"steps": res.Step, "final_loss": res.Loss, "train_examples": len(trainSet),
		"tokens": res.Tokens, "elapsed_s": res.Elapsed.Seconds(), "tokens_per_s": float64(res.Tokens) / math.Max(res.Elapsed.Seconds(), 1e-9)}
	if init != nil {
		metrics["init"], metrics["new_examples"], metrics["replay_examples"] = j.spec.Inputs.Init.Name, newRecords, len(trainSet)-newRecords
	}
	rm, err := j.evalReport(ctx, r, m, base, trainSet, labels, maxLen, init != nil)
	if err != nil {
		return err
	}
	maps.Copy(metrics, rm)
	var digest string
	if r.Method.Kind == "full" {
		// Every weight changed: the result is a whole model (a base-model
		// manifest), which the server registers as a model version on a
		// base of its own.
		digest, err = j.writeModel(ctx, r, base.manifest.Config, base.tok, m.Weights())
	} else {
		digest, err = j.writeAdapter(ctx, r, m, base, labels)
	}
	if err != nil {
		return err
	}
	return j.result(res.Step, digest, metrics)
}

// evalReport evaluates the trained model m on the recipe's eval split
// (nothing when it has no records) and returns the report's metrics: for
// classify with the champion's predictions, baselines on trainSet and, for
// an incremental run, the forgetting gate.
func (j *job) evalReport(ctx context.Context, r *recipe.Recipe, m *model.Model, base *loaded, trainSet []labeled, labels []string,
	maxLen int, incremental bool) (map[string]any, error) {
	evalSet, _, err := j.loadData(ctx, r, base.tok, evalSplit(r), labels, maxLen)
	if err != nil {
		return nil, err
	}
	if len(evalSet) == 0 {
		j.logf("no eval report: split %q of dataset %s has no records, so the version this run registers cannot pass promotion gates; add records (for feedback, label more answers)",
			evalSplit(r), j.spec.Inputs.Dataset.Name)
		return nil, nil
	}
	if r.Task == recipe.TaskSFT {
		preds, err := j.generatePredictions(r, m, base, evalSet)
		if err != nil {
			return nil, err
		}
		return j.report(ctx, r, evalSplit(r), nil, evalSet[:len(preds)], preds, nil, nil)
	}
	cand, err := predictClassify(m, evalSet, labels, r.Train.BatchSize)
	if err != nil {
		return nil, err
	}
	champ, err := j.championPredictions(ctx, r, evalSet)
	if err != nil {
		return nil, err
	}
	var forget *eval.ForgettingInput
	if incremental {
		predict := func(set []labeled) ([]eval.Prediction, error) {
			return predictClassify(m, set, labels, r.Train.BatchSize)
		}
		if forget, err = j.forgetting(ctx, r, base.tok, labels, maxLen, predict); err != nil {
			return nil, err
		}
	}
	return j.report(ctx, r, evalSplit(r), trainSet, evalSet, cand, champ, forget)
}

// train runs the training loop over set, resuming from the spec's
// checkpoint when it names one.
func (j *job) train(ctx context.Context, r *recipe.Recipe, m *model.Model, set examples) (train.Result, error) {
	opts := trainOptions(r)
	tr, err := train.New(m, set, opts, j.opts.Logger)
	if err != nil {
		return train.Result{}, err
	}
	if r.Train.WarmupRatio > 0 && opts.WarmupSteps == 0 {
		// The warmup length depends on the planned steps, known only now.
		opts.WarmupSteps = int(math.Round(r.Train.WarmupRatio * float64(tr.TotalSteps())))
		if tr, err = train.New(m, set, opts, j.opts.Logger); err != nil {
			return train.Result{}, err
		}
	}
	if j.spec.Resume != "" {
		if err := j.resume(ctx, tr); err != nil {
			return train.Result{}, err
		}
	}
	j.countFLOPs(m)
	return tr.Run(ctx, j.hooks(ctx))
}

// countFLOPs sets the model sizes the FLOP count of each training step
// uses (meter.TrainFLOPs): all parameters (the base's, or the model's own
// when it has no base) and the trained ones.
func (j *job) countFLOPs(m *model.Model) {
	var trainable int64
	for _, p := range m.Params() {
		trainable += int64(len(p.Data))
	}
	j.params, j.trainable = trainable, trainable
	if j.base != nil {
		// LoRA and heads add a few parameters to the base; a full fine
		// tune trains the base's own.
		j.params = max(j.base.manifest.Params, trainable)
	}
}

func (j *job) resume(ctx context.Context, tr *train.Trainer) error {
	rc, err := j.blobs.Open(ctx, j.spec.Resume)
	if err != nil {
		return fmt.Errorf("open checkpoint %s: %w", j.spec.Resume, err)
	}
	defer rc.Close()
	if err := tr.Resume(rc); err != nil {
		return fmt.Errorf("resume from %s: %w", j.spec.Resume, err)
	}
	j.logf("resumed from checkpoint %s at step %d", j.spec.Resume, tr.Step())
	return nil
}

func (j *job) hooks(ctx context.Context) train.Hooks {
	var last time.Time
	return train.Hooks{
		OnStep: func(s train.StepInfo) {
			j.addFLOPs(meter.TrainFLOPs(j.params, j.trainable, int64(s.Tokens)))
			now := j.opts.Now()
			if s.Step != 1 && s.Step != s.TotalSteps && now.Sub(last) < j.opts.ProgressEvery {
				return
			}
			last = now
			j.emit(run.Message{Type: run.MsgProgress, Step: int64(s.Step), TotalSteps: int64(s.TotalSteps), Loss: s.Loss, LR: s.LR,
				TokensPerS: s.TokensPerSec, ETASeconds: s.ETA.Seconds(), FLOPs: j.flopsSoFar()})
		},
		OnCheckpoint: func(step int, write func(io.Writer) error) error {
			d, err := j.putFile(ctx, fmt.Sprintf("checkpoint-%d", step), write)
			if err != nil {
				return fmt.Errorf("store checkpoint at step %d: %w", step, err)
			}
			j.emit(run.Message{Type: run.MsgCheckpoint, Step: int64(step), Digest: d, FLOPs: j.flopsSoFar()})
			return nil
		},
	}
}
