// Package gguf writes GGUF v3 files (the llama.cpp model format) from a
// Hugging Face Llama checkpoint, and reads them back for tests and checks.
//
// Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): the
// magic "GGUF", version 3, tensor and metadata counts (uint64), metadata
// key/value pairs, tensor infos (name, dims innermost first, ggml type,
// offset), zero padding to the alignment (32 bytes), then tensor data, each
// tensor starting at an aligned offset. All integers are little-endian.
//
// It also owns the mapping of a Hugging Face tokenizer to GGUF's
// tokenizer.ggml.* keys (vocab.go) and ggml's Q8_0 block format (quant.go).
//
// This package imports only internal/errs, internal/engine,
// internal/engine/safetensors (for the float16 conversion) and
// internal/engine/tokenizer (to check a tokenizer before mapping it).
package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/tailor-ml/tailor/internal/engine/safetensors"
)

// Magic is "GGUF" read as a little-endian uint32.
const Magic = 0x46554747

// Version is the GGUF version written.
const Version = 3

// Alignment is the default (and written) data alignment.
const Alignment = 32

// ValueType is a metadata value type.
type ValueType uint32

// Metadata value types of the GGUF spec.
const (
	TypeUint8 ValueType = iota
	TypeInt8
	TypeUint16
	TypeInt16
	TypeUint32
	TypeInt32
	TypeFloat32
	TypeBool
	TypeString
	TypeArray
	TypeUint64
	TypeInt64
	TypeFloat64
)

// DType is a ggml tensor type; F32, F16 and Q8_0 are written and read.
type DType uint32

// The ggml tensor types this package handles (ggml_type values).
const (
	F32  DType = 0
	F16  DType = 1
	Q8_0 DType = 8 // blocks of 32 values: an fp16 scale and 32 int8 (see quant.go)
)

// KV is one metadata entry. Value holds uint8…int64, float32, float64,
// bool, string, or a slice of one of those (an array).
type KV struct {
	Key   string
	Value any
}

// tensorOut is a tensor ready to write: dims in GGUF order (innermost
// first) and float32 data in row-major order of the reversed dims.
type tensorOut struct {
	name  string
	dims  []uint64
	dtype DType
	data  []float32
	// prep, when set, rewrites data (same length) as the tensor is
	// written, so its copy lives for one tensor, not the whole file.
	prep func([]float32) []float32
}

func (t tensorOut) nbytes() uint64 {
	switch t.dtype {
	case F16:
		return uint64(len(t.data)) * 2
	case Q8_0:
		return uint64(len(t.data)) / BlockQ8_0 * blockQ8_0Bytes
	}
	return uint64(len(t.data)) * 4
}

func align(n uint64) uint64 { return (n + Alignment - 1) / Alignment * Alignment }

// encoder writes little-endian values, remembering the first error.
type encoder struct {
	w       *bufio.Writer
	n       uint64
	err     error
	scratch [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err != nil {
		return
	}
	k, err := e.w.Write(b)
	// #nosec G115 -- k is a non-negative byte count from a Write
	e.n += uint64(k)
	e.err = err
}

func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.scratch[:], v)
	e.bytes(e.scratch[:2])
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.scratch[:], v)
	e.bytes(e.scratch[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.scratch[:], v)
	e.bytes(e.scratch[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.bytes([]byte(s))
}

// value writes a typed value (without the type tag for array elements).
func (e *encoder) value(v any) {
	switch x := v.(type) {
	case uint8:
		e.bytes([]byte{x})
	case int8:
		// #nosec G115 -- two's-complement bit pattern of a typed int8 value, as GGUF stores it
		e.bytes([]byte{byte(x)})
	case uint16:
		e.u16(x)
	case int16:
		// #nosec G115 -- two's-complement bit pattern of a typed int16 value, as GGUF stores it
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		// #nosec G115 -- two's-complement bit pattern of a typed int32 value, as GGUF stores it
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		b := byte(0)
		if x {
			b = 1
		}
		e.bytes([]byte{b})
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		// #nosec G115 -- two's-complement bit pattern of a typed int64 value, as GGUF stores it
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case []string:
		e.u32(uint32(TypeString))
		e.u64(uint64(len(x)))
		for _, s := range x {
			e.str(s)
		}
	case []float32:
		e.u32(uint32(TypeFloat32))
		e.u64(uint64(len(x)))
		for _, f := range x {
			e.u32(math.Float32bits(f))
		}
	case []int32:
		e.u32(uint32(TypeInt32))
		e.u64(uint64(len(x)))
		for _, i := range x {
			// #nosec G115 -- two's-complement bit pattern of an int32 array element, as GGUF stores it
			e.u32(uint32(i))
		}
	default:
		e.err = fmt.Errorf("gguf: unsupported metadata value type %T", v)
	}
}

func typeOf(v any) ValueType {
	switch v.(type) {
	case uint8:
		return TypeUint8
	case int8:
		return TypeInt8
	case uint16:
		return TypeUint16
	case int16:
		return TypeInt16
	case uint32:
		return TypeUint32
	case int32:
		return TypeInt32
	case float32:
		return TypeFloat32
	case bool:
		return TypeBool
	case string:
		return TypeString
	case uint64:
		return TypeUint64
	case int64:
		return TypeInt64
	case float64:
		return TypeFloat64
	}
	return TypeArray
}

// write encodes a whole file: metadata in the given order, tensors in the
// given order.
func write(w io.Writer, kvs []KV, tensors []tensorOut) error {
	e := &encoder{w: bufio.NewWriterSize(w, 1<<16)}
	e.u32(Magic)
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		e.u32(uint32(typeOf(kv.Value)))
		e.value(kv.Value)
	}
	var off uint64
	for _, t := range tensors {
		e.str(t.name)
		// #nosec G115 -- a tensor has at most 4 dims
		e.u32(uint32(len(t.dims)))
		for _, d := range t.dims {
			e.u64(d)
		}
		e.u32(uint32(t.dtype))
		e.u64(off)
		off = align(off + t.nbytes())
	}
	e.bytes(make([]byte, align(e.n)-e.n))
	start := e.n
	for _, t := range tensors {
		data := t.data
		if t.prep != nil {
			data = t.prep(data)
		}
		switch t.dtype {
		case Q8_0:
			e.bytes(QuantizeQ8_0(data))
		case F16:
			for _, v := range data {
				e.u16(safetensors.F32ToF16(v))
			}
		default:
			for _, v := range data {
				e.u32(math.Float32bits(v))
			}
		}
		pos := e.n - start
		e.bytes(make([]byte, align(pos)-pos))
	}
	if e.err != nil {
		return fmt.Errorf("gguf: write: %w", e.err)
	}
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("gguf: write: %w", err)
	}
	return nil
}

// sortedKVs returns kvs sorted by key, for deterministic output.
func sortedKVs(m map[string]any) []KV {
	out := make([]KV, 0, len(m))
	for k, v := range m {
		out = append(out, KV{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
