package nn

import (
	"math"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

// InvFreq returns RoPE's inverse frequencies for a head of headDim, as
// Hugging Face computes them (float32 arithmetic), including rope_scaling
// "linear" and "llama3".
func InvFreq(headDim int, theta float64, s engine.RopeScaling) ([]float64, error) {
	if headDim <= 0 || headDim%2 != 0 {
		return nil, errs.Invalid("rope: head_dim %d must be positive and even", headDim)
	}
	if theta <= 0 {
		return nil, errs.Invalid("rope: rope_theta %g must be positive", theta)
	}
	half := headDim / 2
	inv := make([]float64, half)
	for i := range inv {
		e := float32(float32(2*i) / float32(headDim))
		inv[i] = float64(float32(1) / float32(math.Pow(theta, float64(e))))
	}
	switch s.Type {
	case "", "default":
	case "linear":
		if s.Factor <= 0 {
			return nil, errs.Invalid("rope_scaling.factor %g must be positive", s.Factor)
		}
		for i := range inv {
			inv[i] = float64(float32(inv[i]) / float32(s.Factor))
		}
	case "llama3":
		if s.Factor <= 0 || s.LowFreqFactor <= 0 || s.HighFreqFactor <= s.LowFreqFactor || s.OriginalMaxPositionEmbeddings <= 0 {
			return nil, errs.Invalid("rope_scaling (llama3): need factor > 0, 0 < low_freq_factor < high_freq_factor, original_max_position_embeddings > 0")
		}
		llama3(inv, s)
	default:
		return nil, errs.Invalid("rope_scaling.type %q not supported (use linear or llama3)", s.Type)
	}
	return inv, nil
}

// llama3 follows transformers' _compute_llama3_parameters in float32.
func llama3(inv []float64, s engine.RopeScaling) {
	old := float64(s.OriginalMaxPositionEmbeddings)
	lowWave := old / s.LowFreqFactor
	highWave := old / s.HighFreqFactor
	f := float32(s.Factor)
	for i, v := range inv {
		fv := float32(v)
		wave := float64(float32(2*math.Pi) / fv)
		out := fv
		if wave > lowWave {
			out = fv / f
		}
		if !(wave < highWave) && !(wave > lowWave) {
			smooth := float32((old/wave - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor))
			out = (1-smooth)*out/f + smooth*out
		}
		inv[i] = float64(out)
	}
}

// RoPE rotates query and key heads by position (rotate_half layout: the
// first half of a head pairs with the second half).
type RoPE[T Float] struct {
	HeadDim  int
	MaxPos   int
	cos, sin []T // [MaxPos, HeadDim/2]
}

// NewRoPE precomputes the rotation table for positions [0, maxPos).
func NewRoPE[T Float](headDim, maxPos int, theta float64, s engine.RopeScaling) (*RoPE[T], error) {
	inv, err := InvFreq(headDim, theta, s)
	if err != nil {
		return nil, err
	}
	half := headDim / 2
	r := &RoPE[T]{HeadDim: headDim, MaxPos: maxPos, cos: make([]T, maxPos*half), sin: make([]T, maxPos*half)}
	for p := 0; p < maxPos; p++ {
		for i, f := range inv {
			ang := float64(float32(p) * float32(f))
			r.cos[p*half+i] = T(math.Cos(ang))
			r.sin[p*half+i] = T(math.Sin(ang))
		}
	}
	return r, nil
}

// Apply rotates x in place: x holds batch×seq rows of stride ld, each with
// heads heads of HeadDim starting at column 0; row b·seq+t has position
// pos0+t. inverse applies the transposed rotation (the backward pass).
func (r *RoPE[T]) Apply(rt *Runtime, x []T, batch, seq, heads, ld, pos0 int, inverse bool) {
	half := r.HeadDim / 2
	if is32[T]() {
		rt.Parallel(batch*seq, func(lo, hi int) {
			pos := make([]int32, hi-lo)
			for i := range pos {
				// #nosec G115 -- a position below MaxPos, which the tables hold
				pos[i] = int32(pos0 + (lo+i)%seq)
			}
			ropeRows32(as32(x[lo*ld:]), ld, hi-lo, heads, half, as32(r.cos), as32(r.sin), pos, inverse)
		})
		return
	}
	rt.Parallel(batch*seq, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			p := pos0 + row%seq
			c, s := r.cos[p*half:(p+1)*half], r.sin[p*half:(p+1)*half]
			for h := 0; h < heads; h++ {
				v := x[row*ld+h*r.HeadDim : row*ld+(h+1)*r.HeadDim]
				x1, x2 := v[:half], v[half:]
				x2, c, s := x2[:len(x1)], c[:len(x1)], s[:len(x1)] // one bounds check per head
				if inverse {
					for i, a := range x1 {
						b := x2[i]
						x1[i] = a*c[i] + b*s[i]
						x2[i] = b*c[i] - a*s[i]
					}
					continue
				}
				for i, a := range x1 {
					b := x2[i]
					x1[i] = a*c[i] - b*s[i]
					x2[i] = b*c[i] + a*s[i]
				}
			}
		}
	})
}
