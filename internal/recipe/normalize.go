package recipe

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
)

// Normalize writes the canonical form of r: every field present (defaults
// filled by Parse), keys in a fixed order, strings double-quoted, numbers in
// Go's shortest round-trip form, LoRA targets in canonical module order. Two
// recipe texts that mean the same thing normalize to identical bytes, and
// Parse(Normalize()) gives back an equal recipe. The writer is ours, not the
// YAML library's, so recipe IDs do not move when that library changes.
func (r *Recipe) Normalize() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	w := &writer{}
	w.str(0, "name", r.Name)
	w.str(0, "description", r.Description)
	w.str(0, "task", string(r.Task))
	if r.Base != nil {
		w.str(0, "base", r.Base.String())
	}
	if m := r.Model; m != nil {
		w.writeModel(m)
	}
	if t := r.Tokenizer; t != nil {
		w.key(0, "tokenizer")
		if t.Train != nil {
			w.key(1, "train")
			w.int(2, "vocab_size", int64(t.Train.VocabSize))
			w.int(2, "min_frequency", int64(t.Train.MinFrequency))
		}
		if t.Base != nil {
			w.str(1, "base", t.Base.String())
		}
	}
	w.writeData(r.Data)
	w.writeMethod(r.Method)
	w.writeTrain(r.Train)
	w.int(0, "seed", r.Seed)
	w.writeEval(r.Eval)
	w.key(0, "budget")
	w.int(1, "max_steps", int64(r.Budget.MaxSteps))
	w.str(1, "max_duration", r.Budget.MaxDuration.String())
	w.float(1, "max_cost_usd", r.Budget.MaxCostUSD)
	w.float(1, "max_energy_kwh", r.Budget.MaxEnergyKWh)
	w.str(0, "region", r.Region)
	if x := r.Incremental; x != nil {
		w.writeIncremental(x)
	}
	if x := r.Resources; x != nil {
		w.writeResources(x)
	}
	return w.buf.Bytes(), nil
}

