package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/blob/blobtest"
	"github.com/tailor-ml/tailor/internal/blob/s3/s3test"
	"github.com/tailor-ml/tailor/internal/errs"
)

// server is the versitygw every test in this package shares; each store
// gets a bucket of its own.
var server *s3test.Server

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tailor-s3-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server, err = s3test.Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	server.Close()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// options returns the options of a store in a fresh bucket of the server.
func options(t *testing.T) Options {
	t.Helper()
	bucket, err := server.NewBucket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return Options{Endpoint: server.Endpoint, Bucket: bucket, Prefix: "tailor/blobs",
		AccessKeyID: server.AccessKey, SecretAccessKey: server.SecretKey, PathStyle: true}
}

func open(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// corrupt flips the first byte of the object in versitygw's posix
// directory, behind the S3 API's back, as a failing disk would.
func corrupt(t *testing.T, bs blob.Store, d blob.Digest) {
	t.Helper()
	s := bs.(*Store)
	key, err := s.Key(d)
	if err != nil {
		t.Fatal(err)
	}
	p := server.Path(s.Bucket(), key)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("corrupt: %v", err)
	}
	b[0] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return open(t, options(t)) },
		blobtest.WithCorrupt(corrupt),
		blobtest.WithReadIntegrity(),
		// Above the default 16 MiB part, and not a whole number of parts.
		blobtest.WithLargeSize(40<<20+12345))
}

// TestMultipart: a blob larger than a part goes up as a multipart upload
// into a temp object, is copied server-side to its digest's key, and
// leaves no temp object behind; a small one is a single PUT.
func TestMultipart(t *testing.T) {
	ctx := context.Background()
	var c s3test.Counter
	o := options(t)
	o.PartSize = MinPartSize
	o.Transport = &c
	s := open(t, o)

	const size = 3*MinPartSize + 4321
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i/1000)
	}
	c.Reset()
	d, n, err := s.Put(ctx, bytes.NewReader(data))
	if err != nil || n != size || d != blobtest.Digest(data) {
		t.Fatalf("Put = %s, %d, %v", d, n, err)
	}
	if c.Get("create-multipart") != 1 || c.Get("upload-part") != 4 || c.Get("complete-multipart") != 1 || c.Get("copy") != 1 {
		t.Errorf("requests: create %d, parts %d, complete %d, copy %d; want 1, 4, 1, 1",
			c.Get("create-multipart"), c.Get("upload-part"), c.Get("complete-multipart"), c.Get("copy"))
	}
	rc, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), not byte-identical to the %d put", len(got), err, size)
	}
	assertNoTemp(t, s)

	c.Reset()
	small := []byte("one request")
	if _, _, err := s.Put(ctx, bytes.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	if c.Get("put") != 1 || c.Get("create-multipart") != 0 || c.Get("copy") != 0 {
		t.Errorf("small Put: put %d, multipart %d, copy %d; want 1, 0, 0", c.Get("put"), c.Get("create-multipart"), c.Get("copy"))
	}
}

// assertNoTemp checks that no temp object and no multipart upload is left.
func assertNoTemp(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if !strings.HasPrefix(obj.Key, s.objectsPrefix()) {
			t.Errorf("object %s left outside the blob prefix", obj.Key)
		}
	}
	for up := range s.client.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
		if up.Err != nil {
			t.Fatal(up.Err)
		}
		t.Errorf("incomplete multipart upload %s left for %s", up.UploadID, up.Key)
	}
}

// failingReader yields left zero bytes, then errBroken (io.EOF with eof).
type failingReader struct {
	left int
	eof  bool
}

var errBroken = errors.New("source broke")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.left == 0 {
		if f.eof {
			return 0, io.EOF
		}
		return 0, errBroken
	}
	n := min(len(p), f.left)
	clear(p[:n])
	f.left -= n
	return n, nil
}

