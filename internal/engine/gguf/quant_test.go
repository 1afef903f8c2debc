package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine/safetensors"
)

// TestQuantizeQ8_0Block checks one block byte by byte against ggml's
// quantize_row_q8_0_ref worked by hand: d = max|x|/127, q = roundf(x/d).
func TestQuantizeQ8_0Block(t *testing.T) {
	x := make([]float32, BlockQ8_0)
	for i := range x {
		x[i] = float32(i-16) / 4 // -4 … 3.75; max |x| = 4
	}
	x[31] = 0.5 * 4 / 127 // exactly half a step: rounds away from zero to 1
	raw := QuantizeQ8_0(x)
	if len(raw) != 34 {
		t.Fatalf("%d bytes, want 34", len(raw))
	}
	d := float32(4) / 127
	if got, want := binary.LittleEndian.Uint16(raw), safetensors.F32ToF16(d); got != want {
		t.Errorf("scale %#04x, want %#04x", got, want)
	}
	id := 1 / d
	for j, v := range x {
		want := int8(math.Round(float64(float32(v * id))))
		if got := int8(raw[2+j]); got != want {
			t.Errorf("q[%d] = %d, want %d", j, got, want)
		}
	}
	if int8(raw[2]) != -127 || int8(raw[2+31]) != 1 {
		t.Errorf("q[0] = %d (want -127), q[31] = %d (want 1)", int8(raw[2]), int8(raw[2+31]))
	}
	zero := QuantizeQ8_0(make([]float32, 32))
	if !bytes.Equal(zero, make([]byte, 34)) {
		t.Errorf("zero block %v", zero)
	}
}

func TestQ8_0RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 4*BlockQ8_0)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := DequantizeQ8_0(QuantizeQ8_0(x))
	for b := 0; b < 4; b++ {
		var amax float64
		for _, v := range x[b*32 : b*32+32] {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		tol := amax/127/2*1.01 + amax*1e-3 // half a step, plus the fp16 scale's rounding
		for j := b * 32; j < b*32+32; j++ {
			if math.Abs(float64(y[j]-x[j])) > tol {
				t.Fatalf("x[%d] = %v came back %v (tolerance %v)", j, x[j], y[j], tol)
			}
		}
	}
}

// TestWriteLlamaQ8_0 writes matrices whose rows are whole blocks as Q8_0
// (file type 7), others as F16, 1-D tensors as F32, and reads them back.
func TestWriteLlamaQ8_0(t *testing.T) {
	cfg := tinyConfig()
	cfg.Hidden, cfg.HeadDim, cfg.Intermediate = 64, 32, 48 // ffn_down rows: 48 values, not whole blocks
	w := tinyWeights(cfg)
	data := encode(t, cfg, w, Q8_0)
	f, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Value("general.file_type"); v != uint32(7) {
		t.Errorf("general.file_type = %v, want 7 (MOSTLY_Q8_0)", v)
	}
	want := map[string]DType{"token_embd.weight": Q8_0, "blk.0.attn_q.weight": Q8_0, "blk.0.ffn_up.weight": Q8_0,
		"blk.0.ffn_down.weight": F16, "blk.0.attn_norm.weight": F32}
	for _, ti := range f.Tensors {
		if dt, ok := want[ti.Name]; ok && ti.Type != dt {
			t.Errorf("%s stored as %v, want %v", ti.Name, ti.Type, dt)
		}
	}
	got, err := f.Tensor("blk.0.ffn_up.weight")
	if err != nil {
		t.Fatal(err)
	}
	if exp := DequantizeQ8_0(QuantizeQ8_0(w["model.layers.0.mlp.up_proj.weight"].Data)); !equalF32(got.Data, exp) {
		t.Error("ffn_up read back differs from its quantization")
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
