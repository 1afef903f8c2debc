package app

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
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
func (a *App) ExportModel(ctx context.Context, name, ref, format string, w io.Writer) error {
	v, err := a.registry.Version(ctx, name, ref)
	if err != nil {
		return err
	}
	kind, dtype, err := parseFormat(format)
	if err != nil {
		return err
	}
	if v.Adapter == "" && kind == ExportPEFT {
		return errs.Invalid("model %s v%d is a base alone: it has no adapter to export as peft", name, v.Version)
	}
	tw := tar.NewWriter(w)
	files, err := a.exportFiles(ctx, v.BaseID, v.Adapter, kind, dtype)
	if err != nil {
		return fmt.Errorf("export %s v%d: %w", name, v.Version, err)
	}
	for _, n := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return err
		}
	}
	return tw.Close()
}

// exportFiles builds the exported files in memory (models served here are
// small; a large-model export would stream through a worker).
func (a *App) exportFiles(ctx context.Context, baseID, adapterDigest, format string, dtype gguf.DType) (map[string][]byte, error) {
	dir := a.opts.DataDir + "/work"
	if format == ExportPEFT {
		ad, err := adapter.Load(ctx, a.blobs, adapterDigest, dir)
		if err != nil {
			return nil, err
		}
		return a.blobFiles(ctx, ad.Manifest.Files)
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
	out, err := a.blobFiles(ctx, textFiles(b.Manifest.Files))
	if err != nil {
		return nil, err
	}
	if format == ExportGGUF {
		if len(labels) > 0 || b.Manifest.Config.Arch != "LlamaForCausalLM" {
			return nil, errs.Invalid("gguf export needs a Llama causal LM; this model is a %s%s", b.Manifest.Config.Arch, headNote(labels))
		}
		info, err := gguf.Vocab(out["tokenizer.json"], out["tokenizer_config.json"], b.Manifest.Config)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := gguf.WriteLlama(&buf, b.Manifest.Config, weights, info, dtype); err != nil {
			return nil, err
		}
		return map[string][]byte{"model.gguf": buf.Bytes()}, nil
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
	var st bytes.Buffer
	if err := safetensors.Write(&st, weights); err != nil {
		return nil, err
	}
	out["config.json"], out["model.safetensors"] = conf, st.Bytes()
	return out, nil
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

func (a *App) blobFiles(ctx context.Context, fs []basemodel.File) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, f := range fs {
		rc, err := a.blobs.Open(ctx, f.Digest)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		out[f.Name] = b
	}
	return out, nil
}
