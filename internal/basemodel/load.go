package basemodel

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Loaded is a stored base model read into memory.
type Loaded struct {
	Manifest  *Manifest
	Weights   map[string]engine.Tensor // f32, Hugging Face names
	Tokenizer *tokenizer.Tokenizer
}

// Load reads the base whose manifest has the given digest: its files are
// materialized in a temporary folder under workDir ("" for the system's),
// read, and removed.
func Load(ctx context.Context, src Source, digest, workDir string) (*Loaded, error) {
	if digest == "" {
		return nil, errs.Invalid("base: no manifest digest")
	}
	rc, err := src.Open(ctx, digest)
	if err != nil {
		return nil, fmt.Errorf("base manifest %s: %w", digest, err)
	}
	raw, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	rc.Close()
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", digest, err)
	}
	dir, err := os.MkdirTemp(workDir, "base-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := Materialize(ctx, src, m, dir); err != nil {
		return nil, err
	}
	w, err := safetensors.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("base %s weights: %w", m.Name, err)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("base %s tokenizer: %w", m.Name, err)
	}
	return &Loaded{Manifest: m, Weights: w, Tokenizer: tok}, nil
}
