// Package adapter owns the stored form of a trained adapter: the PEFT files
// (adapter_config.json, adapter_model.safetensors) in the artifact store and
// the manifest that lists them with what serving and evaluation need (task,
// class labels, head pooling, base, run key). The manifest's blob digest is
// a run's result and a model version's adapter.
//
// It imports basemodel (file lists, materialization), engine/peft and errs.
package adapter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/peft"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Format is the manifest format this package writes and reads.
const Format = "peft-lora"

// Manifest lists a stored adapter's files and what it was trained for.
type Manifest struct {
	Format  string           `json:"format"` // Format
	Task    string           `json:"task"`   // classify, sft, pretrain
	Base    string           `json:"base"`   // base version id (fingerprint)
	RunKey  string           `json:"run_key,omitempty"`
	Labels  []string         `json:"labels,omitempty"`  // class labels, in head order
	Pooling string           `json:"pooling,omitempty"` // classification head pooling
	Files   []basemodel.File `json:"files"`
	Trained []string         `json:"trained,omitempty"` // trained tensor names
	// MaxSeqLen is the token count training cut inputs to (the recipe's
	// max_seq_len within the base's positions); serving cuts the same way.
	// 0 in manifests written before it was recorded.
	MaxSeqLen int `json:"max_seq_len,omitempty"`
}

// ParseManifest decodes and checks a manifest.
func ParseManifest(raw []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errs.Invalid("adapter manifest: %v", err)
	}
	if m.Format != Format {
		return nil, errs.Invalid("adapter manifest: field \"format\" is %q, want %q", m.Format, Format)
	}
	if len(m.Files) == 0 {
		return nil, errs.Invalid("adapter manifest: field \"files\" is empty")
	}
	for i, f := range m.Files {
		if err := basemodel.ValidName(f.Name); err != nil {
			return nil, errs.Invalid("adapter manifest: files[%d]: %v", i, err)
		}
	}
	if len(m.Labels) == 1 {
		return nil, errs.Invalid("adapter manifest: field \"labels\" has one label; a classifier needs at least two")
	}
	return &m, nil
}

// Store is where adapters live: blob.Store satisfies it.
type Store interface {
	basemodel.Source
	Put(ctx context.Context, r io.Reader) (string, int64, error)
}

// Write writes a through PEFT into dir, stores the files and then the
// manifest m (its Files filled in), and returns the manifest's digest.
// Tensor names without the PEFT prefix get it.
func Write(ctx context.Context, st Store, dir string, a *peft.Adapter, m Manifest) (string, error) {
	named := &peft.Adapter{Config: a.Config, Tensors: map[string]engine.Tensor{}}
	for name, t := range a.Tensors {
		if !strings.HasPrefix(name, peft.Prefix) {
			name = peft.Prefix + name
		}
		named.Tensors[name] = t
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := peft.Write(dir, named); err != nil {
		return "", fmt.Errorf("write adapter: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	m.Format, m.Files = Format, nil
	for _, en := range entries {
		// #nosec G304 -- a regular entry of the adapter folder being listed, not a request path
		f, err := os.Open(filepath.Join(dir, en.Name()))
		if err != nil {
			return "", err
		}
		d, n, err := st.Put(ctx, f)
		// #nosec G104 -- closing a file opened for reading; the Put result is what counts
		f.Close()
		if err != nil {
			return "", err
		}
		m.Files = append(m.Files, basemodel.File{Name: en.Name(), Digest: d, Size: n})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	d, _, err := st.Put(ctx, strings.NewReader(string(raw)))
	return d, err
}

// Loaded is a stored adapter read back into memory.
type Loaded struct {
	Manifest *Manifest
	PEFT     *peft.Adapter
}

// Load reads the adapter whose manifest has the given digest, materializing
// its files in a temporary folder under workDir ("" for the system's).
func Load(ctx context.Context, src basemodel.Source, digest, workDir string) (*Loaded, error) {
	m, err := ReadManifest(ctx, src, digest)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(workDir, "adapter-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := basemodel.Materialize(ctx, src, &basemodel.Manifest{Name: "adapter", Files: m.Files}, dir); err != nil {
		return nil, err
	}
	a, err := peft.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", digest, err)
	}
	return &Loaded{Manifest: m, PEFT: a}, nil
}

// ReadManifest reads and checks the adapter manifest with the given
// digest, without reading the files it names.
func ReadManifest(ctx context.Context, src basemodel.Source, digest string) (*Manifest, error) {
	raw, err := readBlob(ctx, src, digest)
	if err != nil {
		return nil, fmt.Errorf("adapter %s manifest: %w", digest, err)
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", digest, err)
	}
	return m, nil
}

func readBlob(ctx context.Context, src basemodel.Source, digest string) ([]byte, error) {
	if digest == "" {
		return nil, errs.Invalid("no manifest digest")
	}
	rc, err := src.Open(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 64<<20))
}
