// Package local is the embedded blob.Store: a content-addressed directory on
// the local file system.
//
// Layout:
//
//	<dir>/sha256/ab/<64 hex>   one read-only file per blob, named by its digest
//	<dir>/tmp/put-*            writes in progress
//
// Put streams into a temp file under <dir>/tmp while hashing (bounded memory,
// any size), fsyncs it, hard-links it into place (never replacing an existing
// blob) and fsyncs the directory. Each writer holds an advisory lock on its
// temp file, so Open can remove temp files left behind by a crashed process
// while other processes (the server and its workers) use the same directory.
// This package imports only internal/blob and internal/errs.
package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/errs"
)

const (
	algo      = "sha256"
	prefix    = algo + ":"
	tmpPrefix = "put-"
	copyBuf   = 1 << 20
)

var (
	_ blob.Store   = (*Store)(nil)
	_ blob.Toucher = (*Store)(nil)
)

// Store is a blob store rooted at one directory. It is safe for concurrent
// use by several goroutines and several processes.
type Store struct {
	dir string
}

// Open creates dir's layout if needed, removes temp files that no live
// writer holds, and returns the store.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errs.Invalid("blob store: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob store %s: %w", dir, err)
	}
	s := &Store{dir: abs}
	for _, d := range []string{s.objectsDir(), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blob store %s: %w", abs, err)
		}
	}
	if err := s.cleanTemp(); err != nil {
		return nil, fmt.Errorf("blob store %s: clean temp files: %w", abs, err)
	}
	return s, nil
}

// Dir returns the store's root directory (absolute).
func (s *Store) Dir() string { return s.dir }

// Path returns the local file path of blob d, for zero-copy reads by a worker
// process. The file must not be modified.
func (s *Store) Path(d blob.Digest) (string, error) {
	p, err := s.path(d)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", s.statErr(d, err)
	}
	return p, nil
}

func (s *Store) objectsDir() string { return filepath.Join(s.dir, algo) }
func (s *Store) tmpDir() string     { return filepath.Join(s.dir, "tmp") }

func (s *Store) path(d blob.Digest) (string, error) {
	h, err := blob.ParseDigest(d)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.objectsDir(), h[:2], h), nil
}

func (s *Store) statErr(d blob.Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errs.NotFound("blob %s: not found", d)
	}
	return fmt.Errorf("blob %s: %w", d, err)
}

// Put stores the bytes of r and returns their digest and size.
func (s *Store) Put(ctx context.Context, r io.Reader) (blob.Digest, int64, error) {
	f, err := s.createTemp()
	if err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	tmp := f.Name()
	defer func() {
		// The blob, if any, is linked in place by now; drop the temp name
		// first and release the lock (by closing) last.
		_ = os.Remove(tmp)
		_ = f.Close()
	}()

	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx: ctx, r: r}, make([]byte, copyBuf))
	if err != nil {
		return "", 0, fmt.Errorf("put blob: after %d bytes: %w", n, err)
	}
	d := prefix + hex.EncodeToString(h.Sum(nil))
	if err := f.Chmod(0o444); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", d, err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("put blob %s: sync: %w", d, err)
	}
	if err := s.install(tmp, d); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", d, err)
	}
	return d, n, nil
}

