package nn

import (
	"math"

	"github.com/tailor-ml/tailor/internal/engine/gemm"
)

// SelfAttention is causal multi-head self-attention with grouped-query
// heads (KVHeads divides Heads; query head h reads key/value head
// h / (Heads/KVHeads), as transformers' repeat_kv). The projections are
// separate (Q, K, V, Llama/Qwen2), separate layers computed as one product
// (Fused, a Stack over Q, K, V, which stay set) or one fused layer (QKV,
// GPT-2 c_attn); the fused forms give output columns q | k | v. Rope is
// nil for learned positions.
//
// The core (attend) reads q, k and v as strided per-head views and RoPE
// takes a position offset, so a key/value cache can be added by letting
// attend take tq query rows against tk ≥ tq cached key rows (the causal
// limit of query row i becomes i + tk − tq); it is not built yet.
type SelfAttention[T Float] struct {
	Heads, KVHeads, HeadDim int
	Q, K, V, QKV, O         *Linear[T]
	Fused                   *Stack[T]
	Rope                    *RoPE[T]

	batch, seq                     int
	q, k, v, qkv, ctx, probs       []T
	dq, dk, dv, dqkv, dctx, dprobs []T
	qv, kv, vv, dqv, dkv, dvv      []T // views into the buffers above
	ldq, ldk, ldv                  int
}

func (a *SelfAttention[T]) dims() (qd, kd int) {
	return a.Heads * a.HeadDim, a.KVHeads * a.HeadDim
}

// setViews points the q/k/v views at the projection buffers for m rows.
func (a *SelfAttention[T]) setViews(m int) {
	qd, kd := a.dims()
	if a.QKV != nil || a.Fused != nil {
		w := qd + 2*kd
		a.qkv, a.dqkv = grow(a.qkv, m*w), grow(a.dqkv, m*w)
		a.qv, a.kv, a.vv = a.qkv, a.qkv[qd:], a.qkv[qd+kd:]
		a.dqv, a.dkv, a.dvv = a.dqkv, a.dqkv[qd:], a.dqkv[qd+kd:]
		a.ldq, a.ldk, a.ldv = w, w, w
		return
	}
	a.q, a.k, a.v = grow(a.q, m*qd), grow(a.k, m*kd), grow(a.v, m*kd)
	a.dq, a.dk, a.dv = grow(a.dq, m*qd), grow(a.dk, m*kd), grow(a.dv, m*kd)
	a.qv, a.kv, a.vv, a.dqv, a.dkv, a.dvv = a.q, a.k, a.v, a.dq, a.dk, a.dv
	a.ldq, a.ldk, a.ldv = qd, kd, kd
}

// Forward computes y[batch·seq, Hidden] from x (rows of one example are
// contiguous; position t of every example is t).
func (a *SelfAttention[T]) Forward(rt *Runtime, x []T, batch, seq int, y []T) {
	m := batch * seq
	a.batch, a.seq = batch, seq
	a.setViews(m)
	switch {
	case a.Fused != nil:
		a.Fused.Forward(rt, x, m, a.qkv)
	case a.QKV != nil:
		a.QKV.Forward(rt, x, m, a.qkv)
	default:
		a.Q.Forward(rt, x, m, a.q)
		a.K.Forward(rt, x, m, a.k)
		a.V.Forward(rt, x, m, a.v)
	}
	if a.Rope != nil {
		a.Rope.Apply(rt, a.qv, batch, seq, a.Heads, a.ldq, 0, false)
		a.Rope.Apply(rt, a.kv, batch, seq, a.KVHeads, a.ldk, 0, false)
	}
	qd, _ := a.dims()
	a.ctx = grow(a.ctx, m*qd)
	a.probs = grow(a.probs, batch*a.Heads*seq*seq)
	a.attend(rt, batch, seq)
	a.O.Forward(rt, a.ctx, m, y)
}

// attendBlock is the number of query rows per causal block: rows [r0, r1)
// see keys [0, r1) only, so the products skip the blocks above the
// diagonal (about a quarter of the work at 128 positions).
const attendBlock = 64

// attend computes probs = softmax(scale·q·kᵀ) (causal) and ctx = probs·v,
// in blocks of query rows. Work is split over (example, key/value head)
// pairs, each done entirely by one worker with serial GEMMs, so the
// partition fixes every result.
func (a *SelfAttention[T]) attend(rt *Runtime, batch, seq int) {
	g, hd, tt := gemm.Serial(rt.GEMM), a.HeadDim, seq*seq
	scale := T(1 / math.Sqrt(float64(hd)))
	group := a.Heads / a.KVHeads
	qd, _ := a.dims()
	rt.Parallel(batch*a.KVHeads, func(lo, hi int) {
		for pair := lo; pair < hi; pair++ {
			b, kh := pair/a.KVHeads, pair%a.KVHeads
			k, v := a.kv[b*seq*a.ldk+kh*hd:], a.vv[b*seq*a.ldv+kh*hd:]
			for h := kh * group; h < (kh+1)*group; h++ {
				p := a.probs[(b*a.Heads+h)*tt : (b*a.Heads+h+1)*tt]
				for r0 := 0; r0 < seq; r0 += attendBlock {
					r1 := min(r0+attendBlock, seq)
					pb := p[r0*seq:]
					MatMul(g, false, true, r1-r0, r1, hd, scale, a.qv[(b*seq+r0)*a.ldq+h*hd:], a.ldq, k, a.ldk, 0, pb, seq)
					softmaxRows(pb, seq, r1-r0, r0+1)
					MatMul(g, false, false, r1-r0, hd, r1, 1, pb, seq, v, a.ldv, 0, a.ctx[(b*seq+r0)*qd+h*hd:], qd)
				}
			}
		}
	})
}

