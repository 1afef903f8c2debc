package basemodel

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Source opens stored blobs by digest; blob.Store satisfies it.
type Source interface {
	Open(ctx context.Context, digest string) (io.ReadCloser, error)
}

// Materialize writes the manifest's files into dir (created if needed).
// Each file is written to a temporary name, checked against its size and,
// for "sha256:" digests, its hash, then renamed into place, so dir never
// holds a partial or corrupt file under a manifest name.
func Materialize(ctx context.Context, src Source, m *Manifest, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("materialize %s: %w", m.Name, err)
	}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := ValidName(f.Name); err != nil {
			return fmt.Errorf("materialize %s: %w", m.Name, err)
		}
		if err := materializeFile(ctx, src, f, dir); err != nil {
			return fmt.Errorf("materialize %s: %w", m.Name, err)
		}
	}
	return nil
}

func materializeFile(ctx context.Context, src Source, f File, dir string) error {
	rc, err := src.Open(ctx, f.Digest)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(dir, ".tmp-"+f.Name+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = checkBlob(io.TeeReader(rc, tmp), f)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, f.Name))
}

// ParseManifest decodes a stored manifest and checks its file names.
func ParseManifest(src []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(src, &m); err != nil {
		return nil, errs.Invalid("base model manifest: %v", err)
	}
	if m.Fingerprint == "" || len(m.Files) == 0 {
		return nil, errs.Invalid("base model manifest: fields \"fingerprint\" and \"files\" are required")
	}
	for i, f := range m.Files {
		if err := ValidName(f.Name); err != nil {
			return nil, errs.Invalid("base model manifest: files[%d]: %v", i, err)
		}
	}
	return &m, nil
}
