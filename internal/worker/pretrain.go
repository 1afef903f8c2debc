package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/seedmodel"
)

// endOfText separates documents in a from-scratch tokenizer's training data
// and ends every pretraining example.
const endOfText = "<|endoftext|>"

// pretrain trains a causal LM on a text dataset: from scratch (recipe
// model + tokenizer sections) or continuing from a base. The result is a
// base-model manifest, so the output can be imported as a base version.
func (j *job) pretrain(ctx context.Context, r *recipe.Recipe) error {
	var dm data.Manifest
	if err := j.readJSONBlob(ctx, j.spec.Inputs.Dataset.Manifest, &dm); err != nil {
		return fmt.Errorf("read dataset manifest: %w", err)
	}
	if dm.Task != data.TaskText {
		return errs.Invalid("recipe %s: pretrain needs a text dataset (import with --task text), but %s is %s", r.Name, dm.ID, dm.Task)
	}
	texts := func(split string) iter.Seq2[string, error] {
		return func(yield func(string, error) bool) {
			stop := fmt.Errorf("stop")
			err := data.ReadRecords(ctx, j.blobs, &dm, split, func(rec data.Record) error {
				if !yield(rec.Text, nil) {
					return stop
				}
				return nil
			})
			if err != nil && err != stop {
				yield("", err)
			}
		}
	}
	cfg, tok, weights, err := j.pretrainStart(ctx, r, texts(r.Data.Split))
	if err != nil {
		return err
	}
	eos, ok := tok.TokenToID(endOfText)
	if !ok {
		eos = tok.EOS()
	}
	encode := func(split string) (examples, error) {
		var out examples
		for text, err := range texts(split) {
			if err != nil {
				return nil, err
			}
			ids := tok.Encode(text, false)
			if eos >= 0 {
				ids = append(ids, eos)
			}
			if len(ids) > 1 {
				out = append(out, engine.Example{Tokens: ids, Label: -1})
			}
		}
		return out, nil
	}
	trainSet, err := encode(r.Data.Split)
	if err != nil {
		return err
	}
	if len(trainSet) == 0 {
		return errs.Invalid("dataset %s: split %q has no text to train on", dm.ID, r.Data.Split)
	}
	opts := modelOptions(r, 0, j.opts.Threads)
	m, err := model.New(cfg, weights, opts)
	if err != nil {
		return fmt.Errorf("build model: %w", err)
	}
	res, err := j.train(ctx, r, m, trainSet)
	if err != nil {
		return err
	}
	metrics := map[string]any{"steps": res.Step, "final_loss": res.Loss, "train_documents": len(trainSet), "tokens": res.Tokens,
		"elapsed_s": res.Elapsed.Seconds(), "tokens_per_s": float64(res.Tokens) / math.Max(res.Elapsed.Seconds(), 1e-9),
		"params": paramCount(m.Weights()), "corpus": dm.ID}
	heldOut, err := encode(r.Data.EvalSplit)
	if err != nil {
		return err
	}
	if ppl, n, err := perplexity(m, heldOut, r.Train.MaxSeqLen, r.Train.BatchSize, maxEvalTokens); err != nil {
		return err
	} else if n > 0 {
		metrics["eval_split"], metrics["eval_tokens"], metrics["eval_perplexity"] = r.Data.EvalSplit, n, ppl
	}
	if opts.Method == model.LoRA {
		digest, err := j.writeAdapter(ctx, r, m, j.base, nil)
		if err != nil {
			return err
		}
		return j.result(res.Step, digest, metrics)
	}
	digest, err := j.writeModel(ctx, r, cfg, tok, m.Weights())
	if err != nil {
		return err
	}
	return j.result(res.Step, digest, metrics)
}

// result emits the run's result: the output digest and its metrics. A
// metric that is not a finite number is left out: JSON cannot carry it,
// and it means "unknown" (a run resumed from its last checkpoint runs no
// step, so its final loss is NaN).
func (j *job) result(step int, digest string, metrics map[string]any) error {
	for k, v := range metrics {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			delete(metrics, k)
		}
	}
	raw, err := json.Marshal(metrics)
	if err != nil {
		return err
	}
	j.emit(run.Message{Type: run.MsgResult, Step: int64(step), Digest: digest, Metrics: raw, FLOPs: j.flopsSoFar()})
	return nil
}

