package basemodel

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func TestImportBadFolders(t *testing.T) {
	good := tinyFolder(t)
	with := func(edit func(f map[string][]byte)) map[string][]byte {
		f := copyFolder(good)
		edit(f)
		return f
	}
	weights := func(edit func(w map[string]engine.Tensor)) map[string][]byte {
		w := tinyWeights(tinyConfig())
		edit(w)
		return with(func(f map[string][]byte) { f["model.safetensors"] = encode(t, w) })
	}
	huge := make([]byte, 24)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	shardedGood := sharded(t, good)

	cases := []struct {
		name   string
		folder map[string][]byte
		opts   ImportOptions
		want   string
	}{
		{"header claims 1 TB", with(func(f map[string][]byte) { f["model.safetensors"] = huge }),
			ImportOptions{}, "model.safetensors: safetensors: header length 1099511627776 exceeds the 100000000-byte limit"},
		{"overlapping offsets", with(func(f map[string][]byte) {
			f["model.safetensors"] = rawSafetensors(`{"model.norm.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"lm_head.weight":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12)
		}), ImportOptions{}, `model.safetensors: safetensors: tensors "model.norm.weight" [0, 8] and "lm_head.weight" [4, 12] overlap`},
		{"size not dtype×shape", with(func(f map[string][]byte) {
			f["model.safetensors"] = rawSafetensors(`{"model.norm.weight":{"dtype":"BF16","shape":[16],"data_offsets":[0,64]}}`, 64)
		}), ImportOptions{}, `model.safetensors: safetensors: tensor "model.norm.weight": data_offsets [0, 64] hold 64 bytes but BF16[16] needs 16×2`},
		{"truncated data", with(func(f map[string][]byte) {
			f["model.safetensors"] = f["model.safetensors"][:len(f["model.safetensors"])-4]
		}), ImportOptions{}, `tensor "model.norm.weight": data_offsets`},
		{"unsupported architecture", with(func(f map[string][]byte) {
			f["config.json"] = []byte(`{"architectures":["BertModel"],"model_type":"bert"}`)
		}), ImportOptions{}, `config.json: field "architectures": "BertModel" is not supported (supported: LlamaForCausalLM`},
		{"missing config", with(func(f map[string][]byte) { delete(f, "config.json") }), ImportOptions{}, "config.json is missing"},
		{"missing tokenizer", with(func(f map[string][]byte) { delete(f, "tokenizer.json") }), ImportOptions{}, "tokenizer.json is missing"},
		{"tokenizer without model", with(func(f map[string][]byte) { f["tokenizer.json"] = []byte(`{"version":"1.0"}`) }),
			ImportOptions{}, `tokenizer.json: field "model" is missing`},
		{"tokenizer not an object", with(func(f map[string][]byte) { f["tokenizer.json"] = []byte(`[1]`) }),
			ImportOptions{}, `tokenizer.json: not a JSON object`},
		{"no weights", with(func(f map[string][]byte) { delete(f, "model.safetensors") }), ImportOptions{}, "no *.safetensors weights"},
		{"missing tensor", weights(func(w map[string]engine.Tensor) { delete(w, "model.layers.1.mlp.down_proj.weight") }),
			ImportOptions{}, `LlamaForCausalLM checkpoint is missing tensors: "model.layers.1.mlp.down_proj.weight"`},
		{"unexpected tensor", weights(func(w map[string]engine.Tensor) {
			w["model.layers.2.mlp.up_proj.weight"] = engine.Tensor{Shape: []int{1}, Data: []float32{0}}
		}), ImportOptions{}, `unexpected tensors: "model.layers.2.mlp.up_proj.weight"`},
		{"wrong shape", weights(func(w map[string]engine.Tensor) {
			w["model.layers.0.self_attn.k_proj.weight"] = engine.Tensor{Shape: []int{16, 16}, Data: make([]float32, 256)}
		}), ImportOptions{}, `model.safetensors: tensor "model.layers.0.self_attn.k_proj.weight" has shape [16 16], config.json implies [8 16]`},
		{"two files no index", with(func(f map[string][]byte) { f["extra.safetensors"] = f["model.safetensors"] }),
			ImportOptions{}, "2 *.safetensors files (extra.safetensors, model.safetensors) but no model.safetensors.index.json"},
		{"index names absent shard", func() map[string][]byte {
			f := copyFolder(shardedGood)
			delete(f, "model-00002-of-00002.safetensors")
			return f
		}(), ImportOptions{}, "lists shards [model-00001-of-00002.safetensors, model-00002-of-00002.safetensors] but the folder has [model-00001-of-00002.safetensors]"},
		{"index places tensor wrongly", func() map[string][]byte {
			f := copyFolder(shardedGood)
			f["model.safetensors.index.json"] = bytes.Replace(f["model.safetensors.index.json"],
				[]byte(`"model.norm.weight":"model-00001-of-00002.safetensors"`), []byte(`"model.norm.weight":"model-00002-of-00002.safetensors"`), 1)
			return f
		}(), ImportOptions{}, `model-00001-of-00002.safetensors: tensor "model.norm.weight" is not listed for this shard`},
		{"hidden file", with(func(f map[string][]byte) { f[".gitattributes"] = []byte("*") }), ImportOptions{}, `entry ".gitattributes": names starting with "."`},
		{"total size limit", good, ImportOptions{MaxTotalBytes: 1000}, "exceeds the total limit of 1000 bytes"},
		{"json size limit", good, ImportOptions{MaxJSONBytes: 100}, `exceeds the 100-byte limit for JSON files`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _, err := importDir(t, c.folder, c.opts)
			if err == nil {
				t.Fatalf("imported %+v, want error %q", m, c.want)
			}
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q (kind %s)\nwant %q", err, errs.Kind(err), c.want)
			}
			if !strings.HasPrefix(err.Error(), `import base model "tiny": `) && !strings.Contains(err.Error(), "model folder") {
				t.Errorf("error %q does not name the import", err)
			}
		})
	}
}

func TestImportBadTar(t *testing.T) {
	good := tinyFolder(t)
	reg := func(name string) tarEntry {
		return tarEntry{tar.Header{Name: name, Mode: 0o644, Size: 2, Typeflag: tar.TypeReg}, []byte("{}")}
	}
	cases := []struct {
		name  string
		extra []tarEntry
		want  string
	}{
		{"parent traversal", []tarEntry{reg("../config.json")}, `entry "../config.json": only plain file names`},
		{"absolute", []tarEntry{reg("/etc/passwd")}, `entry "/etc/passwd": only plain file names`},
		{"subdirectory", []tarEntry{reg("sub/config.json")}, `entry "sub/config.json": only plain file names`},
		{"dot dot", []tarEntry{reg("..")}, `entry "..": names starting with "."`},
		{"dot slash", []tarEntry{reg("./config.json")}, `entry "./config.json"`},
		{"backslash", []tarEntry{reg(`..\config.json`)}, `entry "..\\config.json"`},
		{"symlink", []tarEntry{{tar.Header{Name: "evil", Linkname: "/etc/passwd", Typeflag: tar.TypeSymlink}, nil}}, `entry "evil" is not a regular file`},
		{"directory", []tarEntry{{tar.Header{Name: "d", Typeflag: tar.TypeDir, Mode: 0o755}, nil}}, `entry "d" is not a regular file`},
		{"duplicate", []tarEntry{{tar.Header{Name: "config.json", Mode: 0o644, Size: int64(len(good["config.json"])), Typeflag: tar.TypeReg}, good["config.json"]}}, `entry "config.json" appears twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Import(context.Background(), NewTarSource(bytes.NewReader(tarOf(t, good, c.extra...))), ImportOptions{Name: "tiny"}, newMemSink())
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	t.Run("truncated stream", func(t *testing.T) {
		b := tarOf(t, good)
		_, err := Import(context.Background(), NewTarSource(bytes.NewReader(b[:len(b)/2])), ImportOptions{Name: "tiny"}, newMemSink())
		if err == nil {
			t.Fatal("truncated tar imported")
		}
	})
}

func TestDirSourceRefusesSpecialFiles(t *testing.T) {
	cases := []struct {
		name  string
		setup func(dir string) error
		want  string
	}{
		{"subdirectory", func(dir string) error { return os.Mkdir(filepath.Join(dir, "sub"), 0o755) }, `entry "sub" is a subdirectory`},
		{"symlink", func(dir string) error { return os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")) }, `entry "passwd" is a symbolic link`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeDir(t, tinyFolder(t))
			if err := c.setup(dir); err != nil {
				t.Fatal(err)
			}
			src, err := NewDirSource(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			_, err = Import(context.Background(), src, ImportOptions{Name: "tiny"}, newMemSink())
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	for _, name := range []string{"", ".", "..", "../x", "/x", "a/b", `a\b`, "a\x00b", ".hidden", strings.Repeat("a", 256)} {
		if err := ValidName(name); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"config.json", "model-00001-of-00002.safetensors", "a..b"} {
		if err := ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
}
