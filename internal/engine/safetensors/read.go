package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

// File is an open safetensors file whose tensors are read on demand.
type File struct {
	Path   string
	Header *Header
	f      *os.File
}

// Open opens path and validates its header; tensors are read lazily.
func Open(path string) (*File, error) {
	// #nosec G304 -- the weights file the caller loads from a model folder
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		// #nosec G104 -- closing a read-only file on an error path; the stat error is returned
		f.Close()
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	h, err := ReadHeader(f, st.Size())
	if err != nil {
		// #nosec G104 -- closing a read-only file on an error path; the header error is returned
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &File{Path: path, Header: h, f: f}, nil
}

// Close releases the file.
func (f *File) Close() error { return f.f.Close() }

// Names returns the tensor names in sorted order.
func (f *File) Names() []string { return f.Header.Names() }

// Raw returns the tensor's bytes as stored.
func (f *File) Raw(name string) (TensorInfo, []byte, error) {
	ti, ok := f.Header.Tensor(name)
	if !ok {
		return ti, nil, errs.NotFound("%s: tensor %q not found", f.Path, name)
	}
	buf := make([]byte, ti.End-ti.Begin)
	if _, err := f.f.ReadAt(buf, f.Header.DataStart+ti.Begin); err != nil {
		return ti, nil, fmt.Errorf("%s: tensor %q: %w", f.Path, name, err)
	}
	return ti, buf, nil
}

// Tensor reads one tensor, converting F16 and BF16 to float32.
func (f *File) Tensor(name string) (engine.Tensor, error) {
	ti, ok := f.Header.Tensor(name)
	if !ok {
		return engine.Tensor{}, errs.NotFound("%s: tensor %q not found", f.Path, name)
	}
	if !ti.DType.Compute() {
		return engine.Tensor{}, fmt.Errorf("%s: %w", f.Path, computeErr(name, ti.DType))
	}
	_, raw, err := f.Raw(name)
	if err != nil {
		return engine.Tensor{}, err
	}
	return engine.Tensor{Shape: append([]int{}, ti.Shape...), Data: Decode(ti.DType, raw)}, nil
}

// Decode converts little-endian F32, F16 or BF16 bytes to float32; it panics
// on other dtypes (check DType.Compute first).
func Decode(dt DType, raw []byte) []float32 {
	size := dt.Size()
	out := make([]float32, len(raw)/size)
	for i := range out {
		switch dt {
		case F32:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		case F16:
			out[i] = F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		case BF16:
			out[i] = BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		default:
			panic("safetensors: Decode of non-compute dtype " + string(dt))
		}
	}
	return out
}

// All reads every tensor in the file.
func (f *File) All() (map[string]engine.Tensor, error) { return all(f) }

func all(f shard) (map[string]engine.Tensor, error) {
	names := f.Names()
	out := make(map[string]engine.Tensor, len(names))
	for _, n := range names {
		t, err := f.Tensor(n)
		if err != nil {
			return nil, err
		}
		out[n] = t
	}
	return out, nil
}

// ReadFile reads every tensor of a safetensors file as float32.
func ReadFile(path string) (map[string]engine.Tensor, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.All()
}

// IndexName is the file naming the shards of a sharded checkpoint.
const IndexName = "model.safetensors.index.json"

// Index is a parsed model.safetensors.index.json.
type Index struct {
	Metadata  map[string]any    `json:"metadata,omitempty"`
	WeightMap map[string]string `json:"weight_map"`
}

// Shards returns the distinct shard file names, sorted.
func (ix *Index) Shards() []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range ix.WeightMap {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// ParseIndex parses and validates an index: a non-empty weight_map whose
// shard names are plain *.safetensors base names.
func ParseIndex(src []byte) (*Index, error) {
	var ix Index
	if err := json.Unmarshal(src, &ix); err != nil {
		return nil, errs.Invalid("%s: %v", IndexName, err)
	}
	if len(ix.WeightMap) == 0 {
		return nil, errs.Invalid("%s: field \"weight_map\" is missing or empty", IndexName)
	}
	names := make([]string, 0, len(ix.WeightMap))
	for n := range ix.WeightMap {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		shard := ix.WeightMap[n]
		if shard == "" || shard != filepath.Base(shard) || strings.ContainsAny(shard, "/\\\x00") ||
			strings.HasPrefix(shard, ".") || !strings.HasSuffix(shard, ".safetensors") {
			return nil, errs.Invalid("%s: weight_map[%q]: shard name %q is not a plain *.safetensors file name", IndexName, n, shard)
		}
	}
	return &ix, nil
}

// ReadDir reads a checkpoint folder: the shards listed by
// model.safetensors.index.json when present, else model.safetensors. Every
// tensor must sit in the shard the index names, and every shard tensor must
// be listed.
func ReadDir(dir string) (map[string]engine.Tensor, error) {
	return readDir(dir, func(path string) (shard, error) { return Open(path) })
}

// shard is one open safetensors file of a checkpoint folder: a File read
// on demand, or a Mapping.
type shard interface {
	path() string
	Names() []string
	Tensor(name string) (engine.Tensor, error)
	Close() error
}

func (f *File) path() string { return f.Path }

// readDir reads a checkpoint folder (see ReadDir), opening each shard with
// open and closing it once its tensors are read.
func readDir(dir string, open func(path string) (shard, error)) (map[string]engine.Tensor, error) {
	// #nosec G304 -- the index file of the model folder the caller loads
	src, err := os.ReadFile(filepath.Join(dir, IndexName))
	if os.IsNotExist(err) {
		f, err := open(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return all(f)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	ix, err := ParseIndex(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	out := map[string]engine.Tensor{}
	for _, name := range ix.Shards() {
		f, err := open(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		for _, tn := range f.Names() {
			if ix.WeightMap[tn] != name {
				// #nosec G104 -- closing a read-only shard on an error path; the error is returned
				f.Close()
				return nil, errs.Invalid("%s: tensor %q is not listed for this shard in %s", f.path(), tn, IndexName)
			}
			t, err := f.Tensor(tn)
			if err != nil {
				// #nosec G104 -- closing a read-only shard on an error path; the error is returned
				f.Close()
				return nil, err
			}
			out[tn] = t
		}
		// #nosec G104 -- closing a read-only shard whose tensors were all read
		f.Close()
	}
	var missing []string
	for name, shard := range ix.WeightMap {
		if _, ok := out[name]; !ok {
			missing = append(missing, fmt.Sprintf("%q (in %s)", name, shard))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, errs.Invalid("%s: %s lists tensors missing from their shards: %s", dir, IndexName, strings.Join(missing, ", "))
	}
	return out, nil
}
