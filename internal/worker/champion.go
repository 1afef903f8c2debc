package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/tailor-ml/tailor/internal/adapter"
	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/recipe"
)

// championPredictions loads the champion (its own base and adapter) and
// classifies the same eval examples, re-tokenized with the champion's
// tokenizer. No champion: nil.
func (j *job) championPredictions(ctx context.Context, r *recipe.Recipe, set []labeled) ([]eval.Prediction, error) {
	ch := j.spec.Inputs.Champion
	if ch.Manifest == "" {
		return nil, nil
	}
	b, err := basemodel.Load(ctx, j.blobs, j.spec.Inputs.ChampionBase.Manifest, j.dir)
	if err != nil {
		return nil, fmt.Errorf("champion %s: %w", ch.Name, err)
	}
	a, err := adapter.Load(ctx, j.blobs, ch.Manifest, j.dir)
	if err != nil {
		return nil, fmt.Errorf("champion %s: %w", ch.Name, err)
	}
	labels := a.Manifest.Labels
	dec, err := model.NewDecoder(b.Manifest.Config, b.Weights, model.DecoderOptions{Workers: j.opts.Threads, GEMM: gemm.New(j.opts.Threads)})
	if err != nil {
		return nil, err
	}
	ad, err := dec.NewAdapter(model.AdapterSpec{Tensors: a.PEFT.Tensors, Scale: a.PEFT.Config.Scale(), Targets: a.PEFT.Config.TargetModules,
		Pooling: model.Pooling(a.Manifest.Pooling)})
	if err != nil {
		return nil, fmt.Errorf("champion %s: %w", ch.Name, err)
	}
	maxLen := maxTokens(r, b.Manifest.Config)
	j.logf("comparing with champion %s (%s)", ch.Name, ch.ID)
	out := make([]eval.Prediction, 0, len(set))
	batch := max(r.Train.BatchSize, 1)
	for lo := 0; lo < len(set); lo += batch {
		part := set[lo:min(lo+batch, len(set))]
		rows := make([]model.Row, len(part))
		for i, s := range part {
			rows[i] = model.Row{Adapter: ad, Tokens: truncate(b.Tokenizer.Encode(s.text, true), maxLen)}
		}
		cpu0, t0 := cpuSeconds(), time.Now()
		probs, err := dec.Classify(rows)
		if err != nil {
			return nil, fmt.Errorf("champion %s: %w", ch.Name, err)
		}
		lat, cpu := time.Since(t0)/time.Duration(len(part)), (cpuSeconds()-cpu0)/float64(len(part))
		for i, s := range part {
			out = append(out, classPrediction(s, probs[i], labels, lat, cpu))
		}
	}
	return out, nil
}

// classPrediction turns one row of class probabilities into a prediction.
func classPrediction(s labeled, row []float32, labels []string, lat time.Duration, cpu float64) eval.Prediction {
	p := eval.Prediction{ID: s.id, Gold: s.label, Probs: map[string]float64{}, Latency: lat, CPUSeconds: cpu, Fields: s.fields}
	best := 0
	for c, v := range row {
		p.Probs[labels[c]] = float64(v)
		if v > row[best] {
			best = c
		}
	}
	p.Output = labels[best]
	return p
}
