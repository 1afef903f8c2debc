package recipe

import (
	"gopkg.in/yaml.v3"
)

// recipe decodes the top-level mapping into r. It checks types and shape
// only; ranges and cross-field rules are in check.go.
func (d *decoder) recipe(n *yaml.Node, r *Recipe) error {
	return d.mapping(n, "", []field{
		{"name", d.setStr(&r.Name)},
		{"description", d.setStr(&r.Description)},
		{"task", func(n *yaml.Node, path string) error {
			s, err := d.str(n, path)
			r.Task = Task(s)
			return err
		}},
		{"base", d.setSelector(&r.Base)},
		{"model", func(n *yaml.Node, path string) error {
			r.Model = &ModelConfig{}
			return d.model(n, path, r.Model)
		}},
		{"tokenizer", func(n *yaml.Node, path string) error {
			r.Tokenizer = &Tokenizer{}
			return d.tokenizer(n, path, r.Tokenizer)
		}},
		{"data", func(n *yaml.Node, path string) error { return d.data(n, path, &r.Data) }},
		{"method", func(n *yaml.Node, path string) error { return d.method(n, path, &r.Method) }},
		{"train", func(n *yaml.Node, path string) error { return d.train(n, path, &r.Train) }},
		{"seed", func(n *yaml.Node, path string) (err error) {
			r.Seed, err = d.int(n, path)
			return err
		}},
		{"eval", func(n *yaml.Node, path string) error { return d.eval(n, path, &r.Eval) }},
		{"budget", func(n *yaml.Node, path string) error { return d.budget(n, path, &r.Budget) }},
		{"region", d.setStr(&r.Region)},
		{"incremental", func(n *yaml.Node, path string) error {
			r.Incremental = &Incremental{}
			return d.incremental(n, path, r.Incremental)
		}},
		{"resources", func(n *yaml.Node, path string) error {
			r.Resources = &Resources{}
			return d.resources(n, path, r.Resources)
		}},
	})
}

func (d *decoder) incremental(n *yaml.Node, path string, x *Incremental) error {
	return d.mapping(n, path, []field{
		{"from", d.setStr(&x.From)},
		{"replay", func(n *yaml.Node, path string) error {
			return d.mapping(n, path, []field{
				{"dataset", d.setStr(&x.Replay.Dataset)},
				{"ratio", d.setFloat(&x.Replay.Ratio)},
			})
		}},
		{"forgetting", func(n *yaml.Node, path string) error {
			f := &x.Forgetting
			return d.mapping(n, path, []field{
				{"dataset", d.setStr(&f.Dataset)},
				{"split", d.setStr(&f.Split)},
				{"metric", d.setStr(&f.Metric)},
				{"epsilon", d.setFloat(&f.Epsilon)},
				{"confidence", d.setFloat(&f.Confidence)},
				{"resamples", d.setInt(&f.Resamples)},
			})
		}},
	})
}

func (d *decoder) setSelector(dst **Selector) func(*yaml.Node, string) error {
	return func(n *yaml.Node, path string) error {
		s, err := d.str(n, path)
		if err != nil {
			return err
		}
		sel, err := ParseSelector(s)
		if err != nil {
			return d.errNode(n, path, "%s", err.Error())
		}
		*dst = &sel
		return nil
	}
}

func (d *decoder) model(n *yaml.Node, path string, m *ModelConfig) error {
	return d.mapping(n, path, []field{
		{"arch", d.setStr(&m.Arch)},
		{"vocab_size", d.setInt(&m.VocabSize)},
		{"hidden_size", d.setInt(&m.HiddenSize)},
		{"intermediate_size", d.setInt(&m.IntermediateSize)},
		{"num_hidden_layers", d.setInt(&m.NumHiddenLayers)},
		{"num_attention_heads", d.setInt(&m.NumAttentionHeads)},
		{"num_key_value_heads", d.setInt(&m.NumKeyValueHeads)},
		{"max_position_embeddings", d.setInt(&m.MaxPositionEmbeddings)},
		{"rope_theta", d.setFloat(&m.RopeTheta)},
		{"rms_norm_eps", d.setFloat(&m.RMSNormEps)},
		{"tie_word_embeddings", d.setBool(&m.TieWordEmbeddings)},
	})
}

func (d *decoder) tokenizer(n *yaml.Node, path string, t *Tokenizer) error {
	err := d.mapping(n, path, []field{
		{"train", func(n *yaml.Node, path string) error {
			t.Train = &TokenizerTrain{}
			return d.mapping(n, path, []field{
				{"vocab_size", d.setInt(&t.Train.VocabSize)},
				{"min_frequency", d.setInt(&t.Train.MinFrequency)},
			})
		}},
		{"base", d.setSelector(&t.Base)},
	})
	if err != nil {
		return err
	}
	if (t.Train == nil) == (t.Base == nil) {
		return d.errNode(n, path, "set exactly one of train or base")
	}
	return nil
}

func (d *decoder) data(n *yaml.Node, path string, x *Data) error {
	return d.mapping(n, path, []field{
		{"dataset", d.setStr(&x.Dataset)},
		{"version", d.setStr(&x.Version)},
		{"split", d.setStr(&x.Split)},
		{"eval_split", d.setStr(&x.EvalSplit)},
		{"text_field", d.setStr(&x.TextField)},
		{"label_field", d.setStr(&x.LabelField)},
		{"prompt_field", d.setStr(&x.PromptField)},
		{"completion_field", d.setStr(&x.CompletionField)},
	})
}

