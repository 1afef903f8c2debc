package nn

import "math"

// Norm is a per-row normalisation layer (RMSNorm or LayerNorm).
type Norm[T Float] interface {
	// Forward writes y[m, Dim] from x[m, Dim] and keeps row statistics.
	Forward(rt *Runtime, x []T, m int, y []T)
	// AddForward writes sum = x + res (a residual connection) and then
	// y = Forward(sum), in one pass where it can.
	AddForward(rt *Runtime, x, res []T, m int, sum, y []T)
	// Backward takes the same x, writes (or adds, when accumulate) dx and
	// adds into the weight gradients.
	Backward(rt *Runtime, x []T, m int, dy, dx []T, accumulate bool)
}

// RMSNorm is y = x / sqrt(mean(x²) + Eps) · W (Llama, Qwen2).
type RMSNorm[T Float] struct {
	Dim   int
	Eps   float64
	W, DW []T
	rstd  []T
}

var _ Norm[float32] = (*RMSNorm[float32])(nil)

// Forward implements Norm.
func (n *RMSNorm[T]) Forward(rt *Runtime, x []T, m int, y []T) { n.AddForward(rt, x, nil, m, nil, y) }

// AddForward implements Norm; res and sum may be nil (Forward). float32
// runs the vectorised kernel (rmsNormRows32).
func (n *RMSNorm[T]) AddForward(rt *Runtime, x, res []T, m int, sum, y []T) {
	n.rstd = grow(n.rstd, m)
	d := n.Dim
	if is32[T]() {
		rt.Parallel(m, func(lo, hi int) {
			var r, s []float32
			if res != nil {
				r, s = as32(res[lo*d:hi*d]), as32(sum[lo*d:hi*d])
			}
			rmsNormRows32(as32(x[lo*d:hi*d]), r, s, as32(n.W), as32(y[lo*d:hi*d]), as32(n.rstd[lo:hi]), hi-lo, d, n.Eps)
		})
		return
	}
	if res != nil {
		rt.Parallel(m, func(lo, hi int) {
			for i := lo * d; i < hi*d; i++ {
				sum[i] = x[i] + res[i]
			}
		})
		x = sum
	}
	rt.Parallel(m, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			xr, yr := x[i*d:(i+1)*d], y[i*d:(i+1)*d]
			var ss T
			for _, v := range xr {
				ss += v * v
			}
			r := T(1 / math.Sqrt(float64(ss)/float64(d)+n.Eps))
			n.rstd[i] = r
			for j, v := range xr {
				yr[j] = v * r * n.W[j]
			}
		}
	})
}

// Backward implements Norm.
func (n *RMSNorm[T]) Backward(rt *Runtime, x []T, m int, dy, dx []T, accumulate bool) {
	d := n.Dim
	if dx != nil {
		rt.Parallel(m, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				xr, gr, dr := x[i*d:(i+1)*d], dy[i*d:(i+1)*d], dx[i*d:(i+1)*d]
				r := n.rstd[i]
				var dot T
				for j, v := range xr {
					dot += gr[j] * n.W[j] * v
				}
				c := dot * r * r / T(d)
				for j, v := range xr {
					g := r * (gr[j]*n.W[j] - v*c)
					if accumulate {
						dr[j] += g
					} else {
						dr[j] = g
					}
				}
			}
		})
	}
	if n.DW != nil {
		rt.Parallel(d, func(lo, hi int) {
			for i := 0; i < m; i++ {
				r := n.rstd[i]
				xr, gr := x[i*d+lo:i*d+hi], dy[i*d+lo:i*d+hi]
				dw := n.DW[lo:hi]
				for j, v := range xr {
					dw[j] += gr[j] * v * r
				}
			}
		})
	}
}

// LayerNorm is y = (x − mean) / sqrt(var + Eps) · W + B (GPT-2).
type LayerNorm[T Float] struct {
	Dim        int
	Eps        float64
	W, B       []T
	DW, DB     []T
	mean, rstd []T
}

var _ Norm[float32] = (*LayerNorm[float32])(nil)

// AddForward implements Norm: the sum, then Forward.
func (n *LayerNorm[T]) AddForward(rt *Runtime, x, res []T, m int, sum, y []T) {
	rt.Parallel(m, func(lo, hi int) {
		for i := lo * n.Dim; i < hi*n.Dim; i++ {
			sum[i] = x[i] + res[i]
		}
	})
	n.Forward(rt, sum, m, y)
}

// Forward implements Norm.
func (n *LayerNorm[T]) Forward(rt *Runtime, x []T, m int, y []T) {
	n.mean, n.rstd = grow(n.mean, m), grow(n.rstd, m)
	d := n.Dim
	rt.Parallel(m, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			xr, yr := x[i*d:(i+1)*d], y[i*d:(i+1)*d]
			var s T
			for _, v := range xr {
				s += v
			}
			mu := s / T(d)
			var vs T
			for _, v := range xr {
				vs += (v - mu) * (v - mu)
			}
			r := T(1 / math.Sqrt(float64(vs)/float64(d)+n.Eps))
			n.mean[i], n.rstd[i] = mu, r
			for j, v := range xr {
				yr[j] = (v-mu)*r*n.W[j] + n.B[j]
			}
		}
	})
}

// Backward implements Norm.
func (n *LayerNorm[T]) Backward(rt *Runtime, x []T, m int, dy, dx []T, accumulate bool) {
	d := n.Dim
	if dx != nil {
		rt.Parallel(m, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				xr, gr, dr := x[i*d:(i+1)*d], dy[i*d:(i+1)*d], dx[i*d:(i+1)*d]
				mu, r := n.mean[i], n.rstd[i]
				var sg, sgx T
				for j, v := range xr {
					g := gr[j] * n.W[j]
					sg += g
					sgx += g * (v - mu) * r
				}
				sg /= T(d)
				sgx /= T(d)
				for j, v := range xr {
					xh := (v - mu) * r
					g := r * (gr[j]*n.W[j] - sg - xh*sgx)
					if accumulate {
						dr[j] += g
					} else {
						dr[j] = g
					}
				}
			}
		})
	}
	if n.DW == nil && n.DB == nil {
		return
	}
	rt.Parallel(d, func(lo, hi int) {
		for i := 0; i < m; i++ {
			mu, r := n.mean[i], n.rstd[i]
			xr, gr := x[i*d+lo:i*d+hi], dy[i*d+lo:i*d+hi]
			for j, v := range xr {
				if n.DW != nil {
					n.DW[lo+j] += gr[j] * (v - mu) * r
				}
				if n.DB != nil {
					n.DB[lo+j] += gr[j]
				}
			}
		}
	})
}
