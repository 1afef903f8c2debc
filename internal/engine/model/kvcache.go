package model

// KVCache holds one sequence's keys and values for every layer, after RoPE,
// for the key/value heads only (grouped-query attention shares them among
// the query heads of a group). It grows with the sequence, by doubling, up
// to max_position_embeddings.
type KVCache struct {
	dec  *Decoder
	n    int     // positions held
	k, v [][]f32 // per layer: [capacity, KVHeads·HeadDim]
}

// NewCache returns an empty cache for one sequence.
func (d *Decoder) NewCache() *KVCache {
	L := len(d.m.blocks)
	return &KVCache{dec: d, k: make([][]f32, L), v: make([][]f32, L)}
}

// Len returns the number of positions the cache holds.
func (c *KVCache) Len() int { return c.n }

// Truncate drops every position from n on (n ≥ Len is a no-op), so a
// sequence can be rewound without recomputing its prefix.
func (c *KVCache) Truncate(n int) {
	if n >= 0 && n < c.n {
		c.n = n
	}
}

// Bytes returns the memory the cache has allocated.
func (c *KVCache) Bytes() int64 {
	var n int64
	for l := range c.k {
		n += int64(cap(c.k[l])+cap(c.v[l])) * 4
	}
	return n
}

// reserve makes room for n positions, keeping what is held.
func (c *KVCache) reserve(n int) {
	kd := c.dec.m.cfg.KVHeads * c.dec.m.cfg.HeadDim
	if len(c.k) == 0 || cap(c.k[0]) >= n*kd {
		return
	}
	want := max(n, 2*cap(c.k[0])/kd, 16)
	want = min(want, max(n, c.dec.m.cfg.MaxPositions))
	for l := range c.k {
		nk, nv := make([]f32, want*kd), make([]f32, want*kd)
		copy(nk, c.k[l][:c.n*kd])
		copy(nv, c.v[l][:c.n*kd])
		c.k[l], c.v[l] = nk, nv
	}
}
