// Package blobtest is the conformance suite every blob.Store implementation
// must pass. Backends call Run from their own tests with a function that
// opens a fresh, empty store.
//
// It checks: round trips (text, binary, empty, 1 MiB+1) with Stat and
// Verify; idempotent and concurrent Puts keeping one copy; a large blob
// (64 MiB by default, WithLargeSize to cross a backend's multipart part
// size) streamed in and read back with the same sha256; ErrNotFound and
// ErrInvalid for missing and malformed digests; List in digest order and
// stopping on the callback's error; Delete; a canceled Put storing nothing.
// With WithCorrupt: Verify names both digests of a damaged blob, and a Put
// of the original bytes never overwrites the stored object (no overwrite of
// an existing digest). With WithReadIntegrity also: reading a damaged blob
// through Open fails with ErrConflict. Stores with Touch and ModTime
// (Toucher) get those checked too.
//
// This package imports only internal/blob and internal/errs (plus testing).
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Option adjusts the suite.
type Option func(*config)

type config struct {
	corrupt       func(t *testing.T, s blob.Store, d blob.Digest)
	largeSize     int64
	readIntegrity bool
}

// WithCorrupt supplies a function that changes the stored bytes of d behind
// the store's back, so the suite can check that Verify notices and that a
// Put of the original bytes does not overwrite the damaged blob. Without it
// those two tests are skipped.
func WithCorrupt(fn func(t *testing.T, s blob.Store, d blob.Digest)) Option {
	return func(c *config) { c.corrupt = fn }
}

// WithReadIntegrity declares that the store checks every read against the
// digest: reading a damaged blob to its end through Open fails with an error
// wrapping errs.ErrConflict that names the digest, instead of returning the
// damaged bytes and io.EOF. The suite then checks it (with WithCorrupt).
func WithReadIntegrity() Option {
	return func(c *config) { c.readIntegrity = true }
}

// Toucher is blob.Toucher; stores that have it are checked by the suite's
// Touch test.
type Toucher = blob.Toucher

// WithLargeSize sets the size of the streamed large blob (default 64 MiB).
func WithLargeSize(n int64) Option {
	return func(c *config) { c.largeSize = n }
}

// Run runs the suite. open must return a new, empty store for each call.
func Run(t *testing.T, open func(t *testing.T) blob.Store, opts ...Option) {
	cfg := config{largeSize: 64 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"IdempotentPut", testIdempotentPut},
		{"EmptyBlob", testEmpty},
		{"LargeBlob", func(t *testing.T, s blob.Store) { testLarge(t, s, cfg.largeSize) }},
		{"NotFound", testNotFound},
		{"InvalidDigest", testInvalidDigest},
		{"ListOrder", testList},
		{"Verify", func(t *testing.T, s blob.Store) { testVerify(t, s, cfg.corrupt, cfg.readIntegrity) }},
		{"NoOverwrite", func(t *testing.T, s blob.Store) { testNoOverwrite(t, s, cfg.corrupt) }},
		{"Touch", testTouch},
		{"Delete", testDelete},
		{"ConcurrentPut", testConcurrentPut},
		{"CanceledPut", testCanceledPut},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// Digest returns the digest of b, for tests.
func Digest(b []byte) blob.Digest {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func put(t *testing.T, s blob.Store, b []byte) blob.Digest {
	t.Helper()
	d, n, err := s.Put(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Put(%d bytes): %v", len(b), err)
	}
	if n != int64(len(b)) {
		t.Fatalf("Put size = %d, want %d", n, len(b))
	}
	if want := Digest(b); d != want {
		t.Fatalf("Put digest = %s, want %s", d, want)
	}
	return d
}

func read(t *testing.T, s blob.Store, d blob.Digest) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), d)
	if err != nil {
		t.Fatalf("Open(%s): %v", d, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", d, err)
	}
	return b
}

