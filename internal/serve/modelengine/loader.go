package modelengine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/peft"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
)

// Loader reads a target's base and adapter into memory.
type Loader interface {
	Base(ctx context.Context, t serve.Target) (*Base, error)
	Adapter(ctx context.Context, t serve.Target) (*Adapter, error)
}

// Base is a base model in memory.
type Base struct {
	Config    engine.Config
	Weights   map[string]engine.Tensor
	Tokenizer *tokenizer.Tokenizer
}

// Adapter is a stored adapter in memory, with what serving needs from its
// manifest.
type Adapter struct {
	PEFT    *peft.Adapter
	Task    string
	Labels  []string // classification labels; nil for a causal LM adapter
	Pooling string   // classification head pooling
}

// AdapterManifest is the JSON the worker stores for a trained adapter (see
// internal/worker): the PEFT files by digest and the head's labels.
type AdapterManifest struct {
	Format  string           `json:"format"` // "peft-lora"
	Task    string           `json:"task"`
	Base    string           `json:"base"`
	Labels  []string         `json:"labels,omitempty"`
	Pooling string           `json:"pooling,omitempty"`
	Files   []basemodel.File `json:"files"`
}

// BlobLoader reads bases and adapters from the artifact store: the base's
// basemodel.Manifest (Target.BaseManifest) and the adapter manifest
// (Target.Adapter), materializing their files under WorkDir.
type BlobLoader struct {
	Blobs   basemodel.Source
	WorkDir string // default os.TempDir()
}

var _ Loader = (*BlobLoader)(nil)

// Base implements Loader.
func (l *BlobLoader) Base(ctx context.Context, t serve.Target) (*Base, error) {
	raw, err := l.read(ctx, t.BaseManifest)
	if err != nil {
		return nil, fmt.Errorf("base %s manifest: %w", t.BaseID, err)
	}
	bm, err := basemodel.ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", t.BaseID, err)
	}
	dir, err := os.MkdirTemp(l.WorkDir, "serve-base-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := basemodel.Materialize(ctx, l.Blobs, bm, dir); err != nil {
		return nil, err
	}
	w, err := safetensors.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("base %s weights: %w", bm.Name, err)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("base %s tokenizer: %w", bm.Name, err)
	}
	return &Base{Config: bm.Config, Weights: w, Tokenizer: tok}, nil
}

// Adapter implements Loader.
func (l *BlobLoader) Adapter(ctx context.Context, t serve.Target) (*Adapter, error) {
	raw, err := l.read(ctx, t.Adapter)
	if err != nil {
		return nil, fmt.Errorf("adapter %s manifest: %w", t.Adapter, err)
	}
	am, err := ParseAdapterManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", t.Adapter, err)
	}
	dir, err := os.MkdirTemp(l.WorkDir, "serve-adapter-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := basemodel.Materialize(ctx, l.Blobs, &basemodel.Manifest{Name: "adapter", Files: am.Files}, dir); err != nil {
		return nil, err
	}
	a, err := peft.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", t.Adapter, err)
	}
	return &Adapter{PEFT: a, Task: am.Task, Labels: am.Labels, Pooling: am.Pooling}, nil
}

// ParseAdapterManifest decodes and checks an adapter manifest.
func ParseAdapterManifest(raw []byte) (*AdapterManifest, error) {
	var am AdapterManifest
	if err := json.Unmarshal(raw, &am); err != nil {
		return nil, errs.Invalid("adapter manifest: %v", err)
	}
	if am.Format != "peft-lora" {
		return nil, errs.Invalid("adapter manifest: field \"format\" is %q, want \"peft-lora\"", am.Format)
	}
	if len(am.Files) == 0 {
		return nil, errs.Invalid("adapter manifest: field \"files\" is empty")
	}
	for i, f := range am.Files {
		if err := basemodel.ValidName(f.Name); err != nil {
			return nil, errs.Invalid("adapter manifest: files[%d]: %v", i, err)
		}
	}
	if len(am.Labels) == 1 {
		return nil, errs.Invalid("adapter manifest: field \"labels\" has one label; a classifier needs at least two")
	}
	return &am, nil
}

func (l *BlobLoader) read(ctx context.Context, digest string) ([]byte, error) {
	if digest == "" {
		return nil, errs.Invalid("no manifest digest")
	}
	rc, err := l.Blobs.Open(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 64<<20))
}
