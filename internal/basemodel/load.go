package basemodel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/errs"
)

// LoadTokenizer reads only the tokenizer of the base whose manifest has the
// given digest (tokenizer.json and, when stored, tokenizer_config.json),
// each checked against its size and digest: what a process that tokenizes
// but runs no model needs.
func LoadTokenizer(ctx context.Context, src Source, digest string) (*tokenizer.Tokenizer, error) {
	m, err := readManifest(ctx, src, digest)
	if err != nil {
		return nil, err
	}
	read := func(name string) ([]byte, error) {
		f, ok := m.File(name)
		if !ok {
			return nil, nil
		}
		rc, err := src.Open(ctx, f.Digest)
		if err != nil {
			return nil, fmt.Errorf("base %s: %s: %w", m.Name, name, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, f.Size+1))
		if err != nil {
			return nil, fmt.Errorf("base %s: %s: %w", m.Name, name, err)
		}
		if int64(len(b)) != f.Size {
			return nil, errs.Conflict("base %s: %s: blob %s has %d bytes, manifest says %d", m.Name, name, f.Digest, len(b), f.Size)
		}
		if hexd, ok := strings.CutPrefix(f.Digest, "sha256:"); ok {
			if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hexd {
				return nil, errs.Conflict("base %s: %s: blob %s does not match its digest", m.Name, name, f.Digest)
			}
		}
		return b, nil
	}
	tj, err := read("tokenizer.json")
	if err != nil {
		return nil, err
	}
	if tj == nil {
		return nil, errs.NotFound("base %s has no tokenizer.json", m.Name)
	}
	cj, err := read("tokenizer_config.json")
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(tj, cj)
	if err != nil {
		return nil, fmt.Errorf("base %s tokenizer: %w", m.Name, err)
	}
	return tok, nil
}

func readManifest(ctx context.Context, src Source, digest string) (*Manifest, error) {
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
	return m, nil
}

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
	m, err := readManifest(ctx, src, digest)
	if err != nil {
		return nil, err
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
