package corpus

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// maxEntryBytes bounds one tarball entry read into memory (the largest file
// in the pinned packages is about 1.2 MB).
const maxEntryBytes = 64 << 20

// entryName returns the cleaned, slash-separated name of a tar entry, or an
// error when the name is absolute or climbs out of the archive root.
func entryName(name string) (string, error) {
	n := strings.ReplaceAll(name, `\`, "/")
	if n == "" || strings.HasPrefix(n, "/") || (len(n) >= 2 && n[1] == ':') {
		return "", errs.Invalid("entry %q: absolute path", name)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", errs.Invalid("entry %q: path traversal (\"..\")", name)
		}
	}
	c := path.Clean(n)
	if c == "." {
		return "", errs.Invalid("entry %q: empty path", name)
	}
	return c, nil
}

// walkTarball calls fn for each regular file in the gzip-compressed tar
// stream r, in archive order, with its cleaned name and contents. Directory
// entries are skipped; links, devices and unsafe names are errors.
func walkTarball(r io.Reader, fn func(name string, data []byte) error) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return errs.Invalid("gzip: %v", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errs.Invalid("tar: %v", err)
		}
		name, err := entryName(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		case tar.TypeReg: // the reader turns the legacy TypeRegA into TypeReg (or TypeDir)
		default:
			return errs.Invalid("entry %q: unsupported type %q (only regular files and directories)", h.Name, h.Typeflag)
		}
		if h.Size > maxEntryBytes {
			return errs.Invalid("entry %q: %d bytes, over the %d byte limit", h.Name, h.Size, maxEntryBytes)
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxEntryBytes+1))
		if err != nil {
			return errs.Invalid("entry %q: %v", h.Name, err)
		}
		if err := fn(name, data); err != nil {
			return err
		}
	}
}

// ReadTarball reads every regular file of a gzip-compressed tar stream into
// memory, keyed by cleaned slash-separated name ("package/data/x.txt").
// Absolute names, ".." components, links and special files are errors that
// name the entry.
func ReadTarball(r io.Reader) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := walkTarball(r, func(name string, data []byte) error {
		if _, dup := files[name]; dup {
			return errs.Invalid("entry %q: duplicate name", name)
		}
		files[name] = data
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

// ExtractTarball writes the regular files of a gzip-compressed tar stream
// under dir, creating directories as needed. It applies the checks of
// ReadTarball before writing anything for an entry, so no file is ever
// created outside dir.
func ExtractTarball(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	defer root.Close()
	return walkTarball(r, func(name string, data []byte) error {
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(filepath.FromSlash(d), 0o755); err != nil {
				return fmt.Errorf("extract %q: %w", name, err)
			}
		}
		if err := root.WriteFile(filepath.FromSlash(name), data, 0o644); err != nil {
			return fmt.Errorf("extract %q: %w", name, err)
		}
		return nil
	})
}
