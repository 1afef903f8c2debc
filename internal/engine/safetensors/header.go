// Package safetensors reads and writes the safetensors checkpoint format
// (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length, a JSON header mapping tensor names to dtype, shape and byte ranges,
// then the raw little-endian tensor bytes.
//
// Headers are validated strictly before any tensor data is touched: a header
// length over MaxHeaderSize, an unknown dtype, a byte range that disagrees
// with the shape, overlapping tensors or a range past the end of the file are
// all rejected with an errs.Invalid error naming the file and the tensor.
// Gaps between tensors are tolerated (the Python library never writes them).
// F32, F16 and BF16 tensors convert to engine.Tensor (float32); the other
// dtypes the format defines are recognised but refused for compute.
//
// This package imports only internal/errs and internal/engine.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"sort"

	"github.com/tailor-ml/tailor/internal/errs"
)

// MaxHeaderSize bounds the JSON header (100 MB, as in the Python library).
const MaxHeaderSize = 100_000_000

// DType is a safetensors element type as spelled in the header.
type DType string

// The dtypes of the safetensors format. Only F32, F16 and BF16 convert to
// float32 for compute.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	U8     DType = "U8"
	Bool   DType = "BOOL"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
)

var dtypeSizes = map[DType]int{
	F64: 8, F32: 4, F16: 2, BF16: 2,
	I64: 8, I32: 4, I16: 2, I8: 1,
	U64: 8, U32: 4, U16: 2, U8: 1,
	Bool: 1, F8E4M3: 1, F8E5M2: 1,
}

// Size returns the element size in bytes, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// Compute reports whether tensors of this dtype convert to float32.
func (d DType) Compute() bool { return d == F32 || d == F16 || d == BF16 }

// TensorInfo is one header entry. Begin and End are byte offsets relative to
// the start of the data section (Header.DataStart in the file).
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	Begin int64
	End   int64
}

// Numel returns the element count of the tensor.
func (t TensorInfo) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Header is a validated safetensors header.
type Header struct {
	// Tensors sorted by name.
	Tensors []TensorInfo
	// Metadata is the optional "__metadata__" string map (nil when absent).
	Metadata map[string]string
	// DataStart is the file offset of the data section: 8 + header length.
	DataStart int64
	// DataSize is the number of data bytes the file holds after the header.
	DataSize int64
}

// Names returns the tensor names in sorted order.
func (h *Header) Names() []string {
	out := make([]string, len(h.Tensors))
	for i, t := range h.Tensors {
		out[i] = t.Name
	}
	return out
}

// Tensor returns the entry for name.
func (h *Header) Tensor(name string) (TensorInfo, bool) {
	i := sort.Search(len(h.Tensors), func(i int) bool { return h.Tensors[i].Name >= name })
	if i < len(h.Tensors) && h.Tensors[i].Name == name {
		return h.Tensors[i], true
	}
	return TensorInfo{}, false
}

type rawEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// ReadHeader reads and validates the header at the start of r, a file of
// fileSize bytes. It consumes exactly Header.DataStart bytes of r. Errors
// wrap errs.ErrInvalid and name the offending tensor; callers add the file.
func ReadHeader(r io.Reader, fileSize int64) (*Header, error) {
	var lenBuf [8]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, errs.Invalid("safetensors: file of %d bytes is too short for the 8-byte header length", fileSize)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, errs.Invalid("safetensors: header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if fileSize < 8 || n > uint64(fileSize-8) {
		return nil, errs.Invalid("safetensors: header length %d exceeds the file size %d", n, fileSize)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, errs.Invalid("safetensors: reading %d-byte header: %v", n, err)
	}
	h := &Header{DataStart: 8 + int64(n), DataSize: fileSize - 8 - int64(n)}
	if err := h.parse(buf); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Header) parse(buf []byte) error {
	if len(buf) == 0 || buf[0] != '{' {
		return errs.Invalid("safetensors: header is not a JSON object")
	}
	entries, order, err := objectEntries(buf)
	if err != nil {
		return errs.Invalid("safetensors: header: %v", err)
	}
	for _, name := range order {
		raw := entries[name]
		if name == "__metadata__" {
			if err := json.Unmarshal(raw, &h.Metadata); err != nil || h.Metadata == nil {
				return errs.Invalid("safetensors: header: \"__metadata__\" must be an object of strings to strings")
			}
			continue
		}
		ti, err := parseEntry(name, raw, h.DataSize)
		if err != nil {
			return err
		}
		h.Tensors = append(h.Tensors, ti)
	}
	sort.Slice(h.Tensors, func(i, j int) bool { return h.Tensors[i].Name < h.Tensors[j].Name })
	return checkOverlaps(h.Tensors)
}

