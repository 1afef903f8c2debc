package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/nn"
	"github.com/tailor-ml/tailor/internal/errs"
)

type f32 = float32

// Model is one architecture instance with its customization method. It is
// not safe for concurrent use: it owns the activation buffers it reuses
// from call to call.
type Model struct {
	cfg  engine.Config
	fam  family
	opts Options
	rt   *nn.Runtime

	base    map[string][]float32 // HF key → data (shared with the caller's map)
	embed   *nn.Embedding[f32]
	pos     *nn.Embedding[f32] // GPT-2 learned positions
	blocks  []*block
	norm    nn.Norm[f32]
	lmHead  *nn.Linear[f32]
	score   *nn.Linear[f32]
	loras   []*loraRef
	linears []*loraRef // every linear layer of the blocks, in build order
	params  []*engine.Param
	dropPCG *rand.PCG
	dropRNG *rand.Rand

	acts activations
}

// loraRef remembers where an adapter sits, for export and merging.
type loraRef struct {
	key string // HF key of the base weight, without ".weight"
	lin *nn.Linear[f32]
}

type block struct {
	ln1, ln2 nn.Norm[f32]
	attn     *nn.SelfAttention[f32]
	mlp      *nn.MLP[f32]
}

// New builds a model from a config and base weights under Hugging Face keys.
// The model uses the weights' Data slices directly (no copy), except for
// the Llama family's q/k/v and gate/up projections, which it copies once
// into one array per group so each group runs as one matrix product
// (nn.Stack); full fine-tuning updates the model's storage in place, and
// Weights returns it. With a nil weights map it initialises random weights
// from opts.Seed (pretraining from scratch).
func New(cfg engine.Config, weights map[string]engine.Tensor, opts Options) (*Model, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	c, fam, err := normalizeConfig(cfg)
	if err != nil {
		return nil, err
	}
	if weights == nil {
		if weights, err = RandomWeights(c, opts.Seed); err != nil {
			return nil, err
		}
	}
	base, err := lookupWeights(c, fam, weights)
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: c, fam: fam, opts: opts, base: base,
		rt:      &nn.Runtime{GEMM: opts.GEMM, Workers: opts.Workers},
		dropPCG: rand.NewPCG(opts.Seed, 0xd50f),
	}
	// #nosec G404 -- seeded dropout stream, reproducible by design; not a secret
	m.dropRNG = rand.New(m.dropPCG)
	// #nosec G404 -- seeded weight init, reproducible by design; not a secret
	b := &builder{m: m, init: rand.New(rand.NewPCG(opts.Seed, 0x10a4)), targets: map[string]bool{},
		stacked: true, grads: map[string][]float32{}}
	for _, t := range opts.LoRA.Targets {
		b.targets[t] = false
	}
	if err := b.build(); err != nil {
		return nil, err
	}
	for t, used := range b.targets {
		if !used {
			return nil, errs.Invalid("options: lora.targets entry %q matches no linear layer of %s", t, c.Arch)
		}
	}
	return m, nil
}

// RNGState returns the LoRA dropout generator's state, for checkpoints: a
// run resumed with SetRNGState draws the same masks as an uninterrupted one.
func (m *Model) RNGState() ([]byte, error) { return m.dropPCG.MarshalBinary() }

// SetRNGState restores a state saved by RNGState.
func (m *Model) SetRNGState(b []byte) error {
	if err := m.dropPCG.UnmarshalBinary(b); err != nil {
		return errs.Invalid("model: dropout RNG state: %v", err)
	}
	return nil
}

// Config returns the normalized configuration.
func (m *Model) Config() engine.Config { return m.cfg }

// Precision is the precision of the model's float32 matrix products: the
// one really computed in when Options.GEMM was left nil, the one declared
// in Options otherwise.
func (m *Model) Precision() gemm.Precision { return m.opts.Precision }

// Params implements engine.Trainable: the trainable parameters in a fixed
// order (full: HF keys; LoRA: PEFT keys; head: "score.weight" last).
func (m *Model) Params() []*engine.Param { return m.params }

// builder wires layers to weights and registers trainable parameters.
type builder struct {
	m       *Model
	init    *rand.Rand
	targets map[string]bool // LoRA target → matched at least once
	// stacked: build the Llama family's q/k/v and gate/up as nn.Stacks
	// over copied, adjacent weights (New; the Decoder uses the caller's
	// weights in place and leaves it off). grads holds the gradients
	// preallocated for them, adjacent too.
	stacked bool
	grads   map[string][]float32
}

func (b *builder) full() bool { return b.m.opts.Method == Full }

// param registers data as trainable under name and returns its gradient.
func (b *builder) param(name string, shape []int, data []float32) []float32 {
	g, ok := b.grads[name]
	if !ok {
		g = make([]float32, len(data))
	}
	b.m.params = append(b.m.params, &engine.Param{Name: name, Shape: shape, Data: data, Grad: g})
	return g
}

// weight returns a base tensor and, in full mode, registers it.
func (b *builder) weight(key string, shape ...int) (data, grad []float32) {
	data = b.m.base[key]
	if b.full() {
		grad = b.param(key, shape, data)
	}
	return data, grad
}

