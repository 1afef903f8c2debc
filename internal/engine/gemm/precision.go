package gemm

import "fmt"

// Precision is the arithmetic of the engine's float32 matrix products.
// Float64 products (the engine's exact reference) are never lowered.
type Precision string

// The precisions.
const (
	// FP32: float32 inputs, float32 accumulation (the default).
	FP32 Precision = "fp32"
	// BF16: inputs rounded to bfloat16 (nearest even), products summed in
	// float32, float32 results; the weights stay float32 (master copies).
	// This is torch.autocast("cpu", dtype=torch.bfloat16) for a matrix
	// product. Runs natively only where the CPU has AVX512_BF16
	// (NewPrecision falls back to FP32 elsewhere).
	BF16 Precision = "bf16"
)

// ParsePrecision accepts "fp32" and "bf16"; "" is FP32.
func ParsePrecision(s string) (Precision, error) {
	switch Precision(s) {
	case "", FP32:
		return FP32, nil
	case BF16:
		return BF16, nil
	}
	return "", fmt.Errorf("precision %q not supported (use fp32 or bf16)", s)
}
