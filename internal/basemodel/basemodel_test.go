package basemodel

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/hfconfig"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/errs"
)

// memSink is an in-memory content-addressed store (Sink and Source).
type memSink struct{ blobs map[string][]byte }

func newMemSink() *memSink { return &memSink{blobs: map[string][]byte{}} }

func (m *memSink) Put(_ context.Context, r io.Reader) (string, int64, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", 0, err
	}
	sum := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(sum[:])
	m.blobs[d] = b
	return d, int64(len(b)), nil
}

func (m *memSink) Open(_ context.Context, d string) (io.ReadCloser, error) {
	b, ok := m.blobs[d]
	if !ok {
		return nil, errs.NotFound("blob %s", d)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// tinyConfig is a two-layer Llama with grouped-query attention.
func tinyConfig() engine.Config {
	return engine.Config{Arch: hfconfig.Llama, VocabSize: 32, Hidden: 16, Intermediate: 24, Layers: 2,
		Heads: 4, KVHeads: 2, HeadDim: 4, MaxPositions: 64, RopeTheta: 10000, NormEps: 1e-5,
		Activation: "silu", BOSTokenID: 1, EOSTokenID: 2, TorchDtype: "float32"}
}

// tinyWeights returns seeded random weights for cfg.
func tinyWeights(cfg engine.Config) map[string]engine.Tensor {
	rng := rand.New(rand.NewPCG(1, 2))
	out := map[string]engine.Tensor{}
	for _, s := range ExpectedTensors(cfg, "") {
		if s.Optional {
			continue
		}
		t := engine.Tensor{Shape: s.Shape, Data: make([]float32, engine.Numel(s.Shape))}
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64() * 0.02)
		}
		out[s.Name] = t
	}
	return out
}

// tokenizerJSON is a trivial byte-level BPE tokenizer over 32 tokens.
func tokenizerJSON() []byte {
	vocab := map[string]int{"<unk>": 0, "<s>": 1, "</s>": 2, "ab": 31}
	for i := 3; i < 31; i++ {
		vocab[string(rune('a'+i-3))] = i
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"version":"1.0","added_tokens":[],"pre_tokenizer":null,"model":{"type":"BPE","unk_token":"<unk>","vocab":{`)
	for i, k := range sortedKeys(vocab) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%d", k, vocab[k])
	}
	b.WriteString(`},"merges":["a b"]}}`)
	return b.Bytes()
}

func encode(t *testing.T, tensors map[string]engine.Tensor, opts ...safetensors.Option) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := safetensors.Write(&b, tensors, opts...); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tinyFolder builds a valid Llama model folder as name → bytes.
func tinyFolder(t *testing.T) map[string][]byte {
	t.Helper()
	cfg, err := hfconfig.Marshal(tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"config.json":           cfg,
		"tokenizer.json":        tokenizerJSON(),
		"tokenizer_config.json": []byte(`{"bos_token":"<s>","eos_token":"</s>"}`),
		"model.safetensors":     encode(t, tinyWeights(tinyConfig())),
	}
}

// sharded splits the weights over two shards with an index.
func sharded(t *testing.T, folder map[string][]byte) map[string][]byte {
	w := tinyWeights(tinyConfig())
	s1, s2 := map[string]engine.Tensor{}, map[string]engine.Tensor{}
	wm := map[string]string{}
	for name, tensor := range w {
		if strings.Contains(name, "layers.1.") {
			s2[name], wm[name] = tensor, "model-00002-of-00002.safetensors"
		} else {
			s1[name], wm[name] = tensor, "model-00001-of-00002.safetensors"
		}
	}
	out := copyFolder(folder)
	delete(out, "model.safetensors")
	out["model-00001-of-00002.safetensors"] = encode(t, s1)
	out["model-00002-of-00002.safetensors"] = encode(t, s2)
	out[safetensors.IndexName] = indexJSON(wm)
	return out
}

func indexJSON(wm map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"metadata":{},"weight_map":{`)
	for i, k := range sortedKeys(wm) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%q", k, wm[k])
	}
	b.WriteString("}}")
	return b.Bytes()
}

func copyFolder(f map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range f {
		out[k] = v
	}
	return out
}

