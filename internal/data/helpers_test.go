package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

// memStore is an in-memory content-addressed store: a Sink and a Source.
type memStore struct {
	mu    sync.Mutex
	blobs map[string][]byte
	puts  int
}

func newMemStore() *memStore { return &memStore{blobs: map[string][]byte{}} }

func (s *memStore) Put(_ context.Context, r io.Reader) (string, int64, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", 0, err
	}
	sum := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[d] = b
	s.puts++
	return d, int64(len(b)), nil
}

func (s *memStore) Open(_ context.Context, d string) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[d]
	if !ok {
		return nil, errs.NotFound("blob %s", d)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

var (
	_ Sink   = (*memStore)(nil)
	_ Source = (*memStore)(nil)
)

func readFixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smallChunks makes chunk boundaries frequent enough for small test files.
var smallChunks = Chunking{Bits: 3, MinRecords: 2, MaxRecords: 32}

// importBytes imports b as file name with small chunks.
func importBytes(t testing.TB, st *memStore, name, task string, b []byte, mod func(*ImportOptions)) (*Manifest, error) {
	t.Helper()
	o := ImportOptions{Name: "ds", Task: task, FileName: name, Chunking: smallChunks, Region: "eu", Owner: "ana"}
	if mod != nil {
		mod(&o)
	}
	return Import(context.Background(), bytes.NewReader(b), o, st)
}

// genClassify writes n classify records starting at index from.
func genClassify(from, n int) []byte {
	var b bytes.Buffer
	labels := []string{"spam", "ham", "promo"}
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"id":"r%06d","text":"message number %d about topic %d","label":%q}`+"\n",
			i, i, i%17, labels[i%3])
	}
	return b.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