// A Put whose source fails midway, after some parts went up, stores
// nothing and leaves no temp object or upload behind.
func TestFailedLargePut(t *testing.T) {
	o := options(t)
	o.PartSize = MinPartSize
	s := open(t, o)
	_, _, err := s.Put(context.Background(), &failingReader{left: 2*MinPartSize + 10})
	if !errors.Is(err, errBroken) {
		t.Fatalf("Put = %v, want the source's error", err)
	}
	if err := s.List(context.Background(), func(d blob.Digest, _ int64) error { return fmt.Errorf("blob %s listed", d) }); err != nil {
		t.Error(err)
	}
	assertNoTemp(t, s)
}

// cancelingReader cancels its context once it has yielded after bytes.
type cancelingReader struct {
	after  int
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	if c.after <= 0 {
		return 0, errors.New("read after cancel: Put did not stop")
	}
	n := min(len(p), c.after)
	clear(p[:n])
	c.after -= n
	if c.after == 0 {
		c.cancel()
	}
	return n, nil
}

// A Put canceled after parts went up aborts its upload on a fresh context:
// nothing stored, nothing left behind.
func TestCanceledLargePut(t *testing.T) {
	o := options(t)
	o.PartSize = MinPartSize
	s := open(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, err := s.Put(ctx, &cancelingReader{after: 2*MinPartSize + 10, cancel: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	assertNoTemp(t, s)
}

// Two stores on one bucket with different prefixes do not see each other.
func TestPrefixIsolation(t *testing.T) {
	ctx := context.Background()
	o := options(t)
	a := open(t, o)
	o.Prefix = "other"
	b := open(t, o)
	d, _, err := a.Put(ctx, strings.NewReader("only in a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, d); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("Stat in the other prefix = %v, want ErrNotFound", err)
	}
	if key, _ := a.Key(d); !strings.HasPrefix(key, "tailor/blobs/sha256/") {
		t.Errorf("Key = %q, want it under tailor/blobs/sha256/", key)
	}
}

func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	good := options(t)
	tests := []struct {
		name string
		edit func(*Options)
		kind error
	}{
		{"no bucket", func(o *Options) { o.Bucket = "" }, errs.ErrInvalid},
		{"missing bucket", func(o *Options) { o.Bucket = "no-such-bucket-here" }, errs.ErrNotFound},
		{"bad endpoint", func(o *Options) { o.Endpoint = "ftp://x" }, errs.ErrInvalid},
		{"endpoint with path", func(o *Options) { o.Endpoint = server.Endpoint + "/x" }, errs.ErrInvalid},
		{"small part", func(o *Options) { o.PartSize = 1 << 20 }, errs.ErrInvalid},
		{"dot-dot prefix", func(o *Options) { o.Prefix = "a/../b" }, errs.ErrInvalid},
		{"wrong secret", func(o *Options) { o.SecretAccessKey = "wrong" }, errs.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			_, err := New(ctx, o)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("New = %v, want %v", err, tc.kind)
			}
		})
	}
}

// The server honours If-None-Match: a write that lost a race to the same
// key never replaces what the winner stored.
func TestConditionalPutNeverReplaces(t *testing.T) {
	ctx := context.Background()
	s := open(t, options(t))
	d, _, err := s.Put(ctx, strings.NewReader("the winner"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := s.Key(d)
	other := []byte("a late writer with other bytes")
	sum := sha256.Sum256(other)
	wrote, err := s.putIfAbsent(ctx, key, other, sum[:])
	if err != nil || wrote {
		t.Fatalf("putIfAbsent on a stored key = %v, %v; want false, nil", wrote, err)
	}
	if err := s.Verify(ctx, d); err != nil {
		t.Fatalf("the stored blob changed: %v", err)
	}
}

// Put streams: storing 64 MiB holds about two parts, not the blob.
func TestPutBoundedMemory(t *testing.T) {
	s := open(t, options(t))
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, _, err := s.Put(context.Background(), &failingReader{left: size, eof: true}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	t.Logf("Put of %d bytes allocated %d bytes", size, after.TotalAlloc-before.TotalAlloc)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/2 {
		t.Errorf("Put of %d bytes allocated %d bytes", size, alloc)
	}
}
