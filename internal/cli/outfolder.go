package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/errs"
)

// outFolder writes the files of one export into a local folder, all or
// nothing. The names come from the server, so each must be a plain file
// name as basemodel.ValidName says (no path, no "..", not hidden, no NUL)
// before anything is written under it. Each file goes to a temporary name
// in the folder (hidden, so a later import skips it) and is synced; only
// when every file is complete are they renamed into place, so a refused
// name, a broken transfer or a mismatched digest leaves no new file behind,
// half-written or whole.
type outFolder struct {
	dir     string
	names   map[string]fileState
	pending []pendingFile
}

type fileState uint8

const (
	unclaimed fileState = iota
	claimed             // its name was checked
	written
)

type pendingFile struct{ name, tmp string }

func openOutFolder(dir string) (*outFolder, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &outFolder{dir: dir, names: map[string]fileState{}}, nil
}

// claim checks a name before anything is fetched for it: a name the
// folder must not write, or one already claimed, is refused.
func (o *outFolder) claim(name string) error {
	if err := basemodel.ValidName(name); err != nil {
		return errs.Invalid("export into %s: the server sent a file name that is not a plain file name (%v); nothing was written", o.dir, err)
	}
	if o.names[name] != unclaimed {
		return errs.Invalid("export into %s: the server sent file %q twice; nothing was written", o.dir, name)
	}
	o.names[name] = claimed
	return nil
}

// write copies r into a temporary file for name (claiming it first if
// need be). want is the size the
// server announced (-1: none), digest its "sha256:…" (empty: none); a
// file that differs is refused.
func (o *outFolder) write(name string, r io.Reader, want int64, digest string) error {
	switch o.names[name] {
	case unclaimed:
		if err := o.claim(name); err != nil {
			return err
		}
	case written:
		return errs.Invalid("export into %s: the server sent file %q twice; nothing was written", o.dir, name)
	}
	o.names[name] = written
	f, err := os.CreateTemp(o.dir, ".tailor-export-*")
	if err != nil {
		return err
	}
	o.pending = append(o.pending, pendingFile{name: name, tmp: f.Name()})
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	if want >= 0 && n != want {
		return errs.Invalid("export %s: received %d bytes, the server announced %d; nothing was written", name, n, want)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); digest != "" && got != digest {
		return errs.Invalid("export %s: received content with digest %s, the server announced %s; nothing was written", name, got, digest)
	}
	return os.Chmod(f.Name(), 0o644)
}

// commit renames every written file into place, in the order written.
func (o *outFolder) commit() error {
	for i, p := range o.pending {
		if err := os.Rename(p.tmp, filepath.Join(o.dir, p.name)); err != nil {
			o.pending = o.pending[i:]
			return err
		}
	}
	o.pending = nil
	return nil
}

// discard removes what was not committed; it is safe after commit.
func (o *outFolder) discard() {
	for _, p := range o.pending {
		// #nosec G104 -- best-effort removal of an uncommitted temp file; it may already be gone
		os.Remove(p.tmp)
	}
	o.pending = nil
}

// tarCounter counts the bytes a tar reader takes from its stream, so the
// stream can be told to have ended with its end-of-archive marker and not
// merely at an entry boundary, which archive/tar also reads as io.EOF.
// archive/tar reads a header or an entry's data and padding, never ahead.
type tarCounter struct {
	r io.Reader
	n int64
}

func (t *tarCounter) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += int64(n)
	return n, err
}

// endedAfter reports whether the stream, read to the io.EOF of Next, held
// the end-of-archive marker (two 512-byte blocks, zero, or Next would have
// failed) right after the entry ending at offset end (its data padded to
// a block).
func (t *tarCounter) endedAfter(end int64) bool { return t.n == end+1024 }

// paddedEnd is where the entry whose data ended at offset n ends.
func paddedEnd(n int64) int64 { return (n + 511) / 512 * 512 }

// brokenTransfer words a failed read of what the server sends (a cut
// connection, a tar stream that ends inside an entry) as what it is, a
// transfer to retry, unlike a failed write to the folder.
type brokenTransfer struct{ r io.Reader }

func (b brokenTransfer) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = errs.Unavailable("the transfer broke: %v; nothing was written: retry", err)
	}
	return n, err
}
