package modelengine

import (
	"context"
	"fmt"

	stored "github.com/tailor-ml/tailor/internal/adapter"
	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/peft"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
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
	Weights   map[string]engine.Tensor // read-only
	Tokenizer *tokenizer.Tokenizer
	// MappedBytes of Weights are memory-mapped files rather than heap.
	MappedBytes int64
	// Release, when set, frees the weights (unmaps them) once the engine
	// has dropped the base.
	Release func() error
}

// Adapter is a stored adapter in memory, with what serving needs from its
// manifest.
type Adapter struct {
	PEFT    *peft.Adapter
	Task    string
	Labels  []string // classification labels; nil for a causal LM adapter
	Pooling string   // classification head pooling
	// MaxSeqLen is the input length training truncated to (0: unknown).
	MaxSeqLen int
}

// BlobLoader reads bases and adapters from the artifact store: the base's
// basemodel.Manifest (Target.BaseManifest), its weights memory-mapped from
// the store's files where the store keeps local files (basemodel.Map), and
// the adapter manifest (Target.Adapter), materializing its files under
// WorkDir.
type BlobLoader struct {
	Blobs   basemodel.Source
	WorkDir string // default os.TempDir()
}

var _ Loader = (*BlobLoader)(nil)

// Base implements Loader.
func (l *BlobLoader) Base(ctx context.Context, t serve.Target) (*Base, error) {
	b, err := basemodel.Map(ctx, l.Blobs, t.BaseManifest, l.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", t.BaseID, err)
	}
	return &Base{Config: b.Manifest.Config, Weights: b.Weights, Tokenizer: b.Tokenizer, MappedBytes: b.MappedBytes, Release: b.Close}, nil
}

// Adapter implements Loader.
func (l *BlobLoader) Adapter(ctx context.Context, t serve.Target) (*Adapter, error) {
	a, err := stored.Load(ctx, l.Blobs, t.Adapter, l.WorkDir)
	if err != nil {
		return nil, err
	}
	return &Adapter{PEFT: a.PEFT, Task: a.Manifest.Task, Labels: a.Manifest.Labels, Pooling: a.Manifest.Pooling,
		MaxSeqLen: a.Manifest.MaxSeqLen}, nil
}
