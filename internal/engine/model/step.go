package model

import (
	"math"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/nn"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Row is one sequence in a Decoder call.
type Row struct {
	Adapter *Adapter // nil: the base alone
	// Cache is the sequence's KV cache for Step (its tokens are appended);
	// Classify ignores it.
	Cache *KVCache
	// Tokens are the new tokens for Step (the whole prompt for a prefill,
	// one token for a decode step) and the whole input for Classify.
	Tokens []int32
}

// segment is one row's run of packed token rows.
type segment struct {
	row, off, n, pos0 int
	cache             *KVCache
}

// span is one adapter's packed token rows [lo, hi) and segments [slo, shi).
type span struct {
	ad               *Adapter
	lo, hi, slo, shi int
}

// stepBuffers are reused from call to call; they grow with the batch.
type stepBuffers struct {
	segs                    []segment
	groups                  []span
	probOff                 []int
	ids, pos                []int32
	x, n1, h, tmp, lh       []f32
	q, k, v, qkv, ctx       []f32
	gate, up, act, probs    []f32
	last, nf, logits, score []f32
	yt                      []f32
}

// validate checks rows before anything is written, so that a failed call
// leaves every cache as it was.
func (d *Decoder) validate(rows []Row, caches []*KVCache) error {
	c := d.m.cfg
	if len(rows) == 0 {
		return errs.Invalid("decoder: no rows")
	}
	seen := map[*KVCache]int{}
	for i, r := range rows {
		if len(r.Tokens) == 0 {
			return errs.Invalid("decoder: row %d has no tokens", i)
		}
		if r.Adapter != nil && r.Adapter.dec != d {
			return errs.Invalid("decoder: row %d: adapter belongs to another decoder", i)
		}
		for p, t := range r.Tokens {
			if t < 0 || int(t) >= c.VocabSize {
				return errs.Invalid("decoder: row %d token %d at position %d outside vocabulary [0, %d)", i, t, p, c.VocabSize)
			}
		}
		kc := caches[i]
		if kc == nil {
			return errs.Invalid("decoder: row %d has no KV cache", i)
		}
		if kc.dec != d {
			return errs.Invalid("decoder: row %d: KV cache belongs to another decoder", i)
		}
		if j, dup := seen[kc]; dup {
			return errs.Invalid("decoder: row %d shares its KV cache with row %d", i, j)
		}
		seen[kc] = i
		if n := kc.n + len(r.Tokens); n > c.MaxPositions {
			return errs.Invalid("decoder: row %d needs %d positions, more than max_position_embeddings %d", i, n, c.MaxPositions)
		}
	}
	return nil
}

// pack orders rows by adapter (first appearance), lays their tokens out
// contiguously and sizes the buffers.
func (d *Decoder) pack(rows []Row, caches []*KVCache) int {
	b, c := &d.buf, d.m.cfg
	b.segs, b.groups = b.segs[:0], b.groups[:0]
	gi := map[*Adapter]int{}
	var order [][]int
	for i, r := range rows {
		g, ok := gi[r.Adapter]
		if !ok {
			g = len(order)
			gi[r.Adapter] = g
			order = append(order, nil)
		}
		order[g] = append(order[g], i)
	}
	m := 0
	for _, idx := range order {
		sp := span{ad: rows[idx[0]].Adapter, lo: m, slo: len(b.segs)}
		for _, i := range idx {
			n := len(rows[i].Tokens)
			b.segs = append(b.segs, segment{row: i, off: m, n: n, pos0: caches[i].n, cache: caches[i]})
			m += n
		}
		sp.hi, sp.shi = m, len(b.segs)
		b.groups = append(b.groups, sp)
	}
	b.ids, b.pos = growI(b.ids, m), growI(b.pos, m)
	b.probOff = b.probOff[:0]
	probs := 0
	for _, s := range b.segs {
		for t, tok := range rows[s.row].Tokens {
			// #nosec G115 -- pos0+t < MaxPositions, checked when the batch is prepared
			b.ids[s.off+t], b.pos[s.off+t] = tok, int32(s.pos0+t)
		}
		s.cache.reserve(s.pos0 + s.n)
		b.probOff = append(b.probOff, probs)
		probs += c.Heads * s.n * (s.pos0 + s.n)
	}
	hd, qd, kd, f := c.Hidden, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.Intermediate
	b.x, b.n1, b.h, b.tmp = growF(b.x, m*hd), growF(b.n1, m*hd), growF(b.h, m*hd), growF(b.tmp, m*max(hd, qd))
	if d.m.fam == gpt2Family {
		b.qkv = growF(b.qkv, m*(qd+2*kd))
	} else {
		b.q, b.k, b.v = growF(b.q, m*qd), growF(b.k, m*kd), growF(b.v, m*kd)
	}
	b.ctx, b.probs = growF(b.ctx, m*qd), growF(b.probs, probs)
	b.up, b.act = growF(b.up, m*f), growF(b.act, m*f)
	if d.m.fam == llamaFamily {
		b.gate = growF(b.gate, m*f)
	}
	return m
}

// run appends every row's tokens to its cache and leaves the last block's
// output, in packed order, in buf.x.
func (d *Decoder) run(rows []Row, caches []*KVCache) (int, error) {
	if err := d.validate(rows, caches); err != nil {
		return 0, err
	}
	m := d.pack(rows, caches)
	b, rt, md := &d.buf, d.rt, d.m
	if err := md.embed.Forward(b.ids[:m], b.x); err != nil {
		return 0, err
	}
	if md.pos != nil {
		if err := md.pos.Forward(b.pos[:m], b.tmp); err != nil {
			return 0, err
		}
		md.add(b.x[:m*md.cfg.Hidden], b.x, b.tmp)
	}
	for l, blk := range md.blocks {
		blk.ln1.Forward(rt, b.x, m, b.n1)
		d.attention(l, blk.attn, m)
		md.add(b.h[:m*md.cfg.Hidden], b.x, b.tmp)
		blk.ln2.Forward(rt, b.h, m, b.n1)
		d.mlp(blk.mlp, m)
		md.add(b.x[:m*md.cfg.Hidden], b.h, b.tmp)
	}
	for _, s := range b.segs {
		s.cache.n = s.pos0 + s.n
	}
	return m, nil
}

// smallRows is the largest row count projected as yᵀ = W·xᵀ: with few
// rows (decode steps) OpenBLAS runs that form up to 2–3× faster than
// x·Wᵀ, because the weight becomes the tall operand it streams through.
const smallRows = 32

// project writes y[m, Out] = x·Wᵀ + b for the base layer l.
func (d *Decoder) project(l *nn.Linear[f32], x []f32, m int, y []f32) {
	if m > smallRows {
		l.Forward(d.rt, x, m, y)
		return
	}
	yt := y
	if m > 1 {
		d.buf.yt = growF(d.buf.yt, m*l.Out)
		yt = d.buf.yt
	}
	if l.Transposed { // W [In, Out]
		nn.MatMul(d.rt.GEMM, true, true, l.Out, m, l.In, 1, l.W, l.Out, x, l.In, 0, yt, m)
	} else {
		nn.MatMul(d.rt.GEMM, false, true, l.Out, m, l.In, 1, l.W, l.In, x, l.In, 0, yt, m)
	}
	if m > 1 {
		for j := 0; j < l.Out; j++ {
			for i, v := range yt[j*m : (j+1)*m] {
				y[i*l.Out+j] = v
			}
		}
	}
	if l.B != nil {
		for i := 0; i < m; i++ {
			for j, b := range l.B[:l.Out] {
				y[i*l.Out+j] += b
			}
		}
	}
}

// linear runs the base projection once over all m rows, then adds each
// adapter's low-rank update to its own rows (two small GEMMs per group).
func (d *Decoder) linear(l *nn.Linear[f32], x []f32, m int, y []f32) {
	d.project(l, x, m, y)
	idx := d.linIdx[l]
	for _, sp := range d.buf.groups {
		if sp.ad == nil || sp.ad.lora[idx] == nil {
			continue
		}
		lw, n := sp.ad.lora[idx], sp.hi-sp.lo
		d.buf.lh = growF(d.buf.lh, n*lw.rank)
		nn.MatMul(d.rt.GEMM, false, true, n, lw.rank, l.In, 1, x[sp.lo*l.In:], l.In, lw.a, l.In, 0, d.buf.lh, lw.rank)
		nn.MatMul(d.rt.GEMM, false, true, n, l.Out, lw.rank, lw.scale, d.buf.lh, lw.rank, lw.b, lw.rank, 1, y[sp.lo*l.Out:], l.Out)
	}
}

// attention reads buf.n1 and writes the attention block's output to buf.tmp.
func (d *Decoder) attention(layer int, a *nn.SelfAttention[f32], m int) {
	b, c := &d.buf, d.m.cfg
	qd, kd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	var q, k, v []f32
	var ldq, ldk int
	if a.QKV != nil {
		d.linear(a.QKV, b.n1, m, b.qkv)
		w := qd + 2*kd
		q, k, v, ldq, ldk = b.qkv, b.qkv[qd:], b.qkv[qd+kd:], w, w
	} else {
		d.linear(a.Q, b.n1, m, b.q)
		d.linear(a.K, b.n1, m, b.k)
		d.linear(a.V, b.n1, m, b.v)
		q, k, v, ldq, ldk = b.q, b.k, b.v, qd, kd
	}
	for _, s := range b.segs {
		if a.Rope != nil {
			a.Rope.Apply(d.rt, q[s.off*ldq:], 1, s.n, c.Heads, ldq, s.pos0, false)
			a.Rope.Apply(d.rt, k[s.off*ldk:], 1, s.n, c.KVHeads, ldk, s.pos0, false)
		}
		ck, cv := s.cache.k[layer], s.cache.v[layer]
		for t := 0; t < s.n; t++ {
			r := (s.off + t) * ldk
			copy(ck[(s.pos0+t)*kd:(s.pos0+t+1)*kd], k[r:r+kd])
			copy(cv[(s.pos0+t)*kd:(s.pos0+t+1)*kd], v[r:r+kd])
		}
	}
	d.attend(layer, q, ldq)
	d.linear(a.O, b.ctx, m, b.tmp)
}

// attend computes ctx = softmax(scale·q·Kᵀ)·V for every row against its own
// cache (query t of a row sees positions ≤ pos0+t). Work is split over
// (row, key/value head) pairs, each done by one worker with serial GEMMs.
func (d *Decoder) attend(layer int, q []f32, ldq int) {
	b, c := &d.buf, d.m.cfg
	hd, qd, kd := c.HeadDim, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	g := gemm.Serial(d.rt.GEMM)
	scale := f32(1 / math.Sqrt(float64(hd)))
	group := c.Heads / c.KVHeads
	d.rt.Parallel(len(b.segs)*c.KVHeads, func(lo, hi int) {
		for pair := lo; pair < hi; pair++ {
			si, kh := pair/c.KVHeads, pair%c.KVHeads
			s := b.segs[si]
			T := s.pos0 + s.n
			ck, cv := s.cache.k[layer][kh*hd:], s.cache.v[layer][kh*hd:]
			for h := kh * group; h < (kh+1)*group; h++ {
				off := b.probOff[si] + h*s.n*T
				p := b.probs[off : off+s.n*T]
				nn.MatMul(g, false, true, s.n, T, hd, scale, q[s.off*ldq+h*hd:], ldq, ck, kd, 0, p, T)
				for t := 0; t < s.n; t++ {
					softmaxPrefix(p[t*T:(t+1)*T], s.pos0+t+1)
				}
				nn.MatMul(g, false, false, s.n, hd, T, 1, p, T, cv, kd, 0, b.ctx[s.off*qd+h*hd:], qd)
			}
		}
	})
}

// softmaxPrefix normalises row[:n] and zeroes row[n:].
func softmaxPrefix(row []f32, n int) {
	mx := row[0]
	for _, v := range row[1:n] {
		mx = max(mx, v)
	}
	var sum f32
	for j, v := range row[:n] {
		e := f32(math.Exp(float64(v - mx)))
		row[j] = e
		sum += e
	}
	inv := 1 / sum
	for j := range row[:n] {
		row[j] *= inv
	}
	clear(row[n:])
}

// mlp reads buf.n1 and writes the feed-forward block's output to buf.tmp.
func (d *Decoder) mlp(p *nn.MLP[f32], m int) {
	b, f := &d.buf, p.Up.Out
	d.linear(p.Up, b.n1, m, b.up)
	if p.Act == nn.SiLU {
		d.linear(p.Gate, b.n1, m, b.gate)
	}
	d.rt.Parallel(m, func(lo, hi int) {
		act, up := b.act[lo*f:hi*f], b.up[lo*f:hi*f]
		switch p.Act {
		case nn.SiLU:
			nn.SiLUMul(b.gate[lo*f:hi*f], up, act)
		case nn.GELUTanh:
			for i, x := range up {
				u := 0.7978845608028654 * (float64(x) + 0.044715*float64(x)*float64(x)*float64(x))
				act[i] = f32(0.5 * float64(x) * (1 + math.Tanh(u)))
			}
		default:
			for i, x := range up {
				act[i] = f32(float64(x) * 0.5 * (1 + math.Erf(float64(x)/math.Sqrt2)))
			}
		}
	})
	d.linear(p.Down, b.act, m, b.tmp)
}

// Step appends each row's Tokens to its Cache and returns the next-token
// logits after each row's last new token, [len(rows), vocab] in row order.
// Rows may mix adapters and cache lengths. The data is the Decoder's own
// buffer, valid until the next call. On error no cache has changed.
func (d *Decoder) Step(rows []Row) (engine.Tensor, error) {
	caches := make([]*KVCache, len(rows))
	for i, r := range rows {
		if r.Adapter != nil && r.Adapter.head != nil {
			return engine.Tensor{}, errs.Invalid("decoder: row %d: the adapter has a classification head; it does not generate text", i)
		}
		caches[i] = r.Cache
	}
	if _, err := d.run(rows, caches); err != nil {
		return engine.Tensor{}, err
	}
	b, c := &d.buf, d.m.cfg
	R, hd := len(rows), c.Hidden
	b.last, b.nf = growF(b.last, R*hd), growF(b.nf, R*hd)
	for _, s := range b.segs {
		r := s.off + s.n - 1
		copy(b.last[s.row*hd:(s.row+1)*hd], b.x[r*hd:(r+1)*hd])
	}
	d.m.norm.Forward(d.rt, b.last, R, b.nf)
	b.logits = growF(b.logits, R*c.VocabSize)
	d.project(d.m.lmHead, b.nf, R, b.logits)
	return engine.Tensor{Shape: []int{R, c.VocabSize}, Data: b.logits}, nil
}

// Classify returns class probabilities for each row's Tokens under its
// adapter's head (rows may mix adapters; each row gets its own head).
func (d *Decoder) Classify(rows []Row) ([][]float32, error) {
	caches := make([]*KVCache, len(rows))
	for i, r := range rows {
		if r.Adapter == nil || r.Adapter.head == nil {
			return nil, errs.Invalid("decoder: row %d: the adapter has no classification head", i)
		}
		caches[i] = d.NewCache()
	}
	m, err := d.run(rows, caches)
	if err != nil {
		return nil, err
	}
	b, hd := &d.buf, d.m.cfg.Hidden
	b.nf = growF(b.nf, m*hd)
	d.m.norm.Forward(d.rt, b.x, m, b.nf)
	b.last = growF(b.last, len(rows)*hd)
	for j, s := range b.segs { // pooled rows in packed order
		dst := b.last[j*hd : (j+1)*hd]
		if rows[s.row].Adapter.pooling == PoolLast {
			r := s.off + s.n - 1
			copy(dst, b.nf[r*hd:(r+1)*hd])
			continue
		}
		clear(dst)
		for t := 0; t < s.n; t++ {
			for i, v := range b.nf[(s.off+t)*hd : (s.off+t+1)*hd] {
				dst[i] += v
			}
		}
		inv := 1 / f32(s.n)
		for i := range dst {
			dst[i] *= inv
		}
	}
	out := make([][]float32, len(rows))
	for _, sp := range b.groups {
		k, n := sp.ad.head.Out, sp.shi-sp.slo
		b.score = growF(b.score, n*k)
		sp.ad.head.Forward(d.rt, b.last[sp.slo*hd:], n, b.score)
		for j := 0; j < n; j++ {
			p := append([]float32(nil), b.score[j*k:(j+1)*k]...)
			softmax(p)
			out[b.segs[sp.slo+j].row] = p
		}
	}
	return out, nil
}

// Greedy generates maxNew tokens for each row (Tokens is the prompt) by
// taking the most likely token at every step (the lowest id on a tie): one
// batched prefill, then one batched decode step per token. Rows without a
// Cache get a fresh one.
func (d *Decoder) Greedy(rows []Row, maxNew int) ([][]int32, error) {
	step := make([]Row, len(rows))
	for i, r := range rows {
		step[i] = r
		if step[i].Cache == nil {
			step[i].Cache = d.NewCache()
		}
	}
	out := make([][]int32, len(rows))
	for n := 0; n < maxNew; n++ {
		lg, err := d.Step(step)
		if err != nil {
			return nil, err
		}
		v := lg.Shape[1]
		for i := range step {
			tok := argmax(lg.Data[i*v : (i+1)*v])
			out[i] = append(out[i], tok)
			step[i].Tokens = []int32{tok}
		}
	}
	return out, nil
}

func argmax(row []f32) int32 {
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	return int32(best)
}
