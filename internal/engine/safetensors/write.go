package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Option changes how Write encodes tensors.
type Option func(*writeOptions)

type writeOptions struct {
	dtype    DType
	metadata map[string]string
}

// WithDType stores every tensor as dt: F32 (the default), F16 or BF16.
// F16 rounds to nearest even; BF16 likewise.
func WithDType(dt DType) Option { return func(o *writeOptions) { o.dtype = dt } }

// WithMetadata sets the "__metadata__" string map (e.g. {"format": "pt"}).
func WithMetadata(m map[string]string) Option { return func(o *writeOptions) { o.metadata = m } }

// Write encodes tensors to w. Keys are sorted, data is laid out in key order
// without gaps, and the header is padded with spaces to a multiple of 8
// bytes as the Python library does, so equal input gives equal bytes.
func Write(w io.Writer, tensors map[string]engine.Tensor, opts ...Option) error {
	o := writeOptions{dtype: F32}
	for _, opt := range opts {
		opt(&o)
	}
	if o.dtype != F32 && o.dtype != F16 && o.dtype != BF16 {
		return errs.Invalid("safetensors: cannot write dtype %s (supported: F32, F16, BF16)", o.dtype)
	}
	names := make([]string, 0, len(tensors))
	for n, t := range tensors {
		if n == "" || n == "__metadata__" {
			return errs.Invalid("safetensors: invalid tensor name %q", n)
		}
		for _, d := range t.Shape {
			if d < 0 {
				return errs.Invalid("safetensors: tensor %q: negative dimension in shape %v", n, t.Shape)
			}
		}
		if engine.Numel(t.Shape) != len(t.Data) {
			return errs.Invalid("safetensors: tensor %q: shape %v needs %d values, have %d", n, t.Shape, engine.Numel(t.Shape), len(t.Data))
		}
		names = append(names, n)
	}
	sort.Strings(names)
	header := encodeHeader(names, tensors, o)
	bw := bufio.NewWriterSize(w, 1<<16)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	// #nosec G104 -- bufio.Writer errors are sticky and returned by the checked Flush below
	bw.Write(lenBuf[:])
	// #nosec G104 -- bufio.Writer errors are sticky and returned by the checked Flush below
	bw.Write(header)
	var b [4]byte
	for _, n := range names {
		for _, v := range tensors[n].Data {
			switch o.dtype {
			case F32:
				binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
				// #nosec G104 -- bufio.Writer errors are sticky and returned by the checked Flush below
				bw.Write(b[:4])
			case F16:
				binary.LittleEndian.PutUint16(b[:], F32ToF16(v))
				// #nosec G104 -- bufio.Writer errors are sticky and returned by the checked Flush below
				bw.Write(b[:2])
			case BF16:
				binary.LittleEndian.PutUint16(b[:], F32ToBF16(v))
				// #nosec G104 -- bufio.Writer errors are sticky and returned by the checked Flush below
				bw.Write(b[:2])
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	return nil
}

func encodeHeader(names []string, tensors map[string]engine.Tensor, o writeOptions) []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			buf.WriteByte(',')
		}
		first = false
	}
	if len(o.metadata) > 0 {
		sep()
		keys := make([]string, 0, len(o.metadata))
		for k := range o.metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(&buf, k)
			buf.WriteByte(':')
			writeJSONString(&buf, o.metadata[k])
		}
		buf.WriteByte('}')
	}
	size := int64(o.dtype.Size())
	var off int64
	for _, n := range names {
		t := tensors[n]
		sep()
		writeJSONString(&buf, n)
		fmt.Fprintf(&buf, `:{"dtype":"%s","shape":[`, o.dtype)
		for i, d := range t.Shape {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(strconv.Itoa(d))
		}
		end := off + int64(len(t.Data))*size
		fmt.Fprintf(&buf, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	buf.WriteByte('}')
	for buf.Len()%8 != 0 {
		buf.WriteByte(' ')
	}
	return buf.Bytes()
}

// writeJSONString writes s as a JSON string without HTML escaping, as
// Python's json and Rust's serde_json do.
func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	// #nosec G104 -- encoding a string into a bytes.Buffer cannot fail
	enc.Encode(s)
	buf.Truncate(buf.Len() - 1) // Encode appends a newline
}

// WriteFile writes tensors to path atomically (temporary file + rename).
func WriteFile(path string, tensors map[string]engine.Tensor, opts ...Option) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := Write(tmp, tensors, opts...); err != nil {
		// #nosec G104 -- cleanup on an error path; the write error is returned (the temp file is removed)
		tmp.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		// #nosec G104 -- cleanup on an error path; the sync error is returned (the temp file is removed)
		tmp.Close()
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return nil
}

// F32ToBF16 converts a float32 to bfloat16, rounding to nearest even.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40 // quiet NaN
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