func count(t *testing.T, s blob.Store) map[blob.Digest]int64 {
	t.Helper()
	out := map[blob.Digest]int64{}
	err := s.List(context.Background(), func(d blob.Digest, size int64) error {
		if _, dup := out[d]; dup {
			t.Errorf("List returned %s twice", d)
		}
		out[d] = size
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return out
}

func testRoundTrip(t *testing.T, s blob.Store) {
	ctx := context.Background()
	cases := []struct {
		name string
		data []byte
	}{
		{"text", []byte("hello, tailor\n")},
		{"binary", []byte{0, 1, 2, 255, 254, 0, 0}},
		{"one MiB plus one", bytes.Repeat([]byte{7}, 1<<20+1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := put(t, s, tc.data)
			if got := read(t, s, d); !bytes.Equal(got, tc.data) {
				t.Fatalf("Open returned %d bytes that differ from the %d put", len(got), len(tc.data))
			}
			size, err := s.Stat(ctx, d)
			if err != nil || size != int64(len(tc.data)) {
				t.Fatalf("Stat = %d, %v; want %d", size, err, len(tc.data))
			}
			if err := s.Verify(ctx, d); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func testIdempotentPut(t *testing.T, s blob.Store) {
	data := []byte("same bytes twice")
	d1 := put(t, s, data)
	d2 := put(t, s, data)
	if d1 != d2 {
		t.Fatalf("digests differ: %s, %s", d1, d2)
	}
	if got := count(t, s); len(got) != 1 || got[d1] != int64(len(data)) {
		t.Fatalf("List after two puts = %v, want one blob %s", got, d1)
	}
}

func testEmpty(t *testing.T, s blob.Store) {
	d := put(t, s, nil)
	if d != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("empty digest = %s", d)
	}
	if got := read(t, s, d); len(got) != 0 {
		t.Fatalf("empty blob read %d bytes", len(got))
	}
	if err := s.Verify(context.Background(), d); err != nil {
		t.Fatalf("Verify empty: %v", err)
	}
}

// genReader yields n pseudo-random bytes from a fixed seed without holding
// them in memory.
type genReader struct {
	rng  *rand.ChaCha8
	left int64
}

func newGen(seed byte, n int64) *genReader {
	var s [32]byte
	s[0] = seed
	return &genReader{rng: rand.NewChaCha8(s), left: n}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	n, _ := g.rng.Read(p)
	g.left -= int64(n)
	return n, nil
}

func testLarge(t *testing.T, s blob.Store, size int64) {
	ctx := context.Background()
	h := sha256.New()
	if _, err := io.Copy(h, newGen(42, size)); err != nil {
		t.Fatal(err)
	}
	want := "sha256:" + hex.EncodeToString(h.Sum(nil))
	d, n, err := s.Put(ctx, newGen(42, size))
	if err != nil {
		t.Fatalf("Put large: %v", err)
	}
	if d != want || n != size {
		t.Fatalf("Put large = %s, %d; want %s, %d", d, n, want, size)
	}
	rc, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h.Reset()
	got, err := io.Copy(h, rc)
	if err != nil || got != size {
		t.Fatalf("read back %d bytes, %v; want %d", got, err, size)
	}
	if sum := "sha256:" + hex.EncodeToString(h.Sum(nil)); sum != want {
		t.Fatalf("read back digest %s, want %s", sum, want)
	}
}

func testNotFound(t *testing.T, s blob.Store) {
	ctx := context.Background()
	d := Digest([]byte("never stored"))
	checks := map[string]error{}
	_, checks["Open"] = s.Open(ctx, d)
	_, checks["Stat"] = s.Stat(ctx, d)
	checks["Verify"] = s.Verify(ctx, d)
	for op, err := range checks {
		if !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("%s(missing) = %v, want ErrNotFound", op, err)
		} else if !strings.Contains(err.Error(), d) {
			t.Errorf("%s(missing) error %q does not name the digest", op, err)
		}
	}
	if err := s.Delete(ctx, d); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
}

// InvalidDigests are malformed digests every store must refuse.
var InvalidDigests = []string{
	"",
	"sha256:",
	"sha256",
	"md5:" + strings.Repeat("a", 64),
	"sha256:" + strings.Repeat("a", 63),
	"sha256:" + strings.Repeat("a", 65),
	"sha256:" + strings.Repeat("A", 64),
	"sha256:" + strings.Repeat("g", 64),
	"sha256:../" + strings.Repeat("a", 61),
	"sha256:" + strings.Repeat("a", 30) + "/../" + strings.Repeat("a", 30),
	"sha256:/etc/passwd",
	"SHA256:" + strings.Repeat("a", 64),
	" sha256:" + strings.Repeat("a", 64),
	"sha256:" + strings.Repeat("a", 64) + "\n",
}

func testInvalidDigest(t *testing.T, s blob.Store) {
	ctx := context.Background()
	for i, d := range InvalidDigests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			checks := map[string]error{}
			_, checks["Open"] = s.Open(ctx, d)
			_, checks["Stat"] = s.Stat(ctx, d)
			checks["Verify"] = s.Verify(ctx, d)
			checks["Delete"] = s.Delete(ctx, d)
			for op, err := range checks {
				if !errors.Is(err, errs.ErrInvalid) {
					t.Errorf("%s(%q) = %v, want ErrInvalid", op, d, err)
				}
			}
		})
	}
}

func testList(t *testing.T, s blob.Store) {
	want := map[blob.Digest]int64{}
	for i := range 40 {
		b := []byte(fmt.Sprintf("blob number %d", i))
		want[put(t, s, b)] = int64(len(b))
	}
	var order []blob.Digest
	err := s.List(context.Background(), func(d blob.Digest, size int64) error {
		order = append(order, d)
		if want[d] != size {
			t.Errorf("List %s size %d, want %d", d, size, want[d])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != len(want) {
		t.Fatalf("List returned %d blobs, want %d", len(order), len(want))
	}
	if !sort.StringsAreSorted(order) {
		t.Errorf("List not in digest order: %v", order)
	}
	stop := errors.New("stop")
	calls := 0
	err = s.List(context.Background(), func(blob.Digest, int64) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with failing fn = %v after %d calls, want stop after 1", err, calls)
	}
}

func testVerify(t *testing.T, s blob.Store, corrupt func(*testing.T, blob.Store, blob.Digest), readIntegrity bool) {
	ctx := context.Background()
	d := put(t, s, []byte("content that will be damaged"))
	if err := s.Verify(ctx, d); err != nil {
		t.Fatalf("Verify intact: %v", err)
	}
	if corrupt == nil {
		t.Skip("no corrupt function supplied")
	}
	corrupt(t, s, d)
	err := s.Verify(ctx, d)
	if !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("Verify corrupted = %v, want ErrConflict", err)
	}
	if !strings.Contains(err.Error(), d) {
		t.Errorf("Verify error %q does not name the expected digest", err)
	}
	got, rerr := readAll(s, d)
	if readIntegrity {
		if !errors.Is(rerr, errs.ErrConflict) || !strings.Contains(rerr.Error(), d) {
			t.Fatalf("reading the damaged blob through Open = %v, want ErrConflict naming %s", rerr, d)
		}
	} else if rerr != nil {
		t.Fatalf("read damaged blob: %v", rerr)
	}
	if actual := Digest(got); !strings.Contains(err.Error(), actual) {
		t.Errorf("Verify error %q does not name the actual digest %s", err, actual)
	}
}

// readAll reads blob d through Open and returns what it read and the error
// that ended the read (nil at io.EOF).
func readAll(s blob.Store, d blob.Digest) ([]byte, error) {
	rc, err := s.Open(context.Background(), d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// testNoOverwrite: a Put of bytes already stored never rewrites the stored
// object, even when it was damaged: the damage stays visible to Verify
// (repair is deliberate: Delete, then Put).
func testNoOverwrite(t *testing.T, s blob.Store, corrupt func(*testing.T, blob.Store, blob.Digest)) {
	ctx := context.Background()
	data := []byte("original bytes, stored once")
	d := put(t, s, data)
	if corrupt == nil {
		t.Skip("no corrupt function supplied")
	}
	corrupt(t, s, d)
	put(t, s, data)
	if err := s.Verify(ctx, d); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("Verify after a second Put = %v, want ErrConflict: the Put replaced the stored object", err)
	}
	if err := s.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	put(t, s, data)
	if err := s.Verify(ctx, d); err != nil {
		t.Fatalf("Verify after Delete and Put = %v", err)
	}
}

func testTouch(t *testing.T, s blob.Store) {
	ts, ok := s.(Toucher)
	if !ok {
		t.Skip("the store has no Touch and ModTime")
	}
	ctx := context.Background()
	data := []byte("touched, not changed")
	d := put(t, s, data)
	before, err := ts.ModTime(ctx, d)
	if err != nil || before.IsZero() {
		t.Fatalf("ModTime = %v, %v", before, err)
	}
	if err := ts.Touch(ctx, d); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	after, err := ts.ModTime(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if after.Before(before) {
		t.Errorf("ModTime went back from %v to %v after Touch", before, after)
	}
	if got := read(t, s, d); !bytes.Equal(got, data) {
		t.Errorf("Touch changed the content: %q", got)
	}
	if got := count(t, s); len(got) != 1 {
		t.Errorf("List after Touch = %v, want one blob", got)
	}
	missing := Digest([]byte("never stored"))
	if err := ts.Touch(ctx, missing); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("Touch(missing) = %v, want ErrNotFound", err)
	}
	if _, err := ts.ModTime(ctx, missing); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("ModTime(missing) = %v, want ErrNotFound", err)
	}
	for _, bad := range InvalidDigests[:3] {
		if err := ts.Touch(ctx, bad); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("Touch(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func testDelete(t *testing.T, s blob.Store) {
	ctx := context.Background()
	keep := put(t, s, []byte("keep"))
	gone := put(t, s, []byte("gone"))
	if err := s.Delete(ctx, gone); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(ctx, gone); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("Stat after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, gone); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
	if got := count(t, s); len(got) != 1 || got[keep] != 4 {
		t.Errorf("List after Delete = %v, want only %s", got, keep)
	}
	// A deleted blob can be put again.
	put(t, s, []byte("gone"))
	if got := read(t, s, gone); string(got) != "gone" {
		t.Errorf("re-put read %q", got)
	}
}

func testConcurrentPut(t *testing.T, s blob.Store) {
	data := bytes.Repeat([]byte("concurrent "), 100_000)
	want := Digest(data)
	const workers = 8
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, n, err := s.Put(context.Background(), bytes.NewReader(data))
			if err == nil && (d != want || n != int64(len(data))) {
				err = fmt.Errorf("got %s, %d", d, n)
			}
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Errorf("concurrent Put: %v", err)
		}
	}
	if got := count(t, s); len(got) != 1 || got[want] != int64(len(data)) {
		t.Fatalf("List after concurrent puts = %v, want one blob", got)
	}
	if !bytes.Equal(read(t, s, want), data) {
		t.Fatal("content differs after concurrent puts")
	}
}

func testCanceledPut(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Put(ctx, strings.NewReader("never stored")); err == nil {
		t.Fatal("Put with canceled context succeeded")
	}
	if got := count(t, s); len(got) != 0 {
		t.Fatalf("canceled Put left blobs: %v", got)
	}
}