func writeDir(t *testing.T, folder map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range folder {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type tarEntry struct {
	hdr  tar.Header
	body []byte
}

func tarOf(t *testing.T, folder map[string][]byte, extra ...tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range sortedKeys(folder) {
		extra = append(extra, tarEntry{tar.Header{Name: name, Mode: 0o644, Size: int64(len(folder[name])), Typeflag: tar.TypeReg}, folder[name]})
	}
	for _, e := range extra {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	tw.Close()
	return b.Bytes()
}

func importDir(t *testing.T, folder map[string][]byte, opts ImportOptions) (*Manifest, *memSink, error) {
	t.Helper()
	src, err := NewDirSource(writeDir(t, folder))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if opts.Name == "" {
		opts.Name = "tiny"
	}
	sink := newMemSink()
	m, err := Import(context.Background(), src, opts, sink)
	return m, sink, err
}

func TestImportTinyLlama(t *testing.T) {
	folder := tinyFolder(t)
	m, sink, err := importDir(t, folder, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Arch != hfconfig.Llama || m.Name != "tiny" || m.Dtype != "F32" || len(m.Fingerprint) != 64 {
		t.Errorf("manifest %+v", m)
	}
	// 2×32×16 embeddings and head, 16 final norm, per layer 2×16 norms,
	// 16×16 q, 2×8×16 k/v, 16×16 o, 3×24×16 MLP.
	if want := int64(2*32*16 + 16 + 2*(2*16+256+2*128+256+3*24*16)); m.Params != want {
		t.Errorf("params %d want %d", m.Params, want)
	}
	if !reflect.DeepEqual(m.Config, tinyConfig()) {
		t.Errorf("config %+v", m.Config)
	}
	var names []string
	for _, f := range m.Files {
		names = append(names, f.Name)
		if !bytes.Equal(sink.blobs[f.Digest], folder[f.Name]) || f.Size != int64(len(folder[f.Name])) {
			t.Errorf("file %s stored wrong", f.Name)
		}
	}
	if strings.Join(names, ",") != "config.json,model.safetensors,tokenizer.json,tokenizer_config.json" {
		t.Errorf("files %v", names)
	}
	again, _, err := importDir(t, folder, ImportOptions{})
	if err != nil || !reflect.DeepEqual(again, m) {
		t.Fatalf("second import differs: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	base := tinyFolder(t)
	ref, _, err := importDir(t, base, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	withReadme := copyFolder(base)
	withReadme["README.md"] = []byte("# tiny\n")
	withReadme["pytorch_model.bin"] = []byte("pickle")
	f16 := copyFolder(base)
	f16["model.safetensors"] = encode(t, tinyWeights(tinyConfig()), safetensors.WithDType(safetensors.F16))
	otherTok := copyFolder(base)
	otherTok["tokenizer.json"] = append(tokenizerJSON(), ' ')
	meta := copyFolder(base)
	meta["model.safetensors"] = encode(t, tinyWeights(tinyConfig()), safetensors.WithMetadata(map[string]string{"format": "pt"}))
	cases := []struct {
		name   string
		folder map[string][]byte
		same   bool
	}{
		{"resharded", sharded(t, base), true},
		{"extra files skipped", withReadme, true},
		{"safetensors metadata", meta, true},
		{"f16 weights", f16, false},
		{"other tokenizer bytes", otherTok, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _, err := importDir(t, c.folder, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if (m.Fingerprint == ref.Fingerprint) != c.same {
				t.Fatalf("fingerprint %s vs %s, want same=%v", m.Fingerprint, ref.Fingerprint, c.same)
			}
		})
	}
	m, _, _ := importDir(t, withReadme, ImportOptions{})
	if strings.Join(m.Skipped, ",") != "README.md,pytorch_model.bin" {
		t.Errorf("skipped %v", m.Skipped)
	}
	m, _, _ = importDir(t, f16, ImportOptions{})
	if m.Dtype != "F16" {
		t.Errorf("dtype %s", m.Dtype)
	}
}

func TestImportTarMatchesDir(t *testing.T) {
	folder := sharded(t, tinyFolder(t))
	want, _, err := importDir(t, folder, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	global := tarEntry{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "x"}}}
	got, err := Import(context.Background(), NewTarSource(bytes.NewReader(tarOf(t, folder, global))), ImportOptions{Name: "tiny"}, newMemSink())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tar manifest differs:\n%+v\n%+v", got, want)
	}
}

func TestMaterialize(t *testing.T) {
	folder := sharded(t, tinyFolder(t))
	m, sink, err := importDir(t, folder, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "model")
	if err := Materialize(context.Background(), sink, m, dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range folder {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v", name, err)
		}
	}
	w, err := safetensors.ReadDir(dir)
	if err != nil || len(w) != len(tinyWeights(tinyConfig())) {
		t.Fatalf("ReadDir of materialized folder: %v", err)
	}
	// A corrupted blob is refused and leaves no file behind.
	f, _ := m.File("config.json")
	sink.blobs[f.Digest] = append([]byte(nil), sink.blobs[f.Digest]...)
	sink.blobs[f.Digest][0] ^= 1
	dir2 := filepath.Join(t.TempDir(), "model")
	if err := Materialize(context.Background(), sink, m, dir2); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("corrupt blob: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "config.json")); !os.IsNotExist(err) {
		t.Errorf("corrupt config.json was written")
	}
	enc, _ := jsonMarshal(m)
	back, err := ParseManifest(enc)
	if err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("manifest JSON round trip: %v", err)
	}
}

// rawSafetensors builds a file from a literal header and a data length.
func rawSafetensors(header string, dataLen int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(make([]byte, dataLen))
	return b.Bytes()
}
