package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/tailor-ml/tailor/internal/adapter"
	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/recipe"
)

// stored is a registered model in memory: its base in a decoder and its
// adapter aligned to it.
type stored struct {
	base *basemodel.Loaded
	man  *adapter.Manifest
	dec  *model.Decoder
	ad   *model.Adapter
}

// loadStored builds the decoder for a model version from its base
// manifest and adapter manifest digests ("" for a model whose weights are
// its base: a full fine-tune).
func (j *job) loadStored(ctx context.Context, what string, base, adapterManifest string) (*stored, error) {
	b, err := basemodel.Load(ctx, j.blobs, base, j.dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	dec, err := model.NewDecoder(b.Manifest.Config, b.Weights, model.DecoderOptions{Workers: j.opts.Threads, GEMM: gemm.New(j.opts.Threads)})
	if err != nil {
		return nil, err
	}
	if adapterManifest == "" {
		// A full fine-tune: its weights are the base; no adapter.
		return &stored{base: b, man: &adapter.Manifest{}, dec: dec}, nil
	}
	a, err := adapter.Load(ctx, j.blobs, adapterManifest, j.dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	ad, err := dec.NewAdapter(model.AdapterSpec{Tensors: a.PEFT.Tensors, Scale: a.PEFT.Config.Scale(), Targets: a.PEFT.Config.TargetModules,
		Pooling: model.Pooling(a.Manifest.Pooling)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &stored{base: b, man: a.Manifest, dec: dec, ad: ad}, nil
}

// classify predicts every example of set with the stored model,
// re-tokenized with its own tokenizer and cut as its training cut.
func (s *stored) classify(r *recipe.Recipe, set []labeled) ([]eval.Prediction, error) {
	maxLen := maxTokens(r, s.base.Manifest.Config)
	out := make([]eval.Prediction, 0, len(set))
	batch := max(r.Train.BatchSize, 1)
	for lo := 0; lo < len(set); lo += batch {
		part := set[lo:min(lo+batch, len(set))]
		rows := make([]model.Row, len(part))
		for i, e := range part {
			rows[i] = model.Row{Adapter: s.ad, Tokens: truncate(s.base.Tokenizer.Encode(e.text, true), maxLen)}
		}
		cpu0, t0 := cpuSeconds(), time.Now()
		probs, err := s.dec.Classify(rows)
		if err != nil {
			return nil, err
		}
		lat, cpu := time.Since(t0)/time.Duration(len(part)), (cpuSeconds()-cpu0)/float64(len(part))
		for i, e := range part {
			out = append(out, classPrediction(e, probs[i], s.man.Labels, lat, cpu))
		}
	}
	return out, nil
}

// evaluate is an eval run: the registered model spec.Inputs.Model (the
// base in spec.Inputs.Base, trained by recipe r) on one split of
// spec.Inputs.Dataset, compared with the champion when the spec names
// one, under r's gates. Its result is the report.
func (j *job) evaluate(ctx context.Context, r *recipe.Recipe) error {
	in := j.spec.Inputs
	if in.Base.Manifest == "" {
		return errs.Invalid("worker: eval run %s names no base", j.spec.RunID)
	}
	m, err := j.loadStored(ctx, "model "+in.Model.Name, in.Base.Manifest, in.Model.Manifest)
	if err != nil {
		return err
	}
	j.base = &loaded{manifest: m.base.Manifest, weights: m.base.Weights, tok: m.base.Tokenizer}
	split := in.Split
	maxLen := maxTokens(r, m.base.Manifest.Config)
	var labels []string
	if r.Task == recipe.TaskClassify {
		labels = m.man.Labels
	}
	set, _, err := j.loadData(ctx, r, m.base.Tokenizer, split, labels, maxLen)
	if err != nil {
		return err
	}
	if len(set) == 0 {
		return errs.Invalid("dataset %s: split %q has no records to evaluate on", in.Dataset.ID, split)
	}
	j.logf("evaluating %s on %s@%s split %s (%d examples)", in.Model.Name, in.Dataset.Name, short(in.Dataset.ID), split, len(set))
	var cand, champ []eval.Prediction
	var forget *eval.ForgettingInput
	switch r.Task {
	case recipe.TaskClassify:
		if cand, err = m.classify(r, set); err != nil {
			return err
		}
		if in.Champion.Manifest != "" && in.Champion.ID != in.Model.ID {
			if champ, err = j.championPredictions(ctx, r, set); err != nil {
				return err
			}
		}
		if r.Incremental != nil && in.Init.Manifest != "" && in.Forgetting.Manifest != "" {
			predict := func(set []labeled) ([]eval.Prediction, error) { return m.classify(r, set) }
			if forget, err = j.forgetting(ctx, r, m.base.Tokenizer, labels, maxLen, predict); err != nil {
				return err
			}
		}
	case recipe.TaskSFT:
		if cand, err = j.generateWith(r, m.dec, m.ad, m.base.Manifest.Config, m.base.Tokenizer, set); err != nil {
			return err
		}
		set = set[:len(cand)]
	default:
		return errs.Invalid("worker: eval run: task %s has no evaluation", r.Task)
	}
	metrics, err := j.report(ctx, r, split, nil, set, cand, champ, forget)
	if err != nil {
		return err
	}
	metrics["model"], metrics["model_version_id"] = in.Model.Name, in.Model.ID
	report, _ := metrics["report"].(string)
	return j.result(0, report, metrics)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
