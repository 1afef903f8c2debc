package safetensors

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

// rawFile builds a safetensors file from a header text and data length.
func rawFile(header string, dataLen int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(make([]byte, dataLen))
	return b.Bytes()
}

func TestReadHeaderErrors(t *testing.T) {
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty file", nil, "too short"},
		{"header claims 1 TB", huge, "exceeds the 100000000-byte limit"},
		{"header past file", rawFile("{}", 0)[:9], "exceeds the file size"},
		{"not object", rawFile(`[1,2]`, 0), "not a JSON object"},
		{"bad json", rawFile(`{"a":`, 0), "header"},
		{"trailing", rawFile(`{} x`, 0), "after the JSON object"},
		{"duplicate", rawFile(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, 4), `duplicate key "a"`},
		{"unknown dtype", rawFile(`{"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}`, 4), `tensor "w": unknown dtype "F12"`},
		{"unknown field", rawFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, 4), `tensor "w"`},
		{"missing field", rawFile(`{"w":{"dtype":"F32","shape":[1]}}`, 4), `tensor "w": entry needs`},
		{"negative dim", rawFile(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "negative dimension"},
		{"overflow shape", rawFile(`{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}`, 4), "too large"},
		{"overflow bytes", rawFile(`{"w":{"dtype":"F64","shape":[1152921504606846976],"data_offsets":[0,8]}}`, 8), "needs"},
		{"begin after end", rawFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}`, 8), "begin <= end"},
		{"three offsets", rawFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, 8), "[begin, end]"},
		{"size mismatch", rawFile(`{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}`, 16), `tensor "w": data_offsets [0, 12] hold 12 bytes but F32[2 2] needs 4×4`},
		{"past end", rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 8), "run past"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12), `"a" [0, 8] and "b" [4, 12] overlap`},
		{"bad metadata", rawFile(`{"__metadata__":{"a":1}}`, 0), "__metadata__"},
		{"null metadata", rawFile(`{"__metadata__":null}`, 0), "__metadata__"},
		{"empty name", rawFile(`{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4), "empty name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadHeader(bytes.NewReader(c.file), int64(len(c.file)))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("error %v is not errs.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestReadHeaderValid(t *testing.T) {
	file := rawFile(`{"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}}  `, 16)
	h, err := ReadHeader(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{h.Tensors[0].Name, h.Tensors[1].Name, h.Tensors[2].Name}; strings.Join(got, ",") != "a,b,e" {
		t.Errorf("tensor order %v", got)
	}
	if h.Metadata["format"] != "pt" || h.DataSize != 16 {
		t.Errorf("metadata %v data size %d", h.Metadata, h.DataSize)
	}
	if ti, ok := h.Tensor("b"); !ok || ti.DType != I64 || ti.Numel() != 1 || ti.DType.Compute() {
		t.Errorf("tensor b = %+v", ti)
	}
}

func TestReadPythonFixture(t *testing.T) {
	got, err := ReadFile("testdata/mixed.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("testdata/mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string][]float64
	if err := json.Unmarshal(src, &want); err != nil {
		t.Fatal(err)
	}
	for name, vals := range want {
		t.Run(name, func(t *testing.T) {
			g := got[name]
			if len(g.Data) != len(vals) {
				t.Fatalf("len %d want %d", len(g.Data), len(vals))
			}
			for i, v := range vals {
				if g.Data[i] != float32(v) {
					t.Errorf("[%d] = %v want %v", i, g.Data[i], v)
				}
			}
		})
	}
	if s := got["c.bf16"].Shape; len(s) != 2 || s[0] != 3 || s[1] != 2 {
		t.Errorf("bf16 shape %v", s)
	}
}

func TestF16AgainstNumpy(t *testing.T) {
	f, err := os.Open("testdata/f16_round.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		in, _ := strconv.ParseUint(fields[0], 10, 32)
		want, _ := strconv.ParseUint(fields[1], 10, 16)
		v := math.Float32frombits(uint32(in))
		if got := F32ToF16(v); got != uint16(want) {
			t.Errorf("F32ToF16(%g) = %#04x, numpy %#04x", v, got, want)
		}
		n++
	}
	if n < 2000 {
		t.Fatalf("read only %d reference values", n)
	}
	// Every finite half converts to f32 and back unchanged.
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue // NaN
		}
		if got := F32ToF16(F16ToF32(uint16(h))); got != uint16(h) {
			t.Fatalf("round trip %#04x -> %#04x", h, got)
		}
	}
}

func TestWriteMatchesPythonLayout(t *testing.T) {
	a, err := ReadFile("testdata/mixed.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	tensors := map[string]engine.Tensor{"a.f32": a["a.f32"], "z<&>": {Shape: []int{0}}}
	for _, dt := range []DType{F32, F16} {
		t.Run(string(dt), func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, tensors, WithDType(dt), WithMetadata(map[string]string{"format": "pt"})); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile("testdata/write_" + strings.ToLower(string(dt)) + ".safetensors")
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(buf.Bytes()) != sha256.Sum256(want) {
				t.Errorf("bytes differ from the Python reference:\n got %q\nwant %q", buf.Bytes(), want)
			}
		})
	}
}

func TestWriteFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tensors := map[string]engine.Tensor{
		"w":      {Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, 0, 1e-3, 65504}},
		"bias":   {Shape: []int{3}, Data: []float32{0.25, 0.5, -0.75}},
		"scalar": {Shape: []int{}, Data: []float32{42}},
	}
	for _, dt := range []DType{F32, F16, BF16} {
		t.Run(string(dt), func(t *testing.T) {
			p1, p2 := filepath.Join(dir, "1"+string(dt)), filepath.Join(dir, "2"+string(dt))
			if err := WriteFile(p1, tensors, WithDType(dt)); err != nil {
				t.Fatal(err)
			}
			if err := WriteFile(p2, tensors, WithDType(dt)); err != nil {
				t.Fatal(err)
			}
			b1, _ := os.ReadFile(p1)
			b2, _ := os.ReadFile(p2)
			if sha256.Sum256(b1) != sha256.Sum256(b2) {
				t.Error("two writes of the same tensors differ")
			}
			if n := binary.LittleEndian.Uint64(b1); n%8 != 0 {
				t.Errorf("header length %d not 8-aligned", n)
			}
			got, err := ReadFile(p1)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tensors {
				g := got[name]
				if len(g.Shape) != len(want.Shape) {
					t.Fatalf("%s shape %v", name, g.Shape)
				}
				for i, v := range want.Data {
					tol := float64(0)
					if dt == F16 {
						tol = math.Abs(float64(v)) / 1024
					} else if dt == BF16 {
						tol = math.Abs(float64(v)) / 128
					}
					if math.Abs(float64(g.Data[i]-v)) > tol {
						t.Errorf("%s[%d] = %v want %v", name, i, g.Data[i], v)
					}
				}
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	cases := []struct {
		name    string
		tensors map[string]engine.Tensor
		opts    []Option
		want    string
	}{
		{"shape mismatch", map[string]engine.Tensor{"w": {Shape: []int{2}, Data: []float32{1}}}, nil, `tensor "w": shape [2] needs 2 values, have 1`},
		{"reserved name", map[string]engine.Tensor{"__metadata__": {}}, nil, "invalid tensor name"},
		{"bad dtype", map[string]engine.Tensor{}, []Option{WithDType(I8)}, "cannot write dtype I8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Write(&bytes.Buffer{}, c.tensors, c.opts...)
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestOpenNamesFileAndTensor(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ints.safetensors")
	if err := os.WriteFile(p, rawFile(`{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, 8), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `tensor "ids": dtype I64 is not supported for compute`) {
		t.Fatalf("error %v", err)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, rawFile(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), 0o644)
	if _, err := Open(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `tensor "w"`) {
		t.Fatalf("error %v", err)
	}
}

func TestReadDirSharded(t *testing.T) {
	dir := t.TempDir()
	s1 := map[string]engine.Tensor{"a": {Shape: []int{2}, Data: []float32{1, 2}}}
	s2 := map[string]engine.Tensor{"b": {Shape: []int{1}, Data: []float32{3}}}
	WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), s1)
	WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), s2)
	cases := []struct {
		name  string
		index string
		want  string
	}{
		{"ok", `{"metadata":{"total_size":12},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`, ""},
		{"wrong shard", `{"weight_map":{"a":"model-00002-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`, `"a" (in model-00002-of-00002.safetensors)`},
		{"missing tensor", `{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}}`, `"c"`},
		{"traversal", `{"weight_map":{"a":"../x.safetensors"}}`, `shard name "../x.safetensors"`},
		{"empty", `{"weight_map":{}}`, `"weight_map"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, IndexName), []byte(c.index), 0o644)
			for _, r := range dirReaders {
				got, err := r.read(t, dir)
				if c.want == "" {
					if err != nil {
						t.Fatalf("%s: %v", r.name, err)
					}
					if len(got) != 2 || got["b"].Data[0] != 3 {
						t.Fatalf("%s: got %v", r.name, got)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("%s: error %v, want %q", r.name, err, c.want)
				}
			}
		})
	}
}

func FuzzReadHeader(f *testing.F) {
	f.Add(rawFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8))
	f.Add(rawFile(`{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}}`, 4))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0})
	seed, _ := os.ReadFile("testdata/mixed.safetensors")
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ReadHeader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error of kind %s: %v", errs.Kind(err), err)
			}
			return
		}
		for _, ti := range h.Tensors {
			if ti.Begin < 0 || ti.End > h.DataSize || ti.End-ti.Begin != ti.Numel()*int64(ti.DType.Size()) {
				t.Fatalf("accepted bad tensor %+v (data size %d)", ti, h.DataSize)
			}
			if h.DataStart+ti.End > int64(len(data)) {
				t.Fatalf("tensor past end of input")
			}
		}
	})
}
