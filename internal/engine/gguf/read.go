package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/errs"
)

// TensorInfo is one tensor entry of a GGUF file.
type TensorInfo struct {
	Name   string
	Dims   []uint64 // innermost first
	Type   DType
	Offset uint64 // from the start of the data section
}

// File is a parsed GGUF header. Tensor data is read by Tensor.
type File struct {
	Version   uint32
	Metadata  []KV
	Tensors   []TensorInfo
	DataStart int64
	r         io.ReaderAt
	size      int64
}

// Value returns the metadata value for key.
func (f *File) Value(key string) (any, bool) {
	for _, kv := range f.Metadata {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// decoder reads little-endian values, refusing lengths the remaining
// bytes cannot hold so a hostile header cannot force a large allocation.
type decoder struct {
	r    io.ReaderAt
	off  int64
	size int64
}

func (d *decoder) read(n int64) ([]byte, error) {
	if n < 0 || n > d.size-d.off {
		return nil, errs.Invalid("gguf: at offset %d: %d bytes needed, %d left", d.off, n, d.size-d.off)
	}
	b := make([]byte, n)
	if _, err := d.r.ReadAt(b, d.off); err != nil {
		return nil, errs.Invalid("gguf: at offset %d: %v", d.off, err)
	}
	d.off += n
	return b, nil
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.read(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.read(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (d *decoder) count(minSize uint64) (int64, error) {
	n, err := d.u64()
	if err != nil {
		return 0, err
	}
	// #nosec G115 -- d.off <= d.size (the decoder never reads past the end)
	if minSize > 0 && n > uint64(d.size-d.off)/minSize {
		return 0, errs.Invalid("gguf: at offset %d: count %d exceeds the file", d.off, n)
	}
	// #nosec G115 -- n <= the remaining file size (checked above), so it fits an int64
	return int64(n), nil
}

func (d *decoder) str() (string, error) {
	n, err := d.count(1)
	if err != nil {
		return "", err
	}
	b, err := d.read(n)
	return string(b), err
}

var scalarSize = map[ValueType]int64{
	TypeUint8: 1, TypeInt8: 1, TypeUint16: 2, TypeInt16: 2, TypeUint32: 4, TypeInt32: 4,
	TypeFloat32: 4, TypeBool: 1, TypeUint64: 8, TypeInt64: 8, TypeFloat64: 8,
}

func (d *decoder) scalar(t ValueType) (any, error) {
	if t == TypeString {
		return d.str()
	}
	n, ok := scalarSize[t]
	if !ok {
		return nil, errs.Invalid("gguf: at offset %d: unknown value type %d", d.off, t)
	}
	b, err := d.read(n)
	if err != nil {
		return nil, err
	}
	switch t {
	case TypeUint8:
		return b[0], nil
	case TypeInt8:
		// #nosec G115 -- two's-complement bit pattern of a stored int8, as GGUF defines it
		return int8(b[0]), nil
	case TypeUint16:
		return binary.LittleEndian.Uint16(b), nil
	case TypeInt16:
		// #nosec G115 -- two's-complement bit pattern of a stored int16, as GGUF defines it
		return int16(binary.LittleEndian.Uint16(b)), nil
	case TypeUint32:
		return binary.LittleEndian.Uint32(b), nil
	case TypeInt32:
		// #nosec G115 -- two's-complement bit pattern of a stored int32, as GGUF defines it
		return int32(binary.LittleEndian.Uint32(b)), nil
	case TypeFloat32:
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case TypeBool:
		if b[0] > 1 {
			return nil, errs.Invalid("gguf: at offset %d: bool value %d", d.off-1, b[0])
		}
		return b[0] == 1, nil
	case TypeUint64:
		return binary.LittleEndian.Uint64(b), nil
	case TypeInt64:
		// #nosec G115 -- two's-complement bit pattern of a stored int64, as GGUF defines it
		return int64(binary.LittleEndian.Uint64(b)), nil
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
}

// value reads a tagged value; arrays of strings, float32 and int32 decode to
// typed slices, other arrays to []any.
func (d *decoder) value(t ValueType) (any, error) {
	if t != TypeArray {
		return d.scalar(t)
	}
	et, err := d.u32()
	if err != nil {
		return nil, err
	}
	if ValueType(et) == TypeArray {
		return nil, errs.Invalid("gguf: at offset %d: nested arrays are not supported", d.off)
	}
	// #nosec G115 -- a scalar size of 0 to 8 bytes
	minSize := uint64(scalarSize[ValueType(et)])
	if ValueType(et) == TypeString {
		minSize = 8
	}
	if minSize == 0 {
		return nil, errs.Invalid("gguf: at offset %d: unknown array element type %d", d.off, et)
	}
	n, err := d.count(minSize)
	if err != nil {
		return nil, err
	}
	var strs []string
	var f32s []float32
	var i32s []int32
	var anys []any
	for i := int64(0); i < n; i++ {
		v, err := d.scalar(ValueType(et))
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case string:
			strs = append(strs, x)
		case float32:
			f32s = append(f32s, x)
		case int32:
			i32s = append(i32s, x)
		default:
			anys = append(anys, x)
		}
	}
	switch ValueType(et) {
	case TypeString:
		return nonNil(strs), nil
	case TypeFloat32:
		return nonNil(f32s), nil
	case TypeInt32:
		return nonNil(i32s), nil
	}
	return nonNil(anys), nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Read parses the header of a GGUF file of size bytes and checks that every
// tensor is F32 or F16, aligned, and inside the file.
func Read(r io.ReaderAt, size int64) (*File, error) {
	d := &decoder{r: r, size: size}
	magic, err := d.u32()
	if err != nil {
		return nil, err
	}
	if magic != Magic {
		return nil, errs.Invalid("gguf: bad magic %#x", magic)
	}
	f := &File{r: r, size: size}
	if f.Version, err = d.u32(); err != nil {
		return nil, err
	}
	if f.Version != 3 {
		return nil, errs.Invalid("gguf: version %d is not supported (supported: 3)", f.Version)
	}
	nt, err := d.count(24) // name length, dims count, type, offset at least
	if err != nil {
		return nil, err
	}
	nkv, err := d.count(12)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i := int64(0); i < nkv; i++ {
		key, err := d.str()
		if err != nil {
			return nil, err
		}
		t, err := d.u32()
		if err != nil {
			return nil, err
		}
		v, err := d.value(ValueType(t))
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		if seen[key] {
			return nil, errs.Invalid("gguf: metadata key %q appears twice", key)
		}
		seen[key] = true
		f.Metadata = append(f.Metadata, KV{key, v})
	}
	if err := f.readTensorInfos(d, nt); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) readTensorInfos(d *decoder, n int64) error {
	names := map[string]bool{}
	for i := int64(0); i < n; i++ {
		var t TensorInfo
		var err error
		if t.Name, err = d.str(); err != nil {
			return err
		}
		nd, err := d.u32()
		if err != nil {
			return err
		}
		if nd > 4 {
			return errs.Invalid("gguf: tensor %q: %d dims (at most 4)", t.Name, nd)
		}
		for j := uint32(0); j < nd; j++ {
			v, err := d.u64()
			if err != nil {
				return err
			}
			t.Dims = append(t.Dims, v)
		}
		typ, err := d.u32()
		if err != nil {
			return err
		}
		t.Type = DType(typ)
		if t.Offset, err = d.u64(); err != nil {
			return err
		}
		if names[t.Name] {
			return errs.Invalid("gguf: tensor %q appears twice", t.Name)
		}
		names[t.Name] = true
		f.Tensors = append(f.Tensors, t)
	}
	// #nosec G115 -- d.off <= file size, so the aligned offset fits an int64
	f.DataStart = int64(align(uint64(d.off)))
	for _, t := range f.Tensors {
		nb, err := t.nbytes()
		if err != nil {
			return err
		}
		// #nosec G115 -- f.size and f.DataStart are non-negative file offsets
		if t.Offset%Alignment != 0 || t.Offset > uint64(f.size) || nb > uint64(f.size)-t.Offset ||
			uint64(f.DataStart)+t.Offset+nb > uint64(f.size) {
			return errs.Invalid("gguf: tensor %q: data at offset %d (%d bytes) is unaligned or past the end of the file", t.Name, t.Offset, nb)
		}
	}
	return nil
}

func (t TensorInfo) nbytes() (uint64, error) {
	var size uint64
	switch t.Type {
	case F32:
		size = 4
	case F16:
		size = 2
	case Q8_0:
		size = 1 // per block of 32 values; scaled below
		if len(t.Dims) == 0 || t.Dims[0]%BlockQ8_0 != 0 {
			return 0, errs.Invalid("gguf: tensor %q: Q8_0 rows of %v values are not whole blocks of %d", t.Name, t.Dims, BlockQ8_0)
		}
	default:
		return 0, errs.Invalid("gguf: tensor %q: ggml type %d is not supported (supported: F32, F16, Q8_0)", t.Name, t.Type)
	}
	n := size
	for i, d := range t.Dims {
		if t.Type == Q8_0 && i == 0 {
			d = d / BlockQ8_0 * blockQ8_0Bytes
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, errs.Invalid("gguf: tensor %q: dims %v are too large", t.Name, t.Dims)
		}
		n *= d
	}
	return n, nil
}

// Tensor reads a tensor as float32 with its shape in row-major (Hugging
// Face) order, i.e. the GGUF dims reversed.
func (f *File) Tensor(name string) (engine.Tensor, error) {
	for _, t := range f.Tensors {
		if t.Name != name {
			continue
		}
		nb, err := t.nbytes()
		if err != nil {
			return engine.Tensor{}, err
		}
		raw := make([]byte, nb)
		// #nosec G115 -- t.Offset + nb <= file size is checked when the file is opened
		if _, err := f.r.ReadAt(raw, f.DataStart+int64(t.Offset)); err != nil {
			return engine.Tensor{}, fmt.Errorf("gguf: tensor %q: %w", name, err)
		}
		shape := make([]int, len(t.Dims))
		for i, d := range t.Dims {
			// #nosec G115 -- dims are bounded when the file is opened (nbytes fits in the file)
			shape[len(t.Dims)-1-i] = int(d)
		}
		switch t.Type {
		case Q8_0:
			return engine.Tensor{Shape: shape, Data: DequantizeQ8_0(raw)}, nil
		case F16:
			return engine.Tensor{Shape: shape, Data: safetensors.Decode(safetensors.F16, raw)}, nil
		}
		return engine.Tensor{Shape: shape, Data: safetensors.Decode(safetensors.F32, raw)}, nil
	}
	return engine.Tensor{}, errs.NotFound("gguf: tensor %q not found", name)
}
