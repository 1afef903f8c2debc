package basemodel

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Entry is one file of a model folder.
type Entry struct {
	Name string    // plain base name, checked by Import
	Size int64     // bytes Body yields
	Body io.Reader // valid until the next call to Next
}

// FileSource yields the files of a model folder one at a time; Next returns
// io.EOF after the last one.
type FileSource interface {
	Next() (Entry, error)
}

// ValidName reports whether name is a plain file name Import accepts: not
// empty, no path separators, no NUL, not "." or "..", not hidden (leading
// "."), at most 255 bytes. The error is errs.Invalid and names the entry.
func ValidName(name string) error {
	switch {
	case name == "":
		return errs.Invalid("entry with an empty name")
	case len(name) > 255:
		return errs.Invalid("entry %q: name longer than 255 bytes", name)
	case strings.ContainsRune(name, 0):
		return errs.Invalid("entry %q: name contains a NUL byte", name)
	case strings.ContainsAny(name, `/\`) || filepath.IsAbs(name):
		return errs.Invalid("entry %q: only plain file names are accepted, not paths or subdirectories", name)
	case strings.HasPrefix(name, "."):
		return errs.Invalid("entry %q: names starting with \".\" (hidden files, \"..\") are not accepted", name)
	}
	return nil
}

// DirSource reads the regular files of a local folder in name order.
// Subdirectories, symbolic links and other special files are refused.
type DirSource struct {
	dir   string
	names []string
	cur   *os.File
}

// NewDirSource lists dir. Close it when done.
func NewDirSource(dir string) (*DirSource, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("model folder %s: %w", dir, err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return &DirSource{dir: dir, names: names}, nil
}

// Next opens the next file.
func (d *DirSource) Next() (Entry, error) {
	// #nosec G104 -- closes the previous read-only file; its content was already read
	d.Close()
	if len(d.names) == 0 {
		return Entry{}, io.EOF
	}
	name := d.names[0]
	d.names = d.names[1:]
	if err := ValidName(name); err != nil {
		return Entry{}, fmt.Errorf("model folder %s: %w", d.dir, err)
	}
	path := filepath.Join(d.dir, name)
	st, err := os.Lstat(path)
	if err != nil {
		return Entry{}, fmt.Errorf("model folder %s: %w", d.dir, err)
	}
	if !st.Mode().IsRegular() {
		return Entry{}, errs.Invalid("model folder %s: entry %q is a %s, not a regular file", d.dir, name, kindOf(st.Mode()))
	}
	// #nosec G304 -- a regular file (Lstat-checked) named by the model folder the operator chose
	f, err := os.Open(path)
	if err != nil {
		return Entry{}, fmt.Errorf("model folder %s: %w", d.dir, err)
	}
	d.cur = f
	return Entry{Name: name, Size: st.Size(), Body: f}, nil
}

// Close closes the file last returned by Next.
func (d *DirSource) Close() error {
	if d.cur == nil {
		return nil
	}
	err := d.cur.Close()
	d.cur = nil
	return err
}

func kindOf(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "subdirectory"
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}

// TarSource reads a tar stream of a model folder: regular-file entries with
// plain names only. PAX global headers are skipped; directories, links,
// devices and path names are refused with an error naming the entry.
type TarSource struct {
	tr *tar.Reader
}

// NewTarSource reads the tar stream r (uncompressed).
func NewTarSource(r io.Reader) *TarSource { return &TarSource{tr: tar.NewReader(r)} }

// Next returns the next file entry.
func (t *TarSource) Next() (Entry, error) {
	for {
		h, err := t.tr.Next()
		if errors.Is(err, io.EOF) {
			return Entry{}, io.EOF
		}
		if err != nil && errs.Kind(err) != "internal" {
			return Entry{}, fmt.Errorf("tar stream: %w", err) // the request body's own error
		}
		if err != nil {
			return Entry{}, errs.Invalid("tar stream: %v", err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if err := ValidName(h.Name); err != nil {
			return Entry{}, fmt.Errorf("tar stream: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			return Entry{}, errs.Invalid("tar stream: entry %q is not a regular file (type %q)", h.Name, h.Typeflag)
		}
		return Entry{Name: h.Name, Size: h.Size, Body: tarBody{name: h.Name, size: h.Size, r: t.tr}}, nil
	}
}

// tarBody reads one entry; a stream that ends inside the entry is invalid
// input naming the entry, not an internal error.
type tarBody struct {
	name string
	size int64
	r    io.Reader
}

func (b tarBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == nil || errors.Is(err, io.EOF) || errs.Kind(err) != "internal" {
		return n, err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return n, errs.Invalid("tar stream: entry %q (%d bytes): the stream ends inside it (truncated tar?)", b.name, b.size)
	}
	return n, errs.Invalid("tar stream: entry %q: %v", b.name, err)
}
