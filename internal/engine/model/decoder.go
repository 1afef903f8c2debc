package model

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/nn"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Decoder serves one frozen base to many adapters at once. A step packs the
// new tokens of every row (no padding), runs each base projection once over
// all rows (one GEMM) and adds each adapter's low-rank update to its own
// rows only; attention reads each row's own KVCache. No merged copy of the
// base is ever made per adapter.
//
// A Decoder is not safe for concurrent use: it owns the buffers a step
// reuses. Adapters and caches belong to the Decoder that made them.
type Decoder struct {
	m      *Model // the frozen base: no adapters attached, nothing trainable
	rt     *nn.Runtime
	linIdx map[*nn.Linear[f32]]int // position in m.linears
	buf    stepBuffers
}

// DecoderOptions configure NewDecoder. Zero values take the defaults.
type DecoderOptions struct {
	// Workers is the fixed number of goroutines for element-wise work and
	// attention (default 2). Results do not depend on it.
	Workers int
	// GEMM is the matrix-product backend (default gemm.NewPrecision(Workers,
	// Precision)).
	GEMM gemm.GEMM
	// Precision of the float32 matrix products when GEMM is nil (default
	// gemm.FP32; see Options.Precision).
	Precision gemm.Precision
}

// NewDecoder builds a Decoder over base weights under Hugging Face keys. The
// weights are used in place (never copied, never written).
func NewDecoder(cfg engine.Config, weights map[string]engine.Tensor, opts DecoderOptions) (*Decoder, error) {
	if opts.Workers < 1 {
		opts.Workers = 2
	}
	p, err := gemm.ParsePrecision(string(opts.Precision))
	if err != nil {
		return nil, errs.Invalid("decoder: %v", err)
	}
	if opts.GEMM == nil {
		opts.GEMM, p = gemm.NewPrecision(opts.Workers, p)
	}
	if weights == nil {
		return nil, errs.Invalid("decoder: no base weights")
	}
	c, fam, err := normalizeConfig(cfg)
	if err != nil {
		return nil, err
	}
	base, err := lookupWeights(c, fam, weights)
	if err != nil {
		return nil, err
	}
	// Method LoRA with rank 0 attaches no adapter and registers no
	// parameter: the layers hold the base weights and nothing else.
	o := Options{Method: LoRA, Workers: opts.Workers, GEMM: opts.GEMM, Precision: p}
	m := &Model{cfg: c, fam: fam, opts: o, base: base,
		rt:      &nn.Runtime{GEMM: o.GEMM, Workers: o.Workers},
		dropPCG: rand.NewPCG(0, 0xd50f),
	}
	// #nosec G404 -- seeded dropout stream, reproducible by design; not a secret
	m.dropRNG = rand.New(m.dropPCG)
	// #nosec G404 -- seeded weight init, reproducible by design; not a secret
	b := &builder{m: m, init: rand.New(rand.NewPCG(0, 0x10a4)), targets: map[string]bool{}}
	if err := b.build(); err != nil {
		return nil, err
	}
	d := &Decoder{m: m, rt: m.rt, linIdx: map[*nn.Linear[f32]]int{}}
	for i, r := range m.linears {
		d.linIdx[r.lin] = i
	}
	return d, nil
}

// Config returns the normalized configuration.
func (d *Decoder) Config() engine.Config { return d.m.cfg }

// Adapter is one LoRA adapter, optionally with a classification head, over
// a Decoder's base. It holds only the adapter's own tensors.
type Adapter struct {
	dec     *Decoder
	lora    []*loraWeights // by linear index; nil: no update on that layer
	head    *nn.Linear[f32]
	pooling Pooling
	bytes   int64
}

// loraWeights is one layer's update y += scale·(x·Aᵀ)·Bᵀ.
type loraWeights struct {
	rank  int
	scale f32
	a, b  []f32 // A [rank, in], B [out, rank]
}

