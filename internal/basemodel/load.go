package basemodel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
		var b bytes.Buffer
		if err := checkBlob(io.TeeReader(io.LimitReader(rc, f.Size+1), &b), f); err != nil {
			return nil, fmt.Errorf("base %s: %w", m.Name, err)
		}
		return b.Bytes(), nil
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
	// #nosec G104 -- closing a blob reader after ReadAll; the read error is checked
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
	// MappedBytes of Weights are used in place from the artifact store's
	// files (Map): read-only, and valid until Close.
	MappedBytes int64
	mapped      *safetensors.Mapped
}

// Close releases mapped weights (Map); Weights must not be used after it.
// For a base read by Load it does nothing.
func (l *Loaded) Close() error {
	if l.mapped == nil {
		return nil
	}
	return l.mapped.Close()
}

// PathSource is a Source whose blobs are local files that are never
// modified once stored (blob/local.Store): Map uses them in place.
type PathSource interface {
	Source
	Path(digest string) (string, error)
}

// Map loads the base whose manifest has the given digest for inference: as
// Load, but its safetensors weights are memory-mapped from the artifact
// store's own files (see safetensors.MapDir) instead of being copied and
// read into the heap, so a base costs page cache, shared and reclaimable,
// rather than heap. Every file is checked against its size and digest
// first. The caller must not write the weights, and must Close the base to
// unmap them. Where src has no local files, Map reads the base as Load does.
func Map(ctx context.Context, src Source, digest, workDir string) (*Loaded, error) {
	ps, ok := src.(PathSource)
	if !ok {
		return Load(ctx, src, digest, workDir)
	}
	return load(ctx, src, digest, workDir, func(m *Manifest, dir string) error { return link(ctx, ps, m, dir) })
}

// link fills dir with links named as the manifest names the files, to the
// stored blobs, each checked against its size and digest first.
func link(ctx context.Context, src PathSource, m *Manifest, dir string) error {
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := ValidName(f.Name); err != nil {
			return fmt.Errorf("base %s: %w", m.Name, err)
		}
		path, err := src.Path(f.Digest)
		if err != nil {
			return fmt.Errorf("base %s: %s: %w", m.Name, f.Name, err)
		}
		if err := checkFile(path, f); err != nil {
			return fmt.Errorf("base %s: %w", m.Name, err)
		}
		if err := os.Symlink(path, filepath.Join(dir, f.Name)); err != nil {
			return fmt.Errorf("base %s: %w", m.Name, err)
		}
	}
	return nil
}

// checkFile checks the stored file at path against f's size and, for a
// "sha256:" digest, its hash.
func checkFile(path string, f File) error {
	// #nosec G304 -- path is inside the data dir's content-addressed model store
	r, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	defer r.Close()
	return checkBlob(r, f)
}

// checkBlob reads r to its end and checks it against f's size and, for a
// "sha256:" digest, its hash; the error is errs.Conflict and names the file.
func checkBlob(r io.Reader, f File) error {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	if n != f.Size {
		return errs.Conflict("%s: blob %s has %d bytes, manifest says %d", f.Name, f.Digest, n, f.Size)
	}
	if hexd, ok := strings.CutPrefix(f.Digest, "sha256:"); ok && hex.EncodeToString(h.Sum(nil)) != hexd {
		return errs.Conflict("%s: blob %s does not match its digest", f.Name, f.Digest)
	}
	return nil
}

// Load reads the base whose manifest has the given digest: its files are
// materialized in a temporary folder under workDir ("" for the system's),
// read, and removed.
func Load(ctx context.Context, src Source, digest, workDir string) (*Loaded, error) {
	return load(ctx, src, digest, workDir, nil)
}

// load reads the manifest, lays its files out in a temporary folder under
// workDir with fill (nil: Materialize copies them), and reads the tokenizer
// and the weights from there: mapped when fill links the stored files,
// read into the heap when they are copies.
func load(ctx context.Context, src Source, digest, workDir string, fill func(m *Manifest, dir string) error) (*Loaded, error) {
	m, err := readManifest(ctx, src, digest)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(workDir, "base-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	mapped := fill != nil
	if !mapped {
		fill = func(m *Manifest, dir string) error { return Materialize(ctx, src, m, dir) }
	}
	if err := fill(m, dir); err != nil {
		return nil, err
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("base %s tokenizer: %w", m.Name, err)
	}
	l := &Loaded{Manifest: m, Tokenizer: tok}
	if mapped {
		l.mapped, err = safetensors.MapDir(dir)
		if err == nil {
			l.Weights, l.MappedBytes = l.mapped.Tensors, l.mapped.MappedBytes
		}
	} else {
		l.Weights, err = safetensors.ReadDir(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("base %s weights: %w", m.Name, err)
	}
	return l, nil
}