// ID is the hex sha256 of the normalized recipe.
func (r *Recipe) ID() (string, error) {
	b, err := r.Normalize()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// canonicalTargets orders LoRA targets as KnownModules does.
func canonicalTargets(ts []string) []string {
	out := slices.Clone(ts)
	slices.SortStableFunc(out, func(a, b string) int {
		return slices.Index(knownModules, a) - slices.Index(knownModules, b)
	})
	return out
}

func (w *writer) writeModel(m *ModelConfig) {
	w.key(0, "model")
	w.str(1, "arch", m.Arch)
	w.int(1, "vocab_size", int64(m.VocabSize))
	w.int(1, "hidden_size", int64(m.HiddenSize))
	w.int(1, "intermediate_size", int64(m.IntermediateSize))
	w.int(1, "num_hidden_layers", int64(m.NumHiddenLayers))
	w.int(1, "num_attention_heads", int64(m.NumAttentionHeads))
	w.int(1, "num_key_value_heads", int64(m.NumKeyValueHeads))
	w.int(1, "max_position_embeddings", int64(m.MaxPositionEmbeddings))
	w.float(1, "rope_theta", m.RopeTheta)
	w.float(1, "rms_norm_eps", m.RMSNormEps)
	w.bool(1, "tie_word_embeddings", m.TieWordEmbeddings)
}

func (w *writer) writeData(x Data) {
	w.key(0, "data")
	w.str(1, "dataset", x.Dataset)
	w.str(1, "version", x.Version)
	w.str(1, "split", x.Split)
	w.str(1, "eval_split", x.EvalSplit)
	for _, f := range []struct{ k, v string }{
		{"text_field", x.TextField}, {"label_field", x.LabelField},
		{"prompt_field", x.PromptField}, {"completion_field", x.CompletionField},
	} {
		if f.v != "" {
			w.str(1, f.k, f.v)
		}
	}
}

func (w *writer) writeMethod(m Method) {
	w.key(0, "method")
	w.str(1, "kind", m.Kind)
	if l := m.LoRA; l != nil {
		w.key(1, "lora")
		w.int(2, "rank", int64(l.Rank))
		w.float(2, "alpha", l.Alpha)
		w.float(2, "dropout", l.Dropout)
		w.strList(2, "targets", canonicalTargets(l.Targets))
	}
	if h := m.Head; h != nil {
		w.key(1, "head")
		w.str(2, "pooling", h.Pooling)
	}
}

func (w *writer) writeTrain(t Train) {
	w.key(0, "train")
	w.int(1, "epochs", int64(t.Epochs))
	w.int(1, "max_steps", int64(t.MaxSteps))
	w.int(1, "batch_size", int64(t.BatchSize))
	w.int(1, "grad_accum", int64(t.GradAccum))
	w.float(1, "learning_rate", t.LearningRate)
	w.str(1, "schedule", t.Schedule)
	w.int(1, "warmup_steps", int64(t.WarmupSteps))
	w.float(1, "warmup_ratio", t.WarmupRatio)
	w.float(1, "weight_decay", t.WeightDecay)
	w.float(1, "grad_clip", t.GradClip)
	w.int(1, "max_seq_len", int64(t.MaxSeqLen))
	w.int(1, "checkpoint_every", int64(t.CheckpointEvery))
	w.bool(1, "packing", t.Packing)
	// Written only when not the default, so that recipes from before the
	// field keep their IDs; a bf16 recipe hashes differently from fp32.
	if t.Precision != DefaultPrecision {
		w.str(1, "precision", t.Precision)
	}
}

func (w *writer) writeEval(e Eval) {
	w.key(0, "eval")
	if len(e.Suite) == 0 {
		w.raw(1, "suite", "[]")
	} else {
		w.key(1, "suite")
		for _, s := range e.Suite {
			w.item()
			w.str(3, "name", s.Name)
			w.str(3, "metric", s.Metric)
			w.str(3, "split", s.Split)
		}
	}
	if len(e.Gates) == 0 {
		w.raw(1, "gates", "[]")
		return
	}
	w.key(1, "gates")
	for _, g := range e.Gates {
		w.item()
		w.str(3, "metric", g.Metric)
		if g.NotWorseThan != "" {
			w.str(3, "not_worse_than", g.NotWorseThan)
			w.float(3, "epsilon", g.Epsilon)
			if g.Confidence != 0 { // written only when set, so older recipes keep their ids
				w.float(3, "confidence", g.Confidence)
			}
			continue
		}
		w.str(3, "op", g.Op)
		w.float(3, "value", g.Value)
	}
}

// writer emits the canonical YAML subset: two-space indents, one key per
// line, block lists. A pending "- " from item replaces the next indent.
type writer struct {
	buf     bytes.Buffer
	pending bool
}

func (w *writer) indent(level int) {
	if w.pending {
		w.buf.WriteString(strings.Repeat("  ", level-1))
		w.buf.WriteString("- ")
		w.pending = false
		return
	}
	w.buf.WriteString(strings.Repeat("  ", level))
}

// item makes the next key start a new list element.
func (w *writer) item() { w.pending = true }

func (w *writer) raw(level int, k, v string) {
	w.indent(level)
	w.buf.WriteString(k)
	w.buf.WriteString(": ")
	w.buf.WriteString(v)
	w.buf.WriteByte('\n')
}

func (w *writer) key(level int, k string) {
	w.indent(level)
	w.buf.WriteString(k)
	w.buf.WriteString(":\n")
}

func (w *writer) str(level int, k, v string)       { w.raw(level, k, strconv.Quote(v)) }
func (w *writer) int(level int, k string, v int64) { w.raw(level, k, strconv.FormatInt(v, 10)) }
func (w *writer) bool(level int, k string, v bool) { w.raw(level, k, strconv.FormatBool(v)) }

// float writes the shortest decimal that parses back to the same float64;
// negative zero is written as 0. check() has rejected NaN and infinities.
func (w *writer) float(level int, k string, v float64) {
	if v == 0 {
		v = 0
	}
	w.raw(level, k, strconv.FormatFloat(v, 'g', -1, 64))
}

func (w *writer) strList(level int, k string, vs []string) {
	if len(vs) == 0 {
		w.raw(level, k, "[]")
		return
	}
	w.key(level, k)
	for _, v := range vs {
		w.indent(level + 1)
		w.buf.WriteString("- ")
		w.buf.WriteString(strconv.Quote(v))
		w.buf.WriteByte('\n')
	}
}

func (w *writer) writeIncremental(x *Incremental) {
	w.key(0, "incremental")
	w.str(1, "from", x.From)
	w.key(1, "replay")
	w.str(2, "dataset", x.Replay.Dataset)
	w.float(2, "ratio", x.Replay.Ratio)
	f := x.Forgetting
	w.key(1, "forgetting")
	w.str(2, "dataset", f.Dataset)
	w.str(2, "split", f.Split)
	w.str(2, "metric", f.Metric)
	w.float(2, "epsilon", f.Epsilon)
	w.float(2, "confidence", f.Confidence)
	w.int(2, "resamples", int64(f.Resamples))
}