// softmaxRows normalises row r of p (stride seq) over its first n0+r
// entries and zeroes the rest of the row: the vectorised kernel for
// float32, softmaxCausal per row otherwise.
func softmaxRows[T Float](p []T, seq, rows, n0 int) {
	if is32[T]() {
		softmaxRows32(as32(p), seq, rows, n0, seq)
		return
	}
	for i := 0; i < rows; i++ {
		softmaxCausal(p[i*seq:(i+1)*seq], n0+i)
	}
}

// softmaxCausal normalises row[:n] and zeroes row[n:].
func softmaxCausal[T Float](row []T, n int) {
	mx := row[0]
	for _, v := range row[1:n] {
		if v > mx {
			mx = v
		}
	}
	for j, v := range row[:n] {
		row[j] = v - mx
	}
	expInPlace(row[:n])
	var sum T
	for _, e := range row[:n] {
		sum += e
	}
	inv := 1 / sum
	for j := range row[:n] {
		row[j] *= inv
	}
	zero(row[n:])
}

// Backward takes the same x as Forward, dy, and writes (or adds into, when
// accumulate) dx. Parameter gradients are added.
func (a *SelfAttention[T]) Backward(rt *Runtime, x []T, dy, dx []T, accumulate bool) {
	batch, seq := a.batch, a.seq
	m := batch * seq
	qd, _ := a.dims()
	a.dctx = grow(a.dctx, m*qd)
	a.O.Backward(rt, a.ctx, m, dy, a.dctx, false)
	a.dprobs = grow(a.dprobs, len(a.probs))
	a.attendBackward(rt, batch, seq)
	if a.Rope != nil {
		a.Rope.Apply(rt, a.dqv, batch, seq, a.Heads, a.ldq, 0, true)
		a.Rope.Apply(rt, a.dkv, batch, seq, a.KVHeads, a.ldk, 0, true)
	}
	if a.Fused != nil {
		a.Fused.Backward(rt, x, m, a.dqkv, dx, accumulate)
		return
	}
	if a.QKV != nil {
		a.QKV.Backward(rt, x, m, a.dqkv, dx, accumulate)
		return
	}
	a.Q.Backward(rt, x, m, a.dq, dx, accumulate)
	a.K.Backward(rt, x, m, a.dk, dx, dx != nil)
	a.V.Backward(rt, x, m, a.dv, dx, dx != nil)
}

func (a *SelfAttention[T]) attendBackward(rt *Runtime, batch, seq int) {
	g, hd, tt := gemm.Serial(rt.GEMM), a.HeadDim, seq*seq
	scale := T(1 / math.Sqrt(float64(hd)))
	group := a.Heads / a.KVHeads
	qd, _ := a.dims()
	rt.Parallel(batch*a.KVHeads, func(lo, hi int) {
		for pair := lo; pair < hi; pair++ {
			b, kh := pair/a.KVHeads, pair%a.KVHeads
			k, v := a.kv[b*seq*a.ldk+kh*hd:], a.vv[b*seq*a.ldv+kh*hd:]
			dk, dv := a.dkv[b*seq*a.ldk+kh*hd:], a.dvv[b*seq*a.ldv+kh*hd:]
			for h := kh * group; h < (kh+1)*group; h++ {
				p := a.probs[(b*a.Heads+h)*tt : (b*a.Heads+h+1)*tt]
				dp := a.dprobs[(b*a.Heads+h)*tt : (b*a.Heads+h+1)*tt]
				dctx := a.dctx[b*seq*qd+h*hd:]
				beta := T(1) // the group's first head overwrites dk, dv
				if h == kh*group {
					beta = 0
				}
				MatMul(g, false, true, seq, seq, hd, 1, dctx, qd, v, a.ldv, 0, dp, seq)
				MatMul(g, true, false, seq, hd, seq, 1, p, seq, dctx, qd, beta, dv, a.ldv)
				for i := 0; i < seq; i++ {
					softmaxBackward(p[i*seq:(i+1)*seq], dp[i*seq:(i+1)*seq], i+1)
				}
				MatMul(g, false, false, seq, hd, seq, scale, dp, seq, k, a.ldk, 0, a.dqv[b*seq*a.ldq+h*hd:], a.ldq)
				MatMul(g, true, false, seq, hd, seq, scale, dp, seq, a.qv[b*seq*a.ldq+h*hd:], a.ldq, beta, dk, a.ldk)
			}
		}
	})
}

// softmaxBackward turns dp into dS = p ⊙ (dp − Σ p·dp) over the first n
// entries and zeroes the rest.
func softmaxBackward[T Float](p, dp []T, n int) {
	var dot T
	for j, v := range p[:n] {
		dot += v * dp[j]
	}
	for j, v := range p[:n] {
		dp[j] = v * (dp[j] - dot)
	}
	zero(dp[n:])
}
