package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/blob/blobtest"
	"github.com/tailor-ml/tailor/internal/errs"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// corrupt flips a byte of the stored file through Path.
func corrupt(t *testing.T, s blob.Store, d blob.Digest) {
	t.Helper()
	p, err := s.(*Store).Path(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return openTemp(t) }, blobtest.WithCorrupt(corrupt))
}

func TestLayout(t *testing.T) {
	s := openTemp(t)
	data := []byte("layout")
	d, _, err := s.Put(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	hexPart := strings.TrimPrefix(d, "sha256:")
	want := filepath.Join(s.Dir(), "sha256", hexPart[:2], hexPart)
	p, err := s.Path(d)
	if err != nil || p != want {
		t.Fatalf("Path = %q, %v; want %q", p, err, want)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o222 != 0 {
		t.Errorf("blob file mode %v is writable", fi.Mode())
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(entries) != 0 {
		t.Errorf("Put left %d temp files", len(entries))
	}
	if _, err := s.Path(blobtest.Digest([]byte("missing"))); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("Path(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.Path("sha256:../../etc"); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("Path(bad) = %v, want ErrInvalid", err)
	}
}

// An existing blob is never replaced, even when its file differs.
func TestNoOverwrite(t *testing.T) {
	s := openTemp(t)
	data := []byte("original")
	d, _, err := s.Put(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	corrupt(t, s, d)
	p, _ := s.Path(d)
	before, _ := os.ReadFile(p)
	if _, _, err := s.Put(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(p)
	if !bytes.Equal(before, after) {
		t.Error("second Put overwrote the existing blob file")
	}
}

func TestOpenCleansTemp(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	leftover := filepath.Join(tmp, "put-crashed")
	if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A temp file a live writer holds must survive.
	live := filepath.Join(tmp, "put-live")
	f, err := os.Create(live)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if runtime.GOOS != "windows" {
		if err := lockFile(f, true); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(tmp, "not-ours")
	if err := os.WriteFile(other, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover temp file still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("locked temp file removed: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("unrelated file removed: %v", err)
	}
}

func TestListSkipsForeignFiles(t *testing.T) {
	s := openTemp(t)
	d, _, err := s.Put(context.Background(), strings.NewReader("real"))
	if err != nil {
		t.Fatal(err)
	}
	junk := []string{"sha256/zz/file", "sha256/ab/short", "sha256/README"}
	for _, j := range junk {
		p := filepath.Join(s.Dir(), j)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := s.List(context.Background(), func(x blob.Digest, _ int64) error { got = append(got, x); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != d {
		t.Errorf("List = %v, want [%s]", got, d)
	}
}

// Put streams: storing 64 MiB allocates far less than 64 MiB.
func TestPutBoundedMemory(t *testing.T) {
	s := openTemp(t)
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, _, err := s.Put(context.Background(), &zeroReader{left: size}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
		t.Errorf("Put of %d bytes allocated %d bytes", size, alloc)
	}
}

type zeroReader struct{ left int }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), z.left)
	clear(p[:n])
	z.left -= n
	return n, nil
}

func FuzzParseDigest(f *testing.F) {
	for _, d := range blobtest.InvalidDigests {
		f.Add(d)
	}
	f.Add(blobtest.Digest([]byte("x")))
	f.Add("sha256:" + strings.Repeat("0", 64))
	dir := filepath.Join(string(filepath.Separator), "blobs")
	s := &Store{dir: dir}
	f.Fuzz(func(t *testing.T, d string) {
		h, err := blob.ParseDigest(d)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("ParseDigest(%q) error %v is not ErrInvalid", d, err)
			}
			return
		}
		if "sha256:"+h != d || len(h) != 64 {
			t.Fatalf("ParseDigest(%q) = %q", d, h)
		}
		p, err := s.path(d)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Clean(p) != p || !strings.HasPrefix(p, filepath.Join(dir, "sha256")+string(filepath.Separator)) {
			t.Fatalf("path(%q) = %q escapes the store", d, p)
		}
	})
}