// createTemp creates a locked temp file. If Open's cleanup removed the file
// between its creation and our lock, it starts again with a fresh one.
func (s *Store) createTemp() (*os.File, error) {
	for {
		f, err := os.CreateTemp(s.tmpDir(), tmpPrefix+"*")
		if err != nil {
			return nil, err
		}
		if err := lockFile(f, true); err != nil {
			_ = os.Remove(f.Name())
			_ = f.Close()
			return nil, fmt.Errorf("lock temp file: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		pi, err := os.Stat(f.Name())
		if err == nil && os.SameFile(fi, pi) {
			return f, nil
		}
		_ = f.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
}

// install links tmp to d's path, keeping an existing blob untouched.
func (s *Store) install(tmp string, d blob.Digest) error {
	final, err := s.path(d)
	if err != nil {
		return err
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err = os.Link(tmp, final)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		// Same bytes already stored: mark them written now, so a
		// collection's grace period protects them like new ones (not
		// possible on a blob another user owns; then it stays as it is).
		if err := touch(final); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
		return nil
	default:
		// File systems without hard links: rename unless already present.
		if _, serr := os.Stat(final); serr == nil {
			return nil
		}
		if rerr := os.Rename(tmp, final); rerr != nil {
			return fmt.Errorf("link: %v; rename: %w", err, rerr)
		}
	}
	return syncDir(dir)
}

// Open returns a reader of blob d.
func (s *Store) Open(ctx context.Context, d blob.Digest) (io.ReadCloser, error) {
	p, err := s.pathFor(ctx, d)
	if err != nil {
		return nil, err
	}
	// #nosec G304 -- path is derived from a validated digest under the blob root
	f, err := os.Open(p)
	if err != nil {
		return nil, s.statErr(d, err)
	}
	return f, nil
}

// Stat returns the size of blob d.
func (s *Store) Stat(ctx context.Context, d blob.Digest) (int64, error) {
	fi, err := s.info(ctx, d)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// ModTime returns when blob d was last written (or found already stored
// by a Put, or touched).
func (s *Store) ModTime(ctx context.Context, d blob.Digest) (time.Time, error) {
	fi, err := s.info(ctx, d)
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// info stats blob d.
func (s *Store) info(ctx context.Context, d blob.Digest) (fs.FileInfo, error) {
	p, err := s.pathFor(ctx, d)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, s.statErr(d, err)
	}
	return fi, nil
}

// pathFor is blob d's path, unless ctx is done.
func (s *Store) pathFor(ctx context.Context, d blob.Digest) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return s.path(d)
}

// Touch marks blob d as written now: a writer about to refer to a blob it
// found already stored touches it, so garbage collection's grace period
// covers it until the reference is recorded.
func (s *Store) Touch(ctx context.Context, d blob.Digest) error {
	p, err := s.pathFor(ctx, d)
	if err != nil {
		return err
	}
	if err := touch(p); err != nil {
		return s.statErr(d, err)
	}
	return nil
}

func touch(path string) error {
	now := time.Now()
	return os.Chtimes(path, now, now)
}

// List calls fn for every blob in digest order; an error from fn stops the
// walk and is returned.
func (s *Store) List(ctx context.Context, fn func(d blob.Digest, size int64) error) error {
	shards, err := os.ReadDir(s.objectsDir()) // sorted by name
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, shard := range shards {
		if !shard.IsDir() || !blob.IsHex(shard.Name(), 2) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(s.objectsDir(), shard.Name()))
		if err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		for _, f := range files {
			name := f.Name()
			if !f.Type().IsRegular() || !blob.IsHex(name, 64) || name[:2] != shard.Name() {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			info, err := f.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted during the walk
			}
			if err != nil {
				return fmt.Errorf("list blobs: %w", err)
			}
			if err := fn(prefix+name, info.Size()); err != nil {
				return err
			}
		}
	}
	return nil
}

// Verify re-hashes blob d; a mismatch wraps errs.ErrConflict.
func (s *Store) Verify(ctx context.Context, d blob.Digest) error {
	rc, err := s.Open(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, ctxReader{ctx: ctx, r: rc}, make([]byte, copyBuf)); err != nil {
		return fmt.Errorf("verify blob %s: %w", d, err)
	}
	if got := prefix + hex.EncodeToString(h.Sum(nil)); got != d {
		return errs.Conflict("verify blob: expected %s, content has %s", d, got)
	}
	return nil
}

// Delete removes blob d; a missing blob is not an error.
func (s *Store) Delete(ctx context.Context, d blob.Digest) error {
	p, err := s.pathFor(ctx, d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return syncDir(filepath.Dir(p))
}

// cleanTemp removes temp files that no live writer has locked.
func (s *Store) cleanTemp() error {
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tmpPrefix) || !e.Type().IsRegular() {
			continue
		}
		if err := removeUnlocked(filepath.Join(s.tmpDir(), e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// removeUnlocked removes path if no other process holds its lock. The lock
// is held across the removal so a writer that raced us sees its name gone.
func removeUnlocked(path string) error {
	// #nosec G304 -- path is a blob or temp file under the blob root
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lockFile(f, false); err != nil {
		if errors.Is(err, errLocked) {
			return nil // a live writer owns it
		}
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func syncDir(dir string) error {
	// #nosec G304 -- a directory under the blob root, opened only to fsync it
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