func (d *decoder) method(n *yaml.Node, path string, m *Method) error {
	return d.mapping(n, path, []field{
		{"kind", d.setStr(&m.Kind)},
		{"lora", func(n *yaml.Node, path string) error {
			m.LoRA = &LoRA{}
			return d.mapping(n, path, []field{
				{"rank", d.setInt(&m.LoRA.Rank)},
				{"alpha", d.setFloat(&m.LoRA.Alpha)},
				{"dropout", d.setFloat(&m.LoRA.Dropout)},
				{"targets", d.setStrList(&m.LoRA.Targets)},
			})
		}},
		{"head", func(n *yaml.Node, path string) error {
			m.Head = &Head{}
			return d.mapping(n, path, []field{
				{"pooling", d.setStr(&m.Head.Pooling)},
			})
		}},
	})
}

func (d *decoder) train(n *yaml.Node, path string, t *Train) error {
	return d.mapping(n, path, []field{
		{"epochs", d.setInt(&t.Epochs)},
		{"max_steps", d.setInt(&t.MaxSteps)},
		{"batch_size", d.setInt(&t.BatchSize)},
		{"grad_accum", d.setInt(&t.GradAccum)},
		{"learning_rate", d.setFloat(&t.LearningRate)},
		{"schedule", d.setStr(&t.Schedule)},
		{"warmup_steps", d.setInt(&t.WarmupSteps)},
		{"warmup_ratio", d.setFloat(&t.WarmupRatio)},
		{"weight_decay", d.setFloat(&t.WeightDecay)},
		{"grad_clip", d.setFloat(&t.GradClip)},
		{"max_seq_len", d.setInt(&t.MaxSeqLen)},
		{"checkpoint_every", d.setInt(&t.CheckpointEvery)},
		{"packing", d.setBool(&t.Packing)},
		{"precision", d.setStr(&t.Precision)},
	})
}

func (d *decoder) eval(n *yaml.Node, path string, e *Eval) error {
	return d.mapping(n, path, []field{
		{"suite", func(n *yaml.Node, path string) error {
			e.Suite = []SuiteItem{}
			return d.list(n, path, func(_ int, item *yaml.Node, ip string) error {
				var s SuiteItem
				err := d.mapping(item, ip, []field{
					{"name", d.setStr(&s.Name)},
					{"metric", d.setStr(&s.Metric)},
					{"split", d.setStr(&s.Split)},
				})
				e.Suite = append(e.Suite, s)
				return err
			})
		}},
		{"gates", func(n *yaml.Node, path string) error {
			e.Gates = []Gate{}
			return d.list(n, path, func(_ int, item *yaml.Node, ip string) error {
				g, err := d.gate(item, ip)
				e.Gates = append(e.Gates, g)
				return err
			})
		}},
	})
}

// gate decodes one of the gate forms and rejects mixtures of them.
func (d *decoder) gate(n *yaml.Node, path string) (Gate, error) {
	var g Gate
	var latency, cost float64
	err := d.mapping(n, path, []field{
		{"metric", d.setStr(&g.Metric)},
		{"op", d.setStr(&g.Op)},
		{"value", d.setFloat(&g.Value)},
		{"not_worse_than", d.setStr(&g.NotWorseThan)},
		{"epsilon", d.setFloat(&g.Epsilon)},
		{"confidence", d.setFloat(&g.Confidence)},
		{"latency_p95_ms", d.setFloat(&latency)},
		{"cost_per_1k", d.setFloat(&cost)},
	})
	if err != nil {
		return g, err
	}
	has := func(k string) bool { _, ok := d.pos[join(path, k)]; return ok }
	present := 0
	for _, k := range []string{"metric", "op", "value", "not_worse_than", "epsilon", "latency_p95_ms", "cost_per_1k"} {
		if has(k) {
			present++
		}
	}
	for _, short := range []struct {
		key string
		v   float64
	}{{MetricLatencyP95, latency}, {MetricCostPer1K, cost}} {
		if !has(short.key) {
			continue
		}
		if present != 1 {
			return g, d.errNode(n, path, "%s cannot be combined with other gate fields; give it its own list item", short.key)
		}
		return Gate{Metric: short.key, Op: "<=", Value: short.v}, nil
	}
	switch {
	case !has("metric"):
		return g, d.errNode(n, path, "gate needs metric (with op and value, or with not_worse_than), or latency_p95_ms or cost_per_1k")
	case has("not_worse_than") && (has("op") || has("value")):
		return g, d.errNode(n, path, "use either op and value, or not_worse_than and epsilon, not both")
	case has("not_worse_than"):
		return g, nil
	case has("epsilon"):
		return g, d.errNode(n, join(path, "epsilon"), "epsilon only applies with not_worse_than")
	case !has("op") || !has("value"):
		return g, d.errNode(n, path, "a threshold gate needs both op and value")
	}
	return g, nil
}

func (d *decoder) budget(n *yaml.Node, path string, b *Budget) error {
	return d.mapping(n, path, []field{
		{"max_steps", d.setInt(&b.MaxSteps)},
		{"max_duration", d.setDuration(&b.MaxDuration)},
		{"max_cost_usd", d.setFloat(&b.MaxCostUSD)},
		{"max_energy_kwh", d.setFloat(&b.MaxEnergyKWh)},
	})
}