// objectEntries splits a JSON object into its members, rejecting duplicate
// keys and trailing content other than whitespace (header padding).
func objectEntries(buf []byte) (map[string]json.RawMessage, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(buf))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("not a JSON object")
	}
	entries := map[string]json.RawMessage{}
	var order []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("object key is not a string")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %v", key, err)
		}
		if _, dup := entries[key]; dup {
			return nil, nil, fmt.Errorf("duplicate key %q", key)
		}
		entries[key] = raw
		order = append(order, key)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	rest := buf[dec.InputOffset():]
	if len(bytes.TrimRight(rest, " \t\r\n")) != 0 {
		return nil, nil, fmt.Errorf("unexpected content after the JSON object")
	}
	return entries, order, nil
}

func parseEntry(name string, raw json.RawMessage, dataSize int64) (TensorInfo, error) {
	bad := func(format string, args ...any) error {
		return errs.Invalid("safetensors: tensor %q: %s", name, fmt.Sprintf(format, args...))
	}
	if name == "" {
		return TensorInfo{}, errs.Invalid("safetensors: header has a tensor with an empty name")
	}
	var e rawEntry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return TensorInfo{}, bad("%v", err)
	}
	if e.DType == nil || e.Shape == nil || e.DataOffsets == nil {
		return TensorInfo{}, bad("entry needs \"dtype\", \"shape\" and \"data_offsets\"")
	}
	dt := DType(*e.DType)
	size := dt.Size()
	if size == 0 {
		return TensorInfo{}, bad("unknown dtype %q", *e.DType)
	}
	numel := uint64(1)
	shape := make([]int, len(*e.Shape))
	for i, d := range *e.Shape {
		if d < 0 {
			return TensorInfo{}, bad("shape %v has a negative dimension", *e.Shape)
		}
		hi, lo := bits.Mul64(numel, uint64(d))
		if hi != 0 || lo > 1<<62 {
			return TensorInfo{}, bad("shape %v is too large", *e.Shape)
		}
		numel = lo
		shape[i] = int(d)
	}
	offs := *e.DataOffsets
	if len(offs) != 2 {
		return TensorInfo{}, bad("data_offsets must be [begin, end], got %d values", len(offs))
	}
	begin, end := offs[0], offs[1]
	if begin < 0 || end < begin {
		return TensorInfo{}, bad("data_offsets [%d, %d] are not 0 <= begin <= end", begin, end)
	}
	// #nosec G115 -- size is a dtype size of 1 to 8 bytes
	hi, want := bits.Mul64(numel, uint64(size))
	// #nosec G115 -- end >= begin is checked above
	if hi != 0 || want != uint64(end-begin) {
		return TensorInfo{}, bad("data_offsets [%d, %d] hold %d bytes but %s%v needs %d×%d",
			begin, end, end-begin, dt, shape, numel, size)
	}
	if end > dataSize {
		return TensorInfo{}, bad("data_offsets [%d, %d] run past the %d data bytes in the file", begin, end, dataSize)
	}
	return TensorInfo{Name: name, DType: dt, Shape: shape, Begin: begin, End: end}, nil
}

func checkOverlaps(ts []TensorInfo) error {
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		ta, tb := ts[idx[a]], ts[idx[b]]
		if ta.Begin != tb.Begin {
			return ta.Begin < tb.Begin
		}
		return ta.End < tb.End
	})
	var prev *TensorInfo
	for _, i := range idx {
		t := &ts[i]
		if t.Begin == t.End {
			continue // empty tensors occupy no bytes
		}
		if prev != nil && t.Begin < prev.End {
			return errs.Invalid("safetensors: tensors %q [%d, %d] and %q [%d, %d] overlap",
				prev.Name, prev.Begin, prev.End, t.Name, t.Begin, t.End)
		}
		prev = t
	}
	return nil
}

// ByOffset returns the tensors ordered by their position in the data section.
func (h *Header) ByOffset() []TensorInfo {
	out := append([]TensorInfo(nil), h.Tensors...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Begin < out[j].Begin })
	return out
}

// computeErr explains why a dtype cannot be used for compute.
func computeErr(name string, dt DType) error {
	return errs.Invalid("safetensors: tensor %q: dtype %s is not supported for compute (supported: F32, F16, BF16)", name, dt)
}
