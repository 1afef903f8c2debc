package app

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/internal/adapter"
	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gguf"
	"github.com/tailor-ml/tailor/internal/engine/hfconfig"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Export formats.
const (
	ExportPEFT   = "peft"   // adapter_config.json + adapter_model.safetensors, as PEFT loads them
	ExportMerged = "merged" // a Hugging Face folder with the adapter folded into the weights
	ExportGGUF   = "gguf"   // model.gguf for llama.cpp and Ollama; Llama causal LMs only
)

// An export format is one string everywhere (CLI --format, the HTTP
// ?format= parameter, ExportModel): peft, merged, gguf, or gguf:TYPE with
// TYPE f16 (what gguf alone means), f32 or q8_0, the ggml tensor type of
// the matrices.

// parseFormat splits a format into its kind and, for gguf, tensor type.
func parseFormat(format string) (string, gguf.DType, error) {
	kind, typ, hasType := strings.Cut(format, ":")
	switch {
	case kind == ExportGGUF && !hasType:
		return kind, gguf.F16, nil
	case kind == ExportGGUF:
		dt, err := gguf.ParseDType(typ)
		if err != nil {
			return "", 0, errs.Invalid("export format %q: %v", format, err)
		}
		return kind, dt, nil
	case (kind == ExportPEFT || kind == ExportMerged) && !hasType:
		return kind, 0, nil
	}
	return "", 0, errs.Invalid("export format %q: want peft, merged, gguf or gguf:f32|f16|q8_0", format)
}

// ExportModel writes a model version as a tar stream of files in format.
// Everything that can fail on the model (resolving it, the format, loading
// and merging) is done before the first byte is written, so the HTTP
// handler can still answer with an error; then each file is encoded
// straight into the stream, never held whole in memory.
func (a *App) ExportModel(ctx context.Context, name, ref, format string, w io.Writer) error {
	v, err := a.registry.Version(ctx, name, ref)
	if err != nil {
		return err
	}
	if _, err := a.residency().readableModel(ctx, a.store, v.ModelVersion); err != nil {
		return fmt.Errorf("export %s v%d: %w", name, v.Version, err)
	}
	kind, dtype, err := parseFormat(format)
	if err != nil {
		return err
	}
	if v.Adapter == "" && kind == ExportPEFT {
		return errs.Invalid("model %s v%d is a base alone: it has no adapter to export as peft", name, v.Version)
	}
	files, err := a.exportFiles(ctx, v.BaseID, v.Adapter, kind, dtype)
	if err != nil {
		return fmt.Errorf("export %s v%d: %w", name, v.Version, err)
	}
	slices.SortFunc(files, func(x, y exportFile) int { return strings.Compare(x.name, y.name) })
	tw := tar.NewWriter(w)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: f.size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		// The tar writer refuses more bytes than the header says, and
		// fewer at the next header: an encoder that did not repeat
		// itself is an error, not a corrupt file.
		if err := f.write(tw); err != nil {
			return fmt.Errorf("export %s v%d: %s: %w", name, v.Version, f.name, err)
		}
	}
	return tw.Close()
}

// exportFile is one file of an export: its size, known before it is
// written (a tar header comes first), and how to write it.
type exportFile struct {
	name  string
	size  int64
	write func(io.Writer) error
}

// bytesFile is a small file already in memory.
func bytesFile(name string, b []byte) exportFile {
	return exportFile{name: name, size: int64(len(b)), write: func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}}
}

// encodedFile is a file that encode writes, deterministically: it is
// encoded once to count its bytes and once into the stream, so it is never
// held whole.
func encodedFile(name string, encode func(io.Writer) error) (exportFile, error) {
	var c counter
	if err := encode(&c); err != nil {
		return exportFile{}, err
	}
	return exportFile{name: name, size: c.n, write: encode}, nil
}

// counter counts the bytes written to it.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// blobFiles are stored files, copied from the artifact store as they are
// written.
func (a *App) blobFiles(ctx context.Context, fs []basemodel.File) []exportFile {
	out := make([]exportFile, len(fs))
	for i, f := range fs {
		out[i] = exportFile{name: f.Name, size: f.Size, write: func(w io.Writer) error {
			rc, err := a.blobs.Open(ctx, f.Digest)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(w, rc)
			return err
		}}
	}
	return out
}

