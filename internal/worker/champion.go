package worker

import (
	"context"
	"fmt"
	"time"

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
	m, err := j.loadStored(ctx, "champion "+ch.Name, j.spec.Inputs.ChampionBase.Manifest, ch.Manifest)
	if err != nil {
		return nil, err
	}
	j.logf("comparing with champion %s (%s)", ch.Name, ch.ID)
	preds, err := m.classify(r, set)
	if err != nil {
		return nil, fmt.Errorf("champion %s: %w", ch.Name, err)
	}
	return preds, nil
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