// linear builds the layer whose weight key is key+".weight"; in, out are
// the layer's dimensions. LoRA is attached when its module name is a target.
func (b *builder) linear(key string, in, out int, bias, transposed bool) *nn.Linear[f32] {
	l := &nn.Linear[f32]{In: in, Out: out, Transposed: transposed}
	if transposed {
		l.W, l.DW = b.weight(key+".weight", in, out)
	} else {
		l.W, l.DW = b.weight(key+".weight", out, in)
	}
	if bias {
		l.B, l.DB = b.weight(key+".bias", out)
	}
	b.m.linears = append(b.m.linears, &loraRef{key: key, lin: l})
	lo := b.m.opts.LoRA
	if lo.Rank <= 0 || b.full() {
		return l
	}
	module := key[strings.LastIndexByte(key, '.')+1:]
	if _, ok := b.targets[module]; !ok && len(lo.Targets) > 0 {
		return l
	}
	b.targets[module] = true
	r := lo.Rank
	a := &nn.LoRA[f32]{Rank: r, Scale: f32(lo.Alpha / float64(r)), Dropout: lo.Dropout, RNG: b.m.dropRNG,
		A: make([]float32, r*in), B: make([]float32, out*r)}
	bound := 1 / math.Sqrt(float64(in)) // kaiming_uniform(a=√5), as PEFT
	for i := range a.A {
		a.A[i] = f32((b.init.Float64()*2 - 1) * bound)
	}
	pk := "base_model.model." + key
	a.DA = b.param(pk+".lora_A.weight", []int{r, in}, a.A)
	a.DB = b.param(pk+".lora_B.weight", []int{out, r}, a.B)
	l.LoRA = a
	b.m.loras = append(b.m.loras, &loraRef{key: key, lin: l})
	return l
}

