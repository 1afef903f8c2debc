// Package servetest builds real, tiny serving fixtures for tests and the
// load generator: a tokenizer trained with tokenizer.Train, a base written
// by seedmodel and imported into a local blob store, and adapters written
// through engine/peft with seeded random weights, stored the way the worker
// stores them (PEFT files plus an adapter manifest blob).
//
// It imports serve, serve/modelengine, blob/local, basemodel, seedmodel and
// the engine packages; only tests and benchmarks import it.
package servetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/adapter"
	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/blob/local"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/peft"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/seedmodel"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/modelengine"
)

// Corpus is the text the fixture tokenizer is trained on.
const Corpus = `the quick brown fox jumps over the lazy dog. win a free prize now, click here!
hello, how are you today? meeting moved to monday at noon. your invoice is attached.
cheap pills online, limited offer, act now. lunch tomorrow? the report is ready for review.
congratulations you have been selected for a cash reward. please call me back when you can.`

// Fixture is a blob store holding one tiny base ("tiny") and the adapters
// made by its methods.
type Fixture struct {
	Dir    string
	Blobs  *local.Store
	Base   serve.Target // the base alone, model "tiny"
	Config engine.Config
	Tok    *tokenizer.Tokenizer
	// MaxSeqLen goes into the manifests of adapters stored while it is set
	// (the input length their training cut to).
	MaxSeqLen int
}

// Options size the base model. Zero values take the defaults in brackets.
type Options struct {
	Hidden int // [32]
	Layers int // [1]
	Seed   uint64
}

// ForTest is New with the defaults in a temporary directory of t; it
// fails t on an error.
func ForTest(t testing.TB) *Fixture {
	t.Helper()
	f, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// New trains the tokenizer, writes and imports the base into a blob store
// under dir.
func New(dir string, o Options) (*Fixture, error) {
	if o.Hidden == 0 {
		o.Hidden = 32
	}
	if o.Layers == 0 {
		o.Layers = 1
	}
	ctx := context.Background()
	blobs, err := local.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Train(func(yield func(string) bool) { yield(Corpus) },
		tokenizer.TrainOptions{VocabSize: 320, MinFrequency: 1, SpecialTokens: []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}})
	if err != nil {
		return nil, err
	}
	tj, err := tok.MarshalJSON()
	if err != nil {
		return nil, err
	}
	cfg := engine.Config{Arch: "LlamaForCausalLM", VocabSize: tok.VocabSize(), Hidden: o.Hidden, Intermediate: 2 * o.Hidden,
		Layers: o.Layers, Heads: 2, KVHeads: 1, HeadDim: o.Hidden / 2, MaxPositions: 256, RopeTheta: 10000, NormEps: 1e-5,
		Activation: "silu", BOSTokenID: -1, EOSTokenID: -1, TorchDtype: "float32"}
	baseDir := filepath.Join(dir, "base")
	if err := seedmodel.Write(baseDir, cfg, tj, 3+o.Seed); err != nil {
		return nil, err
	}
	fs, err := basemodel.NewDirSource(baseDir)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	bm, err := basemodel.Import(ctx, fs, basemodel.ImportOptions{Name: "tiny"}, blobs)
	if err != nil {
		return nil, err
	}
	md, err := putJSON(blobs, bm)
	if err != nil {
		return nil, err
	}
	f := &Fixture{Dir: dir, Blobs: blobs, Config: cfg, Tok: tok,
		Base: serve.Target{Model: "tiny", Version: 1, VersionID: bm.Fingerprint, BaseID: bm.Fingerprint, BaseManifest: md}}
	return f, nil
}

// Bases builds n fixtures over one blob store under dir, each with its own
// base (seeded 0, 1, …: same shape and tokenizer, different weights and
// base ids), for tests of several resident bases. They share Dir, whose
// base/ folder holds the last base written.
func Bases(dir string, n int, o Options) ([]*Fixture, error) {
	var out []*Fixture
	for i := range n {
		o := o
		o.Seed += uint64(i)
		f, err := New(dir, o)
		if err != nil {
			return nil, fmt.Errorf("base %d: %w", i, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// Loader returns a BlobLoader over the fixture's store.
func (f *Fixture) Loader() *modelengine.BlobLoader {
	return &modelengine.BlobLoader{Blobs: f.Blobs, WorkDir: f.Dir}
}

// Classifier stores a LoRA + head adapter with seeded random weights and
// returns its target (Model and Version are left for the caller).
func (f *Fixture) Classifier(seed uint64, labels []string) (serve.Target, error) {
	opts := model.Options{Method: model.Head, Seed: seed, LoRA: model.LoRAOptions{Rank: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj"}},
		Head: model.HeadOptions{NumLabels: len(labels), Pooling: model.PoolLast}}
	cfg := peft.Config{R: 4, LoraAlpha: 8, TargetModules: []string{"q_proj", "v_proj"}, BaseModelNameOrPath: "tiny",
		TaskType: "SEQ_CLS", ModulesToSave: []string{"score"}}
	return f.adapter(seed, opts, cfg, "classify", labels, "last")
}

// Generator stores a LoRA adapter for a causal LM with seeded random
// weights and returns its target.
func (f *Fixture) Generator(seed uint64) (serve.Target, error) {
	opts := model.Options{Method: model.LoRA, Seed: seed, LoRA: model.LoRAOptions{Rank: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj"}}}
	cfg := peft.Config{R: 4, LoraAlpha: 8, TargetModules: []string{"q_proj", "v_proj"}, BaseModelNameOrPath: "tiny", TaskType: "CAUSAL_LM"}
	return f.adapter(seed, opts, cfg, "sft", nil, "")
}

func (f *Fixture) adapter(seed uint64, opts model.Options, cfg peft.Config, task string, labels []string, pooling string) (serve.Target, error) {
	ctx := context.Background()
	w, err := model.RandomWeights(f.Config, 3)
	if err != nil {
		return serve.Target{}, err
	}
	m, err := model.New(f.Config, w, opts)
	if err != nil {
		return serve.Target{}, err
	}
	// #nosec G404 -- test helper: seeded fake model output
	rng := rand.New(rand.NewPCG(seed, 0x5e7e))
	tensors := map[string]engine.Tensor{}
	for _, p := range m.Params() {
		for i := range p.Data {
			p.Data[i] = float32(rng.NormFloat64() * 0.5)
		}
		name := p.Name
		if !strings.HasPrefix(name, peft.Prefix) {
			name = peft.Prefix + name
		}
		tensors[name] = engine.Tensor{Shape: p.Shape, Data: p.Data}
	}
	dir := filepath.Join(f.Dir, fmt.Sprintf("adapter-%s-%d-%d", task, seed, f.MaxSeqLen))
	d, err := adapter.Write(ctx, f.Blobs, dir, &peft.Adapter{Config: cfg, Tensors: tensors},
		adapter.Manifest{Task: task, Base: f.Base.BaseID, Labels: labels, Pooling: pooling, MaxSeqLen: f.MaxSeqLen})
	if err != nil {
		return serve.Target{}, err
	}
	t := f.Base
	t.Adapter, t.Task, t.Labels = d, task, labels
	t.VersionID = d
	return t, nil
}

func putJSON(s *local.Store, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	d, _, err := s.Put(context.Background(), bytes.NewReader(b))
	return d, err
}
