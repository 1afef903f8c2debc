package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/errs"
)

// BlockQ8_0 is the number of values in one Q8_0 block.
const BlockQ8_0 = 32

// blockQ8_0Bytes is the size of one block: an fp16 scale, then 32 int8.
const blockQ8_0Bytes = 2 + BlockQ8_0

// ParseDType reads a ggml type name as llama.cpp's tools spell it: "f32",
// "f16" or "q8_0".
func ParseDType(s string) (DType, error) {
	switch s {
	case "f32":
		return F32, nil
	case "f16":
		return F16, nil
	case "q8_0":
		return Q8_0, nil
	}
	return 0, errs.Invalid("gguf tensor type %q: want f32, f16 or q8_0", s)
}

// String returns the ggml type name.
func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case Q8_0:
		return "q8_0"
	}
	return fmt.Sprintf("ggml-type-%d", uint32(d))
}

// fileType is general.file_type (llama_ftype) for a file whose matrices
// are stored as d.
func fileType(d DType) uint32 {
	switch d {
	case F16:
		return 1 // LLAMA_FTYPE_MOSTLY_F16
	case Q8_0:
		return 7 // LLAMA_FTYPE_MOSTLY_Q8_0
	}
	return 0 // LLAMA_FTYPE_ALL_F32
}

// QuantizeQ8_0 encodes data (a multiple of 32 values) as ggml's Q8_0
// blocks, exactly as ggml's quantize_row_q8_0_ref does: per block of 32,
// d = max|x| / 127 stored as fp16 (round to nearest even), and
// q = round(x · (1/d)) with halves away from zero, computed in float32
// from the float32 d (not the rounded fp16 one).
func QuantizeQ8_0(data []float32) []byte {
	out := make([]byte, len(data)/BlockQ8_0*blockQ8_0Bytes)
	for b := 0; b < len(data)/BlockQ8_0; b++ {
		x := data[b*BlockQ8_0 : (b+1)*BlockQ8_0]
		var amax float32
		for _, v := range x {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		o := out[b*blockQ8_0Bytes:]
		binary.LittleEndian.PutUint16(o, safetensors.F32ToF16(d))
		for j, v := range x {
			// #nosec G115 -- v*id is within [-127, 127] by construction of the block scale
			o[2+j] = byte(int8(math.Round(float64(float32(v * id)))))
		}
	}
	return out
}

// DequantizeQ8_0 decodes Q8_0 blocks to float32 (d · q), as ggml does.
func DequantizeQ8_0(raw []byte) []float32 {
	n := len(raw) / blockQ8_0Bytes
	out := make([]float32, n*BlockQ8_0)
	for b := 0; b < n; b++ {
		o := raw[b*blockQ8_0Bytes:]
		d := safetensors.F16ToF32(binary.LittleEndian.Uint16(o))
		for j := 0; j < BlockQ8_0; j++ {
			// #nosec G115 -- the stored byte is an int8 bit pattern (Q8_0)
			out[b*BlockQ8_0+j] = d * float32(int8(o[2+j]))
		}
	}
	return out
}
