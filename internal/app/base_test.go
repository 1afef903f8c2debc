package app_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/seedmodel"
)

// tinyConfig is a 2-layer Llama small enough to build in milliseconds.
func tinyConfig(vocab int) engine.Config {
	return engine.Config{Arch: "LlamaForCausalLM", VocabSize: vocab, Hidden: 32, Intermediate: 64, Layers: 2, Heads: 4, KVHeads: 2,
		HeadDim: 8, MaxPositions: 128, RopeTheta: 10000, NormEps: 1e-5, Activation: "silu", BOSTokenID: -1, EOSTokenID: -1, TorchDtype: "float32"}
}

func writeTinyBase(t *testing.T, dir string) { writeTinyBaseSeed(t, dir, 1) }

// writeTinyBaseSeed writes the tiny base with weights drawn from seed (a
// different seed: a different fingerprint).
func writeTinyBaseSeed(t *testing.T, dir string, seed uint64) {
	t.Helper()
	corpus := []string{"the quick brown fox jumps over the lazy dog", "spam offers win money now", "meeting notes for tuesday"}
	tok, err := tokenizer.Train(func(yield func(string) bool) {
		for _, s := range corpus {
			if !yield(s) {
				return
			}
		}
	}, tokenizer.TrainOptions{VocabSize: 300, MinFrequency: 1, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	tj, err := tok.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := seedmodel.Write(dir, tinyConfig(tok.VocabSize()), tj, seed); err != nil {
		t.Fatal(err)
	}
}

// importBaseDir tars dir (plus extra entries) and imports it.
func importBaseDir(e *env, name, dir string, extra map[string][]byte) (api.BaseImport, error) {
	files := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return api.BaseImport{}, err
	}
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join(dir, en.Name()))
		if err != nil {
			return api.BaseImport{}, err
		}
		files[en.Name()] = b
	}
	for k, v := range extra {
		if v == nil {
			delete(files, k)
		} else {
			files[k] = v
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write(files[n])
	}
	tw.Close()
	return e.client.ImportBase(context.Background(), name, "", &buf)
}

// rewriteHeader replaces the JSON header of a safetensors file.
func rewriteHeader(t *testing.T, file []byte, edit func(h map[string]any)) []byte {
	t.Helper()
	n := binary.LittleEndian.Uint64(file[:8])
	var h map[string]any
	if err := json.Unmarshal(file[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	edit(h)
	hb, _ := json.Marshal(h)
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hb)))
	out = append(out, hb...)
	return append(out, file[8+n:]...)
}

func baseBadCases(t *testing.T, dir string) []badCase {
	st, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	huge := append(binary.LittleEndian.AppendUint64(nil, 1<<40), st[8:]...)
	overlap := rewriteHeader(t, st, func(h map[string]any) {
		var first []any
		keys := make([]string, 0, len(h))
		for k := range h {
			if k != "__metadata__" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		first = h[keys[0]].(map[string]any)["data_offsets"].([]any)
		second := h[keys[1]].(map[string]any)
		off := second["data_offsets"].([]any)
		size := off[1].(float64) - off[0].(float64)
		second["data_offsets"] = []any{first[0], first[0].(float64) + size}
	})
	base := func(name string, extra map[string][]byte) func(e *env) error {
		return func(e *env) error {
			_, err := importBaseDir(e, name, dir, extra)
			return err
		}
	}
	return []badCase{
		{"safetensors header claims 1 TB", base("b1", map[string][]byte{"model.safetensors": huge}), "invalid", []string{"model.safetensors", "header"}},
		{"overlapping tensor offsets", base("b1", map[string][]byte{"model.safetensors": overlap}), "invalid", []string{"model.safetensors", "overlap"}},
		{"unsupported architecture", base("b1", map[string][]byte{"config.json": []byte(strings.Replace(string(conf), "LlamaForCausalLM", "BertModel", 1))}), "invalid",
			[]string{"config.json", "BertModel"}},
		{"path traversal name", base("b1", map[string][]byte{"../evil.json": []byte("{}")}), "invalid", []string{"../evil.json"}},
		{"missing tokenizer", base("b1", map[string][]byte{"tokenizer.json": nil}), "invalid", []string{"tokenizer.json"}},
	}
}