// pretrainStart returns the config, tokenizer and initial weights: the
// base's, or fresh ones (a tokenizer trained on the text, random weights).
func (j *job) pretrainStart(ctx context.Context, r *recipe.Recipe, texts iter.Seq2[string, error]) (engine.Config, *tokenizer.Tokenizer, map[string]engine.Tensor, error) {
	if r.Base != nil {
		base, err := j.loadBase(ctx)
		if err != nil {
			return engine.Config{}, nil, nil, err
		}
		j.base = base
		return base.manifest.Config, base.tok, base.weights, nil
	}
	mc := r.Model
	if mc == nil || r.Tokenizer == nil || r.Tokenizer.Train == nil {
		return engine.Config{}, nil, nil, errs.Invalid("recipe %s: pretraining from scratch needs model and tokenizer.train sections", r.Name)
	}
	var readErr error
	corpus := func(yield func(string) bool) {
		for t, err := range texts {
			if err != nil {
				readErr = err
				return
			}
			if !yield(t) {
				return
			}
		}
	}
	tok, err := tokenizer.Train(corpus, tokenizer.TrainOptions{VocabSize: r.Tokenizer.Train.VocabSize,
		MinFrequency: r.Tokenizer.Train.MinFrequency, SpecialTokens: []string{endOfText}})
	if err == nil {
		err = readErr
	}
	if err != nil {
		return engine.Config{}, nil, nil, fmt.Errorf("train tokenizer: %w", err)
	}
	cfg := engine.Config{Arch: mc.Arch, VocabSize: mc.VocabSize, Hidden: mc.HiddenSize, Intermediate: mc.IntermediateSize,
		Layers: mc.NumHiddenLayers, Heads: mc.NumAttentionHeads, KVHeads: mc.NumKeyValueHeads, MaxPositions: mc.MaxPositionEmbeddings,
		RopeTheta: mc.RopeTheta, NormEps: mc.RMSNormEps, TieEmbeddings: mc.TieWordEmbeddings, Activation: "silu",
		BOSTokenID: -1, EOSTokenID: -1, TorchDtype: "float32"}
	if cfg.Heads > 0 {
		cfg.HeadDim = cfg.Hidden / cfg.Heads
	}
	if id, ok := tok.TokenToID(endOfText); ok {
		cfg.EOSTokenID = int(id)
	}
	if tok.VocabSize() > cfg.VocabSize {
		return engine.Config{}, nil, nil, errs.Invalid("recipe %s: tokenizer has %d tokens but model.vocab_size is %d", r.Name, tok.VocabSize(), cfg.VocabSize)
	}
	// #nosec G115 -- recipe checks seed >= 0, so it converts exactly
	w, err := model.RandomWeights(cfg, uint64(r.Seed))
	if err != nil {
		return engine.Config{}, nil, nil, err
	}
	return cfg, tok, w, nil
}

// writeModel stores a full Hugging Face folder through basemodel.Import, so
// the result is a validated, fingerprinted base-model manifest.
func (j *job) writeModel(ctx context.Context, r *recipe.Recipe, cfg engine.Config, tok *tokenizer.Tokenizer, w map[string]engine.Tensor) (string, error) {
	tj, err := tok.MarshalJSON()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(j.dir, "model")
	if err := seedmodel.WriteFolder(dir, cfg, tj, w); err != nil {
		return "", fmt.Errorf("write model folder: %w", err)
	}
	if j.base != nil {
		if err := j.copyBaseFiles(ctx, dir, j.base.manifest); err != nil {
			return "", err
		}
	}
	src, err := basemodel.NewDirSource(dir)
	if err != nil {
		return "", err
	}
	defer src.Close()
	m, err := basemodel.Import(ctx, src, basemodel.ImportOptions{Name: r.Name}, j.blobs)
	if err != nil {
		return "", fmt.Errorf("store trained model: %w", err)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	d, _, err := j.blobs.Put(ctx, bytes.NewReader(raw))
	return d, err
}

// copyBaseFiles copies into dir the files of the base a model was trained
// from that training does not rewrite (tokenizer_config.json with its chat
// template, generation_config.json, …), so the trained model keeps them.
func (j *job) copyBaseFiles(ctx context.Context, dir string, m *basemodel.Manifest) error {
	for _, f := range m.Files {
		if rewritten(f.Name) {
			continue
		}
		if err := j.copyBlob(ctx, f.Digest, filepath.Join(dir, filepath.Base(f.Name))); err != nil {
			return fmt.Errorf("copy %s of base %s: %w", f.Name, m.Name, err)
		}
	}
	return nil
}

// rewritten reports whether writeModel writes the file itself.
func rewritten(name string) bool {
	return name == "config.json" || name == "tokenizer.json" || strings.HasSuffix(name, ".safetensors") ||
		strings.HasSuffix(name, ".safetensors.index.json")
}

func (j *job) copyBlob(ctx context.Context, digest, path string) error {
	rc, err := j.blobs.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	// #nosec G304 -- path is a file name from a stored manifest, cut to its base name, in the run's own work folder
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func paramCount(w map[string]engine.Tensor) int64 {
	var n int64
	for _, t := range w {
		n += int64(len(t.Data))
	}
	return n
}

// maxEvalTokens bounds the held-out perplexity evaluation: the first
// examples of the split, in order, up to this many predicted tokens.
const maxEvalTokens = 65536

// perplexity is exp of the mean next-token loss over the first examples (up
// to limit predicted tokens), each cut to maxLen tokens, summed in a fixed
// order in float64.
func perplexity(m *model.Model, set examples, maxLen, batch, limit int) (float64, int, error) {
	if batch <= 0 {
		batch = 8
	}
	var nll float64
	n := 0
	for lo := 0; lo < len(set) && n < limit; lo += batch {
		rows := make([]engine.Example, 0, batch)
		for _, ex := range set[lo:min(lo+batch, len(set))] {
			if maxLen > 0 && len(ex.Tokens) > maxLen {
				ex.Tokens = ex.Tokens[:maxLen]
			}
			rows = append(rows, ex)
		}
		logits, err := m.Forward(engine.Batch{Examples: rows})
		if err != nil {
			return 0, 0, err
		}
		seq, vocab := logits.Shape[1], logits.Shape[2]
		for i, ex := range rows {
			for p := 0; p+1 < len(ex.Tokens); p++ {
				row := logits.Data[(i*seq+p)*vocab : (i*seq+p+1)*vocab]
				nll += logSumExp(row) - float64(row[ex.Tokens[p+1]])
				n++
			}
		}
	}
	if n == 0 {
		return 0, 0, nil
	}
	return math.Exp(nll / float64(n)), n, nil
}

func logSumExp(row []float32) float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(v))
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - mx)
	}
	return mx + math.Log(s)
}
