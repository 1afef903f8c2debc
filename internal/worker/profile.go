package worker

import (
	"bytes"
	"context"
	"fmt"

	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/monitor"
	"github.com/tailor-ml/tailor/internal/recipe"
)

// profile is a profile run: the drift monitor's reference for a registered
// classifier (spec.Inputs.Model over spec.Inputs.Base, trained by recipe
// r), from its training dataset version (spec.Inputs.Dataset): the train
// split's texts and the model's outputs on the validation split. Its
// result is the monitor.Profile JSON.
func (j *job) profile(ctx context.Context, r *recipe.Recipe) error {
	in := j.spec.Inputs
	if r.Task != recipe.TaskClassify {
		return errs.Invalid("worker: profile run: recipe %s is a %s recipe; drift monitoring covers classifiers", r.Name, r.Task)
	}
	m, err := j.loadStored(ctx, "model "+in.Model.Name, in.Base.Manifest, in.Model.Manifest)
	if err != nil {
		return err
	}
	maxLen := maxTokens(r, m.base.Manifest.Config)
	train, _, err := j.loadData(ctx, r, m.base.Tokenizer, data.SplitTrain, m.man.Labels, maxLen)
	if err != nil {
		return err
	}
	val, _, err := j.loadData(ctx, r, m.base.Tokenizer, data.SplitValidation, m.man.Labels, maxLen)
	if err != nil {
		return err
	}
	if len(val) == 0 {
		return errs.Invalid("dataset %s has no validation records: the monitor's reference needs the model's outputs on them", in.Dataset.ID)
	}
	j.logf("profiling %s: %d training texts, %d validation texts", in.Model.Name, len(train), len(val))
	preds, err := m.classify(r, val)
	if err != nil {
		return err
	}
	texts := make([]string, len(train))
	for i, e := range train {
		texts[i] = e.text
	}
	samples := make([]monitor.Sample, len(val))
	for i, e := range val {
		probs := make([]float64, len(m.man.Labels))
		for k, l := range m.man.Labels {
			probs[k] = preds[i].Probs[l]
		}
		samples[i] = monitor.Sample{Text: e.text, Label: e.label, Probs: probs}
	}
	p, err := monitor.BuildProfile(m.man.Labels, texts, samples, monitor.ProfileOptions{})
	if err != nil {
		return fmt.Errorf("build profile: %w", err)
	}
	raw, err := p.Marshal()
	if err != nil {
		return err
	}
	digest, _, err := j.blobs.Put(ctx, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return j.result(0, digest, map[string]any{"profile": digest, "train_texts": len(train), "validation_texts": len(val),
		"reference_accuracy": p.Accuracy, "model_version_id": in.Model.ID})
}