func (b *builder) build() error {
	m, c := b.m, b.m.cfg
	d := c.Hidden
	if m.fam == gpt2Family {
		w, g := b.weight("transformer.wte.weight", c.VocabSize, d)
		m.embed = &nn.Embedding[f32]{Vocab: c.VocabSize, Dim: d, W: w, DW: g}
		w, g = b.weight("transformer.wpe.weight", c.MaxPositions, d)
		m.pos = &nn.Embedding[f32]{Vocab: c.MaxPositions, Dim: d, W: w, DW: g}
	} else {
		w, g := b.weight("model.embed_tokens.weight", c.VocabSize, d)
		m.embed = &nn.Embedding[f32]{Vocab: c.VocabSize, Dim: d, W: w, DW: g}
	}
	var rope *nn.RoPE[f32]
	if m.fam == llamaFamily {
		var err error
		if rope, err = nn.NewRoPE[f32](c.HeadDim, c.MaxPositions, c.RopeTheta, c.RopeScaling); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	for l := 0; l < c.Layers; l++ {
		if m.fam == gpt2Family {
			m.blocks = append(m.blocks, b.gpt2Block(l))
		} else {
			blk, err := b.llamaBlock(l, rope)
			if err != nil {
				return err
			}
			m.blocks = append(m.blocks, blk)
		}
	}
	if m.fam == gpt2Family {
		m.norm = b.layerNorm("transformer.ln_f")
	} else {
		m.norm = b.rmsNorm("model.norm")
	}
	if m.opts.Method == Head {
		n := m.opts.Head.NumLabels
		w := make([]float32, n*d)
		for i := range w {
			w[i] = f32(b.init.NormFloat64() * 0.02)
		}
		m.score = &nn.Linear[f32]{In: d, Out: n, W: w}
		m.score.DW = b.param("score.weight", []int{n, d}, w)
		return nil
	}
	if c.TieEmbeddings {
		m.lmHead = &nn.Linear[f32]{In: d, Out: c.VocabSize, W: m.embed.W, DW: m.embed.DW}
	} else {
		w, g := b.weight("lm_head.weight", c.VocabSize, d)
		m.lmHead = &nn.Linear[f32]{In: d, Out: c.VocabSize, W: w, DW: g}
	}
	return nil
}

func (b *builder) rmsNorm(key string) *nn.RMSNorm[f32] {
	d := b.m.cfg.Hidden
	w, g := b.weight(key+".weight", d)
	return &nn.RMSNorm[f32]{Dim: d, Eps: b.m.cfg.NormEps, W: w, DW: g}
}

func (b *builder) layerNorm(key string) *nn.LayerNorm[f32] {
	d := b.m.cfg.Hidden
	w, g := b.weight(key+".weight", d)
	bb, gb := b.weight(key+".bias", d)
	return &nn.LayerNorm[f32]{Dim: d, Eps: b.m.cfg.NormEps, W: w, B: bb, DW: g, DB: gb}
}

// stack copies the base tensors under keys into one new array, part after
// part, and points the model at the copies (and, in full mode, at one new
// gradient array laid out the same way), so nn.NewStack can join the
// layers built on them. The caller's tensors are left as they were.
func (b *builder) stack(keys ...string) {
	total := 0
	for _, k := range keys {
		total += len(b.m.base[k])
	}
	w := make([]float32, total)
	var g []float32
	if b.full() {
		g = make([]float32, total)
	}
	off := 0
	for _, k := range keys {
		n := len(b.m.base[k])
		copy(w[off:off+n], b.m.base[k])
		b.m.base[k] = w[off : off+n]
		if g != nil {
			b.grads[k] = g[off : off+n]
		}
		off += n
	}
}

func (b *builder) llamaBlock(l int, rope *nn.RoPE[f32]) (*block, error) {
	c := b.m.cfg
	d, f, qd, kd := c.Hidden, c.Intermediate, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	p := fmt.Sprintf("model.layers.%d.", l)
	if b.stacked {
		b.stack(p+"self_attn.q_proj.weight", p+"self_attn.k_proj.weight", p+"self_attn.v_proj.weight")
		if c.AttentionBias {
			b.stack(p+"self_attn.q_proj.bias", p+"self_attn.k_proj.bias", p+"self_attn.v_proj.bias")
		}
		b.stack(p+"mlp.gate_proj.weight", p+"mlp.up_proj.weight")
	}
	blk := &block{ln1: b.rmsNorm(p + "input_layernorm")}
	blk.attn = &nn.SelfAttention[f32]{Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, Rope: rope,
		Q: b.linear(p+"self_attn.q_proj", d, qd, c.AttentionBias, false),
		K: b.linear(p+"self_attn.k_proj", d, kd, c.AttentionBias, false),
		V: b.linear(p+"self_attn.v_proj", d, kd, c.AttentionBias, false),
		O: b.linear(p+"self_attn.o_proj", qd, d, false, false),
	}
	blk.ln2 = b.rmsNorm(p + "post_attention_layernorm")
	blk.mlp = &nn.MLP[f32]{Act: nn.SiLU,
		Gate: b.linear(p+"mlp.gate_proj", d, f, false, false),
		Up:   b.linear(p+"mlp.up_proj", d, f, false, false),
		Down: b.linear(p+"mlp.down_proj", f, d, false, false),
	}
	if b.stacked {
		var err error
		if blk.attn.Fused, err = nn.NewStack(blk.attn.Q, blk.attn.K, blk.attn.V); err != nil {
			return nil, fmt.Errorf("layer %d q/k/v: %w", l, err)
		}
		if blk.mlp.GateUp, err = nn.NewStack(blk.mlp.Gate, blk.mlp.Up); err != nil {
			return nil, fmt.Errorf("layer %d gate/up: %w", l, err)
		}
	}
	return blk, nil
}

func (b *builder) gpt2Block(l int) *block {
	c := b.m.cfg
	d, f := c.Hidden, c.Intermediate
	p := fmt.Sprintf("transformer.h.%d.", l)
	blk := &block{ln1: b.layerNorm(p + "ln_1")}
	blk.attn = &nn.SelfAttention[f32]{Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim,
		QKV: b.linear(p+"attn.c_attn", d, 3*d, true, true),
		O:   b.linear(p+"attn.c_proj", d, d, true, true),
	}
	blk.ln2 = b.layerNorm(p + "ln_2")
	act, _ := nn.ParseActivation(c.Activation)
	blk.mlp = &nn.MLP[f32]{Act: act,
		Up:   b.linear(p+"mlp.c_fc", d, f, true, true),
		Down: b.linear(p+"mlp.c_proj", f, d, true, true),
	}
	return blk
}

// Weights returns the base weights under their Hugging Face keys (the
// model's own storage, not a copy), plus "score.weight" for a head. For
// LoRA use MergedWeights or export the adapter from Params.
func (m *Model) Weights() map[string]engine.Tensor {
	out := map[string]engine.Tensor{}
	for _, sp := range specs(m.cfg, m.fam) {
		out[sp.key] = engine.Tensor{Shape: slices.Clone(sp.shape), Data: m.base[sp.key]}
	}
	if m.score != nil {
		out["score.weight"] = engine.Tensor{Shape: []int{m.score.Out, m.score.In}, Data: m.score.W}
	}
	return out
}

// MergedWeights returns fresh copies of the weights with every LoRA update
// folded in: W + (alpha/r)·B·A (transposed for Conv1D layouts).
func (m *Model) MergedWeights() map[string]engine.Tensor {
	out := map[string]engine.Tensor{}
	for k, t := range m.Weights() {
		out[k] = engine.Tensor{Shape: t.Shape, Data: slices.Clone(t.Data)}
	}
	for _, ref := range m.loras {
		l, a := ref.lin, ref.lin.LoRA
		w := out[ref.key+".weight"].Data
		if l.Transposed { // W[in, out] += scale · Aᵀ·Bᵀ
			nn.MatMul(m.rt.GEMM, true, true, l.In, l.Out, a.Rank, a.Scale, a.A, l.In, a.B, a.Rank, 1, w, l.Out)
		} else { // W[out, in] += scale · B·A
			nn.MatMul(m.rt.GEMM, false, false, l.Out, l.In, a.Rank, a.Scale, a.B, a.Rank, a.A, l.In, 1, w, l.In)
		}
	}
	return out
}
