package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/peft"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/recipe"
)

// championPredictions loads the champion (its own base and adapter) and
// predicts the same eval examples, re-tokenized with the champion's
// tokenizer. No champion: nil.
func (j *job) championPredictions(ctx context.Context, r *recipe.Recipe, set []labeled) ([]eval.Prediction, error) {
	ch := j.spec.Inputs.Champion
	if ch.Manifest == "" {
		return nil, nil
	}
	m, tok, am, err := j.loadAdapterModel(ctx, j.spec.Inputs.ChampionBase.Manifest, ch.Manifest)
	if err != nil {
		return nil, fmt.Errorf("champion %s: %w", ch.Name, err)
	}
	index := map[string]int{}
	for i, l := range am.Labels {
		index[l] = i
	}
	retok := make([]labeled, len(set))
	for i, s := range set {
		s.ex.Tokens = truncate(tok.Encode(s.text, true), maxTokens(r, m.Config()))
		s.ex.Label = index[s.label]
		retok[i] = s
	}
	j.logf("comparing with champion %s (%s)", ch.Name, ch.ID)
	return predictClassify(m, retok, am.Labels, r.Train.BatchSize)
}

// loadAdapterModel builds base + stored adapter, ready for inference.
func (j *job) loadAdapterModel(ctx context.Context, baseManifest, adapterManifest string) (*model.Model, *tokenizer.Tokenizer, *AdapterManifest, error) {
	var bm basemodel.Manifest
	if err := j.readJSONBlob(ctx, baseManifest, &bm); err != nil {
		return nil, nil, nil, err
	}
	var am AdapterManifest
	if err := j.readJSONBlob(ctx, adapterManifest, &am); err != nil {
		return nil, nil, nil, err
	}
	dir := filepath.Join(j.dir, "champion")
	if err := basemodel.Materialize(ctx, j.blobs, &bm, filepath.Join(dir, "base")); err != nil {
		return nil, nil, nil, err
	}
	files := make([]basemodel.File, len(am.Files))
	for i, f := range am.Files {
		files[i] = basemodel.File{Name: f.Name, Digest: f.Digest, Size: f.Size}
	}
	adir := filepath.Join(dir, "adapter")
	if err := basemodel.Materialize(ctx, j.blobs, &basemodel.Manifest{Name: "adapter", Files: files}, adir); err != nil {
		return nil, nil, nil, err
	}
	a, err := peft.Read(adir)
	if err != nil {
		return nil, nil, nil, err
	}
	w, err := safetensors.ReadDir(filepath.Join(dir, "base"))
	if err != nil {
		return nil, nil, nil, err
	}
	tok, err := tokenizer.LoadDir(filepath.Join(dir, "base"))
	if err != nil {
		return nil, nil, nil, err
	}
	opts := model.Options{Method: model.LoRA, Workers: j.opts.Threads, GEMM: gemm.New(j.opts.Threads),
		LoRA: model.LoRAOptions{Rank: a.Config.R, Alpha: a.Config.LoraAlpha, Targets: a.Config.TargetModules}}
	if len(am.Labels) > 0 {
		opts.Method = model.Head
		opts.Head = model.HeadOptions{NumLabels: len(am.Labels), Pooling: model.Pooling(am.Pooling)}
	}
	m, err := model.New(bm.Config, w, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := loadAdapterInto(m, a.Tensors); err != nil {
		return nil, nil, nil, err
	}
	_ = os.RemoveAll(dir)
	return m, tok, &am, nil
}
