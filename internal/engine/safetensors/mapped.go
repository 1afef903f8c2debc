package safetensors

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Mapped is a checkpoint folder mapped read-only into memory by MapDir.
// F32 tensors stored at 4-byte aligned offsets are used in place: their
// Data aliases the mapping, so the weights live in the page cache, shared
// with every process that maps the same file, instead of in the heap.
// F16 and BF16 tensors (and F32 ones at unaligned offsets, or on a
// big-endian machine) are decoded into the heap as ReadDir does.
//
// No Data of Tensors may be written (the pages are read-only: a write
// faults), nor used after Close.
type Mapped struct {
	Tensors map[string]engine.Tensor
	// MappedBytes are the tensor bytes used in place; HeapBytes the bytes
	// of tensors decoded or copied into the heap.
	MappedBytes, HeapBytes int64
	maps                   [][]byte
}

// MapDir reads a checkpoint folder as ReadDir does, with the same checks,
// but maps each shard instead of reading it; see Mapped. Where the system
// has no mmap, the files are read into the heap.
func MapDir(dir string) (*Mapped, error) {
	m := &Mapped{}
	t, err := readDir(dir, func(path string) (shard, error) {
		f, err := mapFile(path)
		if err != nil {
			return nil, err
		}
		m.maps = append(m.maps, f.data)
		return &mappedShard{mapping: f, owner: m}, nil
	})
	if err != nil {
		// #nosec G104 -- cleanup on an error path; the mapping error is returned
		m.Close()
		return nil, err
	}
	m.Tensors = t
	return m, nil
}

// Close unmaps the files. It is safe to call more than once.
func (m *Mapped) Close() error {
	var first error
	for _, b := range m.maps {
		if err := unmap(b); err != nil && first == nil {
			first = err
		}
	}
	m.maps = nil
	return first
}

// mapping is one safetensors file mapped into memory.
type mapping struct {
	name   string
	header *Header
	data   []byte // the whole file
	mapped bool   // data is a mapping, not a heap copy
}

func mapFile(path string) (*mapping, error) {
	// #nosec G304 -- the weights file the caller loads from a model folder
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	h, err := ReadHeader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	data, mapped, err := mapReadOnly(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: map: %w", path, err)
	}
	return &mapping{name: path, header: h, data: data, mapped: mapped}, nil
}

// mappedShard is a shard of MapDir: its tensors are counted on owner, and
// closing it leaves the mapping to owner.
type mappedShard struct {
	*mapping
	owner *Mapped
}

func (s *mappedShard) path() string { return s.name }
func (s *mappedShard) Close() error { return nil }

func (s *mappedShard) Names() []string { return s.header.Names() }

func (s *mappedShard) Tensor(name string) (engine.Tensor, error) {
	ti, ok := s.header.Tensor(name)
	if !ok {
		return engine.Tensor{}, errs.NotFound("%s: tensor %q not found", s.name, name)
	}
	if !ti.DType.Compute() {
		return engine.Tensor{}, fmt.Errorf("%s: %w", s.name, computeErr(name, ti.DType))
	}
	off := s.header.DataStart + ti.Begin
	raw := s.data[off : s.header.DataStart+ti.End]
	t := engine.Tensor{Shape: append([]int{}, ti.Shape...)}
	if ti.DType == F32 && s.mapped && off%4 == 0 && littleEndian {
		if n := len(raw) / 4; n > 0 {
			// #nosec G103 -- raw is a length-checked, 4-byte-aligned little-endian F32 mapping of n elements
			t.Data = unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), n)
		} else {
			t.Data = []float32{}
		}
		s.owner.MappedBytes += int64(len(raw))
		return t, nil
	}
	t.Data = Decode(ti.DType, raw)
	s.owner.HeapBytes += int64(len(t.Data)) * 4
	return t, nil
}

// littleEndian reports whether float32s in memory have the byte order
// safetensors stores.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
