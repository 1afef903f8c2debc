package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/errs"
)

// adapted builds a model with opts over w whose trainable parameters are
// seeded noise (LoRA B is not left at zero), and the matching AdapterSpec.
func adapted(t *testing.T, c engine.Config, w map[string]engine.Tensor, opts Options, seed uint64) (*Model, AdapterSpec) {
	t.Helper()
	opts.Seed = seed
	m, err := New(c, w, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 0xada))
	spec := AdapterSpec{Tensors: map[string]engine.Tensor{}, Pooling: opts.Head.Pooling}
	if opts.Method == Full { // the parameters are the shared base weights
		return m, spec
	}
	if opts.LoRA.Rank > 0 {
		spec.Scale = opts.LoRA.Alpha / float64(opts.LoRA.Rank)
	}
	for _, p := range m.Params() {
		for i := range p.Data {
			p.Data[i] = float32(0.2 * r.NormFloat64())
		}
		spec.Tensors[p.Name] = engine.Tensor{Shape: p.Shape, Data: p.Data}
	}
	return m, spec
}

func newDecoder(t *testing.T, c engine.Config, w map[string]engine.Tensor) *Decoder {
	t.Helper()
	d, err := NewDecoder(c, w, DecoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func randTokens(r *rand.Rand, vocab, n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(r.IntN(vocab))
	}
	return out
}

func maxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// lastLogits is the no-cache path: Forward over the whole prefix.
func lastLogits(t *testing.T, m *Model, toks []int32) []float32 {
	t.Helper()
	out, err := m.Forward(engine.Batch{Examples: []engine.Example{{Tokens: toks, Label: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	v := out.Shape[2]
	return append([]float32(nil), out.Data[(len(toks)-1)*v:len(toks)*v]...)
}

// TestGreedyMatchesRecompute: batched prefill of prompts of different
// lengths, then batched one-token steps, against Forward over the whole
// prefix at every step: same greedy tokens, logits within 1e-4.
func TestGreedyMatchesRecompute(t *testing.T) {
	cases := []struct {
		name string
		cfg  engine.Config
		opts Options
	}{
		{"llama_gqa_llama3", tinyLlama(), Options{Method: LoRA, LoRA: LoRAOptions{Rank: 4, Alpha: 8}}},
		{"qwen2_bias_mqa", tinyQwen2(), Options{Method: LoRA, LoRA: LoRAOptions{Rank: 2, Alpha: 4, Targets: []string{"q_proj", "v_proj", "down_proj"}}}},
		{"gpt2_learned_pos", tinyGPT2(), Options{Method: LoRA, LoRA: LoRAOptions{Rank: 4, Alpha: 8}}},
		{"gpt2_base", tinyGPT2(), Options{Method: Full}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := noisyWeights(t, tc.cfg, 5)
			ref, spec := adapted(t, tc.cfg, w, tc.opts, 7)
			d := newDecoder(t, tc.cfg, w)
			var ad *Adapter
			if tc.opts.Method != Full {
				var err error
				if ad, err = d.NewAdapter(spec); err != nil {
					t.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(3, 3))
			seqs := [][]int32{randTokens(r, tc.cfg.VocabSize, 5), randTokens(r, tc.cfg.VocabSize, 1), randTokens(r, tc.cfg.VocabSize, 9)}
			rows := make([]Row, len(seqs))
			for i, s := range seqs {
				rows[i] = Row{Adapter: ad, Cache: d.NewCache(), Tokens: s}
			}
			for step := 0; step < 12; step++ {
				lg, err := d.Step(rows)
				if err != nil {
					t.Fatal(err)
				}
				v := lg.Shape[1]
				for i := range rows {
					got := lg.Data[i*v : (i+1)*v]
					want := lastLogits(t, ref, seqs[i])
					if dd := maxDiff(got, want); dd > 1e-4 {
						t.Fatalf("step %d row %d: logits differ by %g", step, i, dd)
					}
					if g, w := argmax(got), argmax(want); g != w {
						t.Fatalf("step %d row %d: cached greedy token %d, recompute %d", step, i, g, w)
					}
					if n := rows[i].Cache.Len(); n != len(seqs[i]) {
						t.Fatalf("row %d cache holds %d positions, sequence has %d", i, n, len(seqs[i]))
					}
					tok := argmax(got)
					seqs[i] = append(seqs[i], tok)
					rows[i].Tokens = []int32{tok}
				}
			}
			// Greedy (fresh caches) reproduces the same continuation.
			r = rand.New(rand.NewPCG(3, 3))
			prompt := randTokens(r, tc.cfg.VocabSize, 5)
			gen, err := d.Greedy([]Row{{Adapter: ad, Tokens: prompt}}, 12)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(gen[0]) != fmt.Sprint(seqs[0][5:]) {
				t.Fatalf("Greedy %v, step by step %v", gen[0], seqs[0][5:])
			}
		})
	}
}

// TestMixedAdaptersMatchAlone: one batch mixing three adapters of different
// shapes and the base alone gives each row what it gets when run alone
// with its adapter (1e-5), and what engine/model gives (1e-4).
func TestMixedAdaptersMatchAlone(t *testing.T) {
	for _, c := range []engine.Config{tinyLlama(), tinyGPT2()} {
		t.Run(c.Arch, func(t *testing.T) {
			w := noisyWeights(t, c, 11)
			d := newDecoder(t, c, w)
			alone := newDecoder(t, c, w)
			targets := []string{"q_proj", "v_proj"}
			if c.Arch == "GPT2LMHeadModel" {
				targets = []string{"c_attn"}
			}
			optsList := []Options{
				{Method: LoRA, LoRA: LoRAOptions{Rank: 4, Alpha: 8}},
				{Method: LoRA, LoRA: LoRAOptions{Rank: 2, Alpha: 2, Targets: targets}},
				{Method: LoRA, LoRA: LoRAOptions{Rank: 8, Alpha: 4}},
			}
			var refs []*Model
			var ads, adsAlone []*Adapter
			for i, o := range optsList {
				m, spec := adapted(t, c, w, o, uint64(20+i))
				a1, err := d.NewAdapter(spec)
				if err != nil {
					t.Fatal(err)
				}
				a2, err := alone.NewAdapter(spec)
				if err != nil {
					t.Fatal(err)
				}
				refs, ads, adsAlone = append(refs, m), append(ads, a1), append(adsAlone, a2)
			}
			base, _ := adapted(t, c, w, Options{Method: Full}, 1)
			refs, ads, adsAlone = append(refs, base), append(ads, nil), append(adsAlone, nil)
			r := rand.New(rand.NewPCG(8, 8))
			pick := []int{0, 3, 1, 0, 2, 1, 3, 2}
			rows := make([]Row, len(pick))
			seqs := make([][]int32, len(pick))
			single := make([]*KVCache, len(pick))
			for i, k := range pick {
				seqs[i] = randTokens(r, c.VocabSize, 1+r.IntN(8))
				rows[i] = Row{Adapter: ads[k], Cache: d.NewCache(), Tokens: seqs[i]}
				single[i] = alone.NewCache()
			}
			for step := 0; step < 4; step++ {
				lg, err := d.Step(rows)
				if err != nil {
					t.Fatal(err)
				}
				v := lg.Shape[1]
				mixed := append([]float32(nil), lg.Data...)
				for i, k := range pick {
					one, err := alone.Step([]Row{{Adapter: adsAlone[k], Cache: single[i], Tokens: rows[i].Tokens}})
					if err != nil {
						t.Fatal(err)
					}
					got := mixed[i*v : (i+1)*v]
					if dd := maxDiff(got, one.Data); dd > 1e-5 {
						t.Fatalf("step %d row %d (adapter %d): mixed batch and alone differ by %g", step, i, k, dd)
					}
					if dd := maxDiff(got, lastLogits(t, refs[k], seqs[i])); dd > 1e-4 {
						t.Fatalf("step %d row %d (adapter %d): decoder and engine/model differ by %g", step, i, k, dd)
					}
					tok := argmax(got)
					seqs[i] = append(seqs[i], tok)
					rows[i].Tokens = []int32{tok}
				}
			}
		})
	}
}

// TestMixedHeadsMatchAlone: classification rows of different adapters
// (different labels, pooling and LoRA) in one call, each row with its own
// head, against each row alone and engine/model's Forward.
func TestMixedHeadsMatchAlone(t *testing.T) {
	c := tinyQwen2()
	w := noisyWeights(t, c, 13)
	d := newDecoder(t, c, w)
	optsList := []Options{
		{Method: Head, Head: HeadOptions{NumLabels: 2}},
		{Method: Head, Head: HeadOptions{NumLabels: 3, Pooling: PoolMean}, LoRA: LoRAOptions{Rank: 2, Alpha: 4}},
		{Method: Head, Head: HeadOptions{NumLabels: 4}, LoRA: LoRAOptions{Rank: 4, Alpha: 4, Targets: []string{"k_proj", "up_proj"}}},
	}
	var refs []*Model
	var ads []*Adapter
	for i, o := range optsList {
		m, spec := adapted(t, c, w, o, uint64(40+i))
		a, err := d.NewAdapter(spec)
		if err != nil {
			t.Fatal(err)
		}
		if a.Labels() != o.Head.NumLabels {
			t.Fatalf("adapter %d has %d labels, want %d", i, a.Labels(), o.Head.NumLabels)
		}
		refs, ads = append(refs, m), append(ads, a)
	}
	r := rand.New(rand.NewPCG(9, 9))
	pick := []int{2, 0, 1, 1, 0, 2, 0}
	rows := make([]Row, len(pick))
	for i, k := range pick {
		rows[i] = Row{Adapter: ads[k], Tokens: randTokens(r, c.VocabSize, 2+r.IntN(10))}
	}
	got, err := d.Classify(rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range pick {
		one, err := d.Classify(rows[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		if dd := maxDiff(got[i], one[0]); dd > 1e-5 {
			t.Fatalf("row %d: mixed and alone differ by %g", i, dd)
		}
		want, err := refs[k].Forward(engine.Batch{Examples: []engine.Example{{Tokens: rows[i].Tokens}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got[i]) != len(want.Data) {
			t.Fatalf("row %d: %d classes, want %d", i, len(got[i]), len(want.Data))
		}
		if dd := maxDiff(got[i], want.Data); dd > 1e-5 {
			t.Fatalf("row %d (adapter %d): decoder %v, engine/model %v", i, k, got[i], want.Data)
		}
	}
}

func TestDecoderErrors(t *testing.T) {
	c := tinyLlama()
	w := noisyWeights(t, c, 2)
	d := newDecoder(t, c, w)
	other := newDecoder(t, c, w)
	_, spec := adapted(t, c, w, Options{Method: LoRA, LoRA: LoRAOptions{Rank: 2, Alpha: 2}}, 3)
	lora, err := d.NewAdapter(spec)
	if err != nil {
		t.Fatal(err)
	}
	_, hspec := adapted(t, c, w, Options{Method: Head, Head: HeadOptions{NumLabels: 2}}, 4)
	head, err := d.NewAdapter(hspec)
	if err != nil {
		t.Fatal(err)
	}
	shared := d.NewCache()
	full := d.NewCache()
	if _, err := d.Step([]Row{{Cache: full, Tokens: make([]int32, c.MaxPositions-1)}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		classify bool
		rows     []Row
		want     string
	}{
		{"no rows", false, nil, "no rows"},
		{"no tokens", false, []Row{{Cache: d.NewCache()}}, "row 0 has no tokens"},
		{"vocab", false, []Row{{Cache: d.NewCache(), Tokens: []int32{1}}, {Cache: d.NewCache(), Tokens: []int32{3, 64}}}, "row 1 token 64 at position 1"},
		{"no cache", false, []Row{{Tokens: []int32{1}}}, "row 0 has no KV cache"},
		{"foreign cache", false, []Row{{Cache: other.NewCache(), Tokens: []int32{1}}}, "another decoder"},
		{"shared cache", false, []Row{{Cache: shared, Tokens: []int32{1}}, {Cache: shared, Tokens: []int32{2}}}, "row 1 shares its KV cache with row 0"},
		{"too long", false, []Row{{Cache: full, Tokens: []int32{1, 2}}}, "max_position_embeddings"},
		{"head in step", false, []Row{{Adapter: head, Cache: d.NewCache(), Tokens: []int32{1}}}, "classification head"},
		{"no head", true, []Row{{Adapter: lora, Tokens: []int32{1}}}, "row 0: the adapter has no classification head"},
		{"base classify", true, []Row{{Tokens: []int32{1}}}, "no classification head"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := full.Len()
			if tc.classify {
				_, err = d.Classify(tc.rows)
			} else {
				_, err = d.Step(tc.rows)
			}
			if err == nil || !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid error containing %q", err, tc.want)
			}
			if full.Len() != before || shared.Len() != 0 {
				t.Fatalf("a failed call changed a cache")
			}
		})
	}
}

func TestAdapterSpecErrors(t *testing.T) {
	c := tinyLlama()
	w := noisyWeights(t, c, 2)
	d := newDecoder(t, c, w)
	_, spec := adapted(t, c, w, Options{Method: LoRA, LoRA: LoRAOptions{Rank: 2, Alpha: 2, Targets: []string{"q_proj"}}}, 3)
	edit := func(f func(m map[string]engine.Tensor)) map[string]engine.Tensor {
		m := map[string]engine.Tensor{}
		for k, v := range spec.Tensors {
			m[k] = v
		}
		f(m)
		return m
	}
	const a0 = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
	cases := []struct {
		name    string
		tensors map[string]engine.Tensor
		targets []string
		pooling Pooling
		want    string
	}{
		{"missing target", spec.Tensors, []string{"q_proj", "v_proj"}, "", "v_proj.lora_A.weight"},
		{"half pair", edit(func(m map[string]engine.Tensor) { delete(m, a0) }), nil, "", "only one of lora_A and lora_B"},
		{"shape", edit(func(m map[string]engine.Tensor) { m[a0] = engine.Tensor{Shape: []int{2, 5}, Data: make([]float32, 10)} }), nil, "", a0},
		{"unknown", edit(func(m map[string]engine.Tensor) {
			m["base_model.model.model.layers.9.mlp.x.lora_A.weight"] = engine.Tensor{}
		}), nil, "", "layers.9.mlp.x"},
		{"head shape", edit(func(m map[string]engine.Tensor) {
			m["score.weight"] = engine.Tensor{Shape: []int{2, 3}, Data: make([]float32, 6)}
		}), nil, "", "score.weight"},
		{"pooling", spec.Tensors, nil, "max", "pooling"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.NewAdapter(AdapterSpec{Tensors: tc.tensors, Scale: 1, Targets: tc.targets, Pooling: tc.pooling})
			if err == nil || !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid error containing %q", err, tc.want)
			}
		})
	}
}

// TestCacheTruncate: rewinding a cache and feeding the same token again
// gives the same logits, and memory is accounted.
func TestCacheTruncate(t *testing.T) {
	c := tinyGPT2()
	d := newDecoder(t, c, noisyWeights(t, c, 4))
	kc := d.NewCache()
	lg, err := d.Step([]Row{{Cache: kc, Tokens: []int32{1, 2, 3, 4}}})
	if err != nil {
		t.Fatal(err)
	}
	first := append([]float32(nil), lg.Data...)
	kc.Truncate(3)
	lg, err = d.Step([]Row{{Cache: kc, Tokens: []int32{4}}})
	if err != nil {
		t.Fatal(err)
	}
	if dd := maxDiff(first, lg.Data); dd > 1e-5 || kc.Len() != 4 {
		t.Fatalf("after truncate: diff %g, len %d", dd, kc.Len())
	}
	if want := int64(2 * c.Layers * 16 * c.KVHeads * c.HeadDim * 4); kc.Bytes() != want {
		t.Fatalf("cache bytes %d, want %d", kc.Bytes(), want)
	}
}

// FuzzDecoderStep feeds arbitrary token rows: a step either fails with an
// invalid error and leaves the caches alone, or every cache grows by its
// row's tokens and the logits are finite.
func FuzzDecoderStep(f *testing.F) {
	c := tinyQwen2()
	w, err := RandomWeights(c, 1)
	if err != nil {
		f.Fatal(err)
	}
	d, err := NewDecoder(c, w, DecoderOptions{Workers: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{3, 1, 2, 3, 1, 9}, uint8(0))
	f.Add([]byte{0}, uint8(2))
	f.Add([]byte{40, 200, 7}, uint8(31))
	f.Fuzz(func(t *testing.T, data []byte, pre uint8) {
		var rows []Row
		for len(data) > 0 && len(rows) < 4 {
			n := min(int(data[0]%6), len(data)-1)
			kc := d.NewCache()
			if p := int(pre) % (c.MaxPositions + 2); p > 0 {
				if _, err := d.Step([]Row{{Cache: kc, Tokens: make([]int32, min(p, c.MaxPositions))}}); err != nil {
					t.Fatal(err)
				}
			}
			toks := make([]int32, n)
			for i, b := range data[1 : 1+n] {
				toks[i] = int32(b) - 8
			}
			rows = append(rows, Row{Cache: kc, Tokens: toks})
			data = data[1+n:]
		}
		before := make([]int, len(rows))
		for i, r := range rows {
			before[i] = r.Cache.Len()
		}
		lg, err := d.Step(rows)
		for i, r := range rows {
			want := before[i]
			if err == nil {
				want += len(r.Tokens)
			}
			if r.Cache.Len() != want {
				t.Fatalf("row %d cache %d positions, want %d (err %v)", i, r.Cache.Len(), want, err)
			}
		}
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error %v is not invalid", err)
			}
			return
		}
		for _, v := range lg.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("non-finite logit %g", v)
			}
		}
	})
}

// TestDecodeSameBitsAtAnyThreadCount: single-stream decode gives the same
// logits, bit for bit, with 1, 2 and 3 workers where the matrix-vector
// kernel's rows do not depend on how a product is split (gemm Info says
// "gemv=avx512 dot rows"); elsewhere OpenBLAS's sgemv promises nothing of
// the kind and the test has nothing to check.
func TestDecodeSameBitsAtAnyThreadCount(t *testing.T) {
	if !strings.Contains(gemm.Info(), "gemv=avx512 dot rows") {
		t.Skipf("matrix-vector products run on %q: no promise of the same bits at other thread counts", gemm.Info())
	}
	c := tinyLlama()
	w := noisyWeights(t, c, 5)
	var first []float32
	for _, th := range []int{1, 2, 3} {
		d, err := NewDecoder(c, w, DecoderOptions{Workers: th, GEMM: gemm.Split{Inner: gemm.New(1), Workers: th, MinWork: 1}})
		if err != nil {
			t.Fatal(err)
		}
		row := []Row{{Tokens: []int32{1, 2, 3, 4, 5}, Cache: d.NewCache()}}
		var all []float32
		for i := 0; i < 12; i++ {
			lg, err := d.Step(row)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, lg.Data...)
			row[0].Tokens = []int32{argmax(lg.Data)}
		}
		if first == nil {
			first = all
			continue
		}
		for i := range all {
			if math.Float32bits(all[i]) != math.Float32bits(first[i]) {
				t.Fatalf("%d workers: logit %d is %g, with 1 worker %g", th, i, all[i], first[i])
			}
		}
	}
}
