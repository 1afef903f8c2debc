package basemodel

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tailor-ml/tailor/internal/blob/local"
	"github.com/tailor-ml/tailor/internal/errs"
)

// storeBase imports folder into a real artifact store and stores its
// manifest there, as the server does; it returns the manifest's digest.
func storeBase(t *testing.T, folder map[string][]byte) (*local.Store, *Manifest, string) {
	t.Helper()
	store, err := local.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewDirSource(writeDir(t, folder))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	m, err := Import(ctx, src, ImportOptions{Name: "tiny"}, store)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := jsonMarshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := store.Put(ctx, bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	return store, m, d
}

// TestMapMatchesLoad: a base mapped from the artifact store's files has
// the weights and tokenizer Load reads, every byte of them in place; a
// corrupted blob is refused; and a store without local files falls back to
// Load.
func TestMapMatchesLoad(t *testing.T) {
	ctx := context.Background()
	for name, folder := range map[string]map[string][]byte{"one file": tinyFolder(t), "sharded": sharded(t, tinyFolder(t))} {
		t.Run(name, func(t *testing.T) {
			store, m, digest := storeBase(t, folder)
			want, err := Load(ctx, store, digest, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			work := t.TempDir()
			got, err := Map(ctx, store, digest, work)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			var bytes int64
			for n, w := range want.Weights {
				g := got.Weights[n]
				if len(g.Data) != len(w.Data) {
					t.Fatalf("%s: %d values, Load has %d", n, len(g.Data), len(w.Data))
				}
				for i := range w.Data {
					if math.Float32bits(g.Data[i]) != math.Float32bits(w.Data[i]) {
						t.Fatalf("%s[%d] = %v, Load has %v", n, i, g.Data[i], w.Data[i])
					}
				}
				bytes += int64(len(w.Data)) * 4
			}
			if len(got.Weights) != len(want.Weights) || got.MappedBytes != bytes || want.MappedBytes != 0 {
				t.Fatalf("%d tensors mapping %d bytes, Load %d tensors mapping %d; want all %d bytes mapped", len(got.Weights), got.MappedBytes, len(want.Weights), want.MappedBytes, bytes)
			}
			if g, w := got.Tokenizer.Encode("hello world", false), want.Tokenizer.Encode("hello world", false); !slices.Equal(g, w) {
				t.Fatalf("tokenizer: %v, Load's %v", g, w)
			}
			if ents, _ := os.ReadDir(work); len(ents) != 0 {
				t.Fatalf("Map left %d entries in its work dir", len(ents))
			}
			mem := newMemSink()
			for _, f := range m.Files {
				p, _ := store.Path(f.Digest)
				b, _ := os.ReadFile(p)
				mem.blobs[f.Digest] = b
			}
			mp, _ := store.Path(digest)
			mem.blobs[digest], _ = os.ReadFile(mp)
			fallback, err := Map(ctx, mem, digest, t.TempDir())
			if err != nil || fallback.MappedBytes != 0 || len(fallback.Weights) != len(want.Weights) {
				t.Fatalf("Map without local files: %v, %d bytes mapped", err, fallback.MappedBytes)
			}
			// A blob changed on disk is refused before anything is mapped.
			f, _ := m.File("model.safetensors")
			if _, ok := folder["model.safetensors"]; !ok {
				f, _ = m.File("model-00002-of-00002.safetensors")
			}
			p, err := store.Path(f.Digest)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 1
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Map(ctx, store, digest, t.TempDir()); !errors.Is(err, errs.ErrConflict) {
				t.Fatalf("corrupt %s: %v, want a conflict", f.Name, err)
			}
		})
	}
}
