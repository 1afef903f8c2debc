package worker

import (
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/recipe"
)

// Generation evaluation limits: the first maxGenerateEval examples of the
// eval split, in order, each answer at most maxNewTokens tokens.
const (
	maxGenerateEval = 200
	maxNewTokens    = 256
)

// generatePredictions answers the eval prompts with greedy decoding (KV
// cache, batched) on the trained model: the base plus the trained adapter,
// or the fully trained weights.
func (j *job) generatePredictions(r *recipe.Recipe, m *model.Model, base *loaded, set []labeled) ([]eval.Prediction, error) {
	cfg := base.manifest.Config
	tok := base.tok
	weights := base.weights
	if r.Method.Kind == "full" {
		weights = m.Weights()
	}
	dec, err := model.NewDecoder(cfg, weights, model.DecoderOptions{Workers: j.opts.Threads, GEMM: gemm.New(j.opts.Threads)})
	if err != nil {
		return nil, err
	}
	var ad *model.Adapter
	if l := r.Method.LoRA; l != nil && r.Method.Kind == "lora" {
		tensors := map[string]engine.Tensor{}
		for _, p := range m.Params() {
			tensors[p.Name] = engine.Tensor{Shape: p.Shape, Data: p.Data}
		}
		if ad, err = dec.NewAdapter(model.AdapterSpec{Tensors: tensors, Scale: l.Alpha / float64(l.Rank), Targets: l.Targets}); err != nil {
			return nil, err
		}
	}
	return j.generateWith(r, dec, ad, cfg, tok, set)
}

// generateWith answers the eval prompts of set (at most maxGenerateEval)
// greedily with dec and adapter ad (nil: the decoder's own weights).
func (j *job) generateWith(r *recipe.Recipe, dec *model.Decoder, ad *model.Adapter, cfg engine.Config, tok *tokenizer.Tokenizer, set []labeled) ([]eval.Prediction, error) {
	if len(set) > maxGenerateEval {
		set = set[:maxGenerateEval]
	}
	maxNew := 1
	for _, s := range set {
		maxNew = max(maxNew, len(tok.Encode(s.label, false))+1)
	}
	maxLen := maxTokens(r, cfg)
	maxNew = min(maxNew, maxNewTokens, maxLen/2)
	eos := tok.EOS()
	out := make([]eval.Prediction, 0, len(set))
	batch := max(r.Train.BatchSize, 1)
	for lo := 0; lo < len(set); lo += batch {
		part := set[lo:min(lo+batch, len(set))]
		rows := make([]model.Row, len(part))
		for i, s := range part {
			p := tok.Encode(s.text, true)
			if keep := maxLen - maxNew; len(p) > keep {
				p = p[len(p)-keep:]
			}
			rows[i] = model.Row{Adapter: ad, Tokens: p}
		}
		cpu0, t0 := cpuSeconds(), time.Now()
		gen, err := dec.Greedy(rows, maxNew)
		if err != nil {
			return nil, err
		}
		lat, cpu := time.Since(t0)/time.Duration(len(part)), (cpuSeconds()-cpu0)/float64(len(part))
		for i, s := range part {
			ids := gen[i]
			for k, id := range ids {
				if id == eos {
					ids = ids[:k]
					break
				}
			}
			out = append(out, eval.Prediction{ID: s.id, Gold: s.label, Output: strings.TrimSpace(tok.Decode(ids, true)),
				Latency: lat, CPUSeconds: cpu, Fields: s.fields})
		}
	}
	return out, nil
}
