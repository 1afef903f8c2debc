package model

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"

	"github.com/tailor-ml/tailor/internal/engine"
)

// writeST writes float32 tensors as safetensors (the exchange format with
// the torch reference; kept here so the test does not depend on
// engine/safetensors).
func writeST(path string, ts map[string]engine.Tensor) error {
	names := make([]string, 0, len(ts))
	for k := range ts {
		names = append(names, k)
	}
	sort.Strings(names)
	header := map[string]any{}
	off := 0
	for _, k := range names {
		n := len(ts[k].Data) * 4
		header[k] = map[string]any{"dtype": "F32", "shape": ts[k].Shape, "data_offsets": []int{off, off + n}}
		off += n
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	buf := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	buf = append(buf, h...)
	for _, k := range names {
		for _, v := range ts[k].Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
	}
	return os.WriteFile(path, buf, 0o644)
}

// readST reads a float32-only safetensors file.
func readST(path string) (map[string]engine.Tensor, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(raw) < 8 {
		return nil, fmt.Errorf("%s: short file", path)
	}
	n := binary.LittleEndian.Uint64(raw)
	if n > uint64(len(raw)-8) {
		return nil, fmt.Errorf("%s: header length %d past end", path, n)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	data := raw[8+n:]
	out := map[string]engine.Tensor{}
	for k, v := range header {
		if k == "__metadata__" {
			continue
		}
		var meta struct {
			DType   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &meta); err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", path, k, err)
		}
		a, b := meta.Offsets[0], meta.Offsets[1]
		if meta.DType != "F32" || a < 0 || b > len(data) || a > b || (b-a) != 4*engine.Numel(meta.Shape) {
			return nil, fmt.Errorf("%s: tensor %q: bad dtype or offsets", path, k)
		}
		t := engine.Tensor{Shape: meta.Shape, Data: make([]float32, (b-a)/4)}
		for i := range t.Data {
			t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[a+4*i:]))
		}
		out[k] = t
	}
	return out, nil
}