// AdapterSpec describes an adapter's tensors for NewAdapter.
type AdapterSpec struct {
	// Tensors are keyed by PEFT name ("base_model.model.<layer>.lora_A.weight",
	// the prefix optional), plus "score.weight" [labels, hidden] for a
	// classification head. The slices are used in place.
	Tensors map[string]engine.Tensor
	// Scale multiplies B·A (lora_alpha / r, or / √r with rsLoRA).
	Scale float64
	// Targets, when set, are module names (q_proj, c_attn, ...) every one
	// of which must have tensors on every layer it names.
	Targets []string
	// Pooling chooses the hidden state a head reads (default PoolLast).
	Pooling Pooling
}

// NewAdapter checks spec against the base and returns the adapter. Every
// LoRA tensor must land on a layer: an unknown one is an error naming it.
func (d *Decoder) NewAdapter(spec AdapterSpec) (*Adapter, error) {
	get := func(name string) (engine.Tensor, string, bool) {
		if t, ok := spec.Tensors[name]; ok {
			return t, name, true
		}
		t, ok := spec.Tensors["base_model.model."+name]
		return t, "base_model.model." + name, ok
	}
	used := map[string]bool{}
	a := &Adapter{dec: d, lora: make([]*loraWeights, len(d.m.linears)), pooling: spec.Pooling}
	if a.pooling == "" {
		a.pooling = PoolLast
	}
	if a.pooling != PoolLast && a.pooling != PoolMean {
		return nil, errs.Invalid("adapter: pooling %q not supported (use last or mean)", a.pooling)
	}
	for i, ref := range d.m.linears {
		l := ref.lin
		ta, ka, okA := get(ref.key + ".lora_A.weight")
		tb, kb, okB := get(ref.key + ".lora_B.weight")
		module := ref.key[strings.LastIndexByte(ref.key, '.')+1:]
		if !okA && !okB {
			for _, t := range spec.Targets {
				if t == module {
					return nil, errs.Invalid("adapter: tensor %q is missing (target %s)", ka, module)
				}
			}
			continue
		}
		if okA != okB {
			return nil, errs.Invalid("adapter: layer %s has only one of lora_A and lora_B", ref.key)
		}
		used[ka], used[kb] = true, true
		if len(ta.Shape) != 2 || ta.Shape[1] != l.In || ta.Shape[0] <= 0 {
			return nil, errs.Invalid("adapter: tensor %q has shape %v, want [r, %d]", ka, ta.Shape, l.In)
		}
		r := ta.Shape[0]
		if len(tb.Shape) != 2 || tb.Shape[0] != l.Out || tb.Shape[1] != r {
			return nil, errs.Invalid("adapter: tensor %q has shape %v, want [%d, %d]", kb, tb.Shape, l.Out, r)
		}
		if len(ta.Data) != r*l.In || len(tb.Data) != l.Out*r {
			return nil, errs.Invalid("adapter: tensors of %s hold the wrong number of values", ref.key)
		}
		a.lora[i] = &loraWeights{rank: r, scale: f32(spec.Scale), a: ta.Data, b: tb.Data}
		a.bytes += int64(len(ta.Data)+len(tb.Data)) * 4
	}
	if t, k, ok := get("score.weight"); ok {
		used[k] = true
		hd := d.m.cfg.Hidden
		if len(t.Shape) != 2 || t.Shape[0] < 2 || t.Shape[1] != hd || len(t.Data) != t.Shape[0]*hd {
			return nil, errs.Invalid("adapter: tensor %q has shape %v, want [labels ≥ 2, %d]", k, t.Shape, hd)
		}
		a.head = &nn.Linear[f32]{In: hd, Out: t.Shape[0], W: t.Data}
		a.bytes += int64(len(t.Data)) * 4
	}
	for k := range spec.Tensors {
		if !used[k] {
			return nil, errs.Invalid("adapter: tensor %q matches no layer of %s", k, d.m.cfg.Arch)
		}
	}
	return a, nil
}

// Bytes returns the size of the adapter's tensors.
func (a *Adapter) Bytes() int64 { return a.bytes }

// Labels returns the number of classes of the head (0: no head).
func (a *Adapter) Labels() int {
	if a.head == nil {
		return 0
	}
	return a.head.Out
}

// String names the adapter's shape, for logs.
func (a *Adapter) String() string {
	n := 0
	for _, l := range a.lora {
		if l != nil {
			n++
		}
	}
	return fmt.Sprintf("adapter(%d layers, %d labels)", n, a.Labels())
}
