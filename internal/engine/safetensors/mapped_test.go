package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
)

// dirReaders are the two ways to read a checkpoint folder; both must give
// the same tensors and the same errors.
var dirReaders = []struct {
	name string
	read func(t *testing.T, dir string) (map[string]engine.Tensor, error)
}{
	{"ReadDir", func(_ *testing.T, dir string) (map[string]engine.Tensor, error) { return ReadDir(dir) }},
	{"MapDir", func(t *testing.T, dir string) (map[string]engine.Tensor, error) {
		m, err := MapDir(dir)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { m.Close() })
		return m.Tensors, nil
	}},
}

// unalignedF32 is a file whose F32 tensor starts 2 bytes into the data
// section, after a one-element F16 tensor: MapDir must copy it.
func unalignedF32() []byte {
	header := `{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[2],"data_offsets":[2,10]}}`
	for (8+len(header))%8 != 0 {
		header += " "
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	binary.Write(&b, binary.LittleEndian, F32ToF16(1.5))
	binary.Write(&b, binary.LittleEndian, []float32{-2.25, 3.5})
	return b.Bytes()
}

func TestMapDirMatchesReadDir(t *testing.T) {
	python, err := os.ReadFile("testdata/mixed.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	var written bytes.Buffer
	if err := Write(&written, map[string]engine.Tensor{
		"w": {Shape: []int{2, 3}, Data: []float32{1, -2, 3, 4.5, math.MaxFloat32, -0}},
		"v": {Shape: []int{0}, Data: []float32{}},
	}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name         string
		file         []byte
		mapped, heap int64
	}{
		// mixed.safetensors (gen.py): 6 F32 values used in place, 4 F16 and
		// 6 BF16 values decoded.
		{"python fixture", python, 6 * 4, 10 * 4},
		{"f32 in place", written.Bytes(), 6 * 4, 0},
		{"unaligned f32 copied", unalignedF32(), 0, 3 * 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			want, err := ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			m, err := MapDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if len(m.Tensors) != len(want) {
				t.Fatalf("%d tensors, ReadDir has %d", len(m.Tensors), len(want))
			}
			for name, w := range want {
				g := m.Tensors[name]
				if !slices.Equal(g.Shape, w.Shape) || len(g.Data) != len(w.Data) {
					t.Fatalf("%s: shape %v len %d, ReadDir %v len %d", name, g.Shape, len(g.Data), w.Shape, len(w.Data))
				}
				for i := range w.Data {
					if math.Float32bits(g.Data[i]) != math.Float32bits(w.Data[i]) {
						t.Fatalf("%s[%d] = %v, ReadDir %v", name, i, g.Data[i], w.Data[i])
					}
				}
			}
			if m.MappedBytes != c.mapped || m.HeapBytes != c.heap {
				t.Fatalf("mapped %d heap %d bytes, want %d and %d", m.MappedBytes, m.HeapBytes, c.mapped, c.heap)
			}
		})
	}
}

// TestMapDirReadOnlyAndUnmapped: the mapping shows in the process's maps
// while open and is gone after Close, and a write to a mapped tensor
// faults instead of changing the stored weights.
func TestMapDirReadOnlyAndUnmapped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/maps")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := WriteFile(path, map[string]engine.Tensor{"w": {Shape: []int{4}, Data: []float32{1, 2, 3, 4}}}); err != nil {
		t.Fatal(err)
	}
	maps := func() int {
		b, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), path)
	}
	m, err := MapDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := maps(); n != 1 {
		t.Fatalf("%s appears %d times in /proc/self/maps, want 1", path, n)
	}
	func() {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if recover() == nil {
				t.Error("a write to a mapped tensor did not fault")
			}
		}()
		m.Tensors["w"].Data[0] = 9
	}()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n := maps(); n != 0 {
		t.Fatalf("%s still mapped %d times after Close", path, n)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	got, err := ReadFile(path)
	if err != nil || got["w"].Data[0] != 1 {
		t.Fatalf("stored weights after the faulting write: %v, %v", got, err)
	}
}