// exportFiles prepares the exported files: the merge and everything else
// that can fail on the model happens here; what is left to write is
// encoding and copying.
func (a *App) exportFiles(ctx context.Context, baseID, adapterDigest, format string, dtype gguf.DType) ([]exportFile, error) {
	dir := a.opts.DataDir + "/work"
	if format == ExportPEFT {
		m, err := adapter.ReadManifest(ctx, a.blobs, adapterDigest)
		if err != nil {
			return nil, err
		}
		return a.blobFiles(ctx, m.Files), nil
	}
	bv, err := baseByID(ctx, a.store, baseID)
	if err != nil {
		return nil, err
	}
	b, err := basemodel.Load(ctx, a.blobs, bv.Manifest, dir)
	if err != nil {
		return nil, err
	}
	weights, labels := b.Weights, []string(nil)
	if adapterDigest != "" {
		ad, err := adapter.Load(ctx, a.blobs, adapterDigest, dir)
		if err != nil {
			return nil, err
		}
		labels = ad.Manifest.Labels
		if weights, err = merge(b, ad); err != nil {
			return nil, err
		}
	}
	if format == ExportGGUF {
		if len(labels) > 0 || b.Manifest.Config.Arch != "LlamaForCausalLM" {
			return nil, errs.Invalid("gguf export needs a Llama causal LM; this model is a %s%s", b.Manifest.Config.Arch, headNote(labels))
		}
		tj, err := a.readBaseFile(ctx, b.Manifest, "tokenizer.json")
		if err != nil {
			return nil, err
		}
		tc, err := a.readBaseFile(ctx, b.Manifest, "tokenizer_config.json")
		if err != nil {
			return nil, err
		}
		info, err := gguf.Vocab(tj, tc, b.Manifest.Config)
		if err != nil {
			return nil, err
		}
		f, err := encodedFile("model.gguf", func(w io.Writer) error {
			return gguf.WriteLlama(w, b.Manifest.Config, weights, info, dtype)
		})
		if err != nil {
			return nil, err
		}
		return []exportFile{f}, nil
	}
	conf, err := hfconfig.Marshal(b.Manifest.Config)
	if err != nil {
		return nil, err
	}
	if len(labels) > 0 {
		if conf, err = classifierConfig(conf, labels); err != nil {
			return nil, err
		}
	}
	st, err := encodedFile("model.safetensors", func(w io.Writer) error { return safetensors.Write(w, weights) })
	if err != nil {
		return nil, err
	}
	return append(a.blobFiles(ctx, textFiles(b.Manifest.Files)), bytesFile("config.json", conf), st), nil
}

// readBaseFile reads one small file of a base (nil when it has none).
func (a *App) readBaseFile(ctx context.Context, m *basemodel.Manifest, name string) ([]byte, error) {
	f, ok := m.File(name)
	if !ok {
		return nil, nil
	}
	rc, err := a.blobs.Open(ctx, f.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, f.Size))
}

func headNote(labels []string) string {
	if len(labels) > 0 {
		return fmt.Sprintf(" with a %d-label classification head", len(labels))
	}
	return ""
}

// merge folds the adapter into a copy of the base weights (and keeps a
// classification head as score.weight).
func merge(b *basemodel.Loaded, ad *adapter.Loaded) (map[string]engine.Tensor, error) {
	c := ad.PEFT.Config
	opts := model.Options{Method: model.LoRA, LoRA: model.LoRAOptions{Rank: c.R, Alpha: c.LoraAlpha, Targets: c.TargetModules}}
	if n := len(ad.Manifest.Labels); n > 0 {
		opts.Method = model.Head
		opts.Head = model.HeadOptions{NumLabels: n, Pooling: model.Pooling(ad.Manifest.Pooling)}
	}
	m, err := model.New(b.Manifest.Config, b.Weights, opts)
	if err != nil {
		return nil, err
	}
	for _, p := range m.Params() {
		t, ok := ad.PEFT.Tensors[p.Name]
		if !ok {
			t, ok = ad.PEFT.Tensors["base_model.model."+p.Name]
		}
		if !ok || !slices.Equal(t.Shape, p.Shape) {
			return nil, errs.Invalid("adapter does not fit the base: tensor %s missing or shaped %v, want %v", p.Name, t.Shape, p.Shape)
		}
		copy(p.Data, t.Data)
	}
	return m.MergedWeights(), nil
}

// classifierConfig turns a causal-LM config.json into the matching
// *ForSequenceClassification one with the head's labels.
func classifierConfig(conf []byte, labels []string) ([]byte, error) {
	var c map[string]any
	if err := json.Unmarshal(conf, &c); err != nil {
		return nil, err
	}
	archs, _ := c["architectures"].([]any)
	if len(archs) == 1 {
		if s, ok := archs[0].(string); ok && len(s) > len("ForCausalLM") {
			c["architectures"] = []string{s[:len(s)-len("ForCausalLM")] + "ForSequenceClassification"}
		}
	}
	id2label, label2id := map[string]string{}, map[string]int{}
	for i, l := range labels {
		id2label[fmt.Sprint(i)], label2id[l] = l, i
	}
	c["num_labels"], c["id2label"], c["label2id"] = len(labels), id2label, label2id
	return json.MarshalIndent(c, "", "  ")
}

// textFiles keeps the tokenizer and generation files of a base folder.
func textFiles(fs []basemodel.File) []basemodel.File {
	var out []basemodel.File
	for _, f := range fs {
		switch f.Name {
		case "tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json":
			out = append(out, f)
		}
	}
	return out
}
