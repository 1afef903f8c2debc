package app

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gguf"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/seedmodel"
	"github.com/tailor-ml/tailor/internal/store"
)

// TestExportGGUF exports a base served alone as GGUF and reads it back.
func TestExportGGUF(t *testing.T) {
	ctx := context.Background()
	a, err := Open(Options{DataDir: t.TempDir(), EngineVersion: "test", WorkerCommand: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tok, err := tokenizer.Train(func(yield func(string) bool) { yield("the quick brown fox jumps over the lazy dog") },
		tokenizer.TrainOptions{VocabSize: 280, MinFrequency: 1, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	tj, _ := tok.MarshalJSON()
	cfg := engine.Config{Arch: "LlamaForCausalLM", VocabSize: 288, Hidden: 32, Intermediate: 64, Layers: 1, Heads: 4, KVHeads: 2, HeadDim: 8,
		MaxPositions: 64, RopeTheta: 10000, NormEps: 1e-5, Activation: "silu", BOSTokenID: -1, EOSTokenID: -1, TorchDtype: "float32"}
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := seedmodel.Write(dir, cfg, tj, 5); err != nil {
		t.Fatal(err)
	}
	var tarBuf bytes.Buffer
	if err := writeDirTar(&tarBuf, dir); err != nil {
		t.Fatal(err)
	}
	bi, err := a.ImportBase(ctx, "tiny", "", &tarBuf)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.registry.Register(ctx, store.ModelVersion{Name: "tiny-lm", BaseID: bi.Version.ID, Task: "sft"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		format   string
		q        gguf.DType
		fileType uint32
	}{{"gguf", gguf.F16, 1}, {"gguf:f32", gguf.F32, 0}, {"gguf:f16", gguf.F16, 1}, {"gguf:q8_0", gguf.Q8_0, 7}} {
		var out bytes.Buffer
		if err := a.ExportModel(ctx, "tiny-lm", "v1", c.format, &out); err != nil {
			t.Fatalf("%s: %v", c.format, err)
		}
		tr := tar.NewReader(&out)
		h, err := tr.Next()
		if err != nil || h.Name != "model.gguf" {
			t.Fatalf("%s: export entry %v %v", c.format, h, err)
		}
		raw, _ := io.ReadAll(tr)
		f, err := gguf.Read(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := f.Value("general.architecture"); !ok || v != "llama" {
			t.Fatalf("general.architecture = %v", v)
		}
		if v, _ := f.Value("general.file_type"); v != c.fileType {
			t.Errorf("%s: general.file_type = %v, want %d", c.format, v, c.fileType)
		}
		if v, _ := f.Value("tokenizer.ggml.pre"); v != gguf.PreGPT2 {
			t.Errorf("%s: tokenizer.ggml.pre = %v, want %s", c.format, v, gguf.PreGPT2)
		}
		if q, err := f.Tensor("blk.0.attn_q.weight"); err != nil || len(q.Data) != 32*32 {
			t.Fatalf("blk.0.attn_q.weight: %v", err)
		}
		for _, ti := range f.Tensors {
			if ti.Name == "blk.0.attn_q.weight" && ti.Type != c.q {
				t.Errorf("%s: attn_q stored as %v, want %v", c.format, ti.Type, c.q)
			}
		}
	}
	for _, bad := range []string{"onnx", "gguf:q4_0", "peft:f16", "gguf:"} {
		if err := a.ExportModel(ctx, "tiny-lm", "v1", bad, io.Discard); err == nil || !strings.Contains(err.Error(), "gguf:f32|f16|q8_0") && !strings.Contains(err.Error(), "want f32, f16 or q8_0") {
			t.Errorf("format %q: %v", bad, err)
		}
	}
}

func writeDirTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	for _, n := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	return tw.Close()
}
