package tokenizer

import "unicode/utf8"

// bpeModel is a BPE vocabulary with ranked merges.
type bpeModel struct {
	vocab        map[string]int32 // model vocabulary only
	merges       map[[2]int32]mergeRule
	mergeList    [][2]int32 // in rank order, for writing
	unk          int32      // -1 if none
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	byteTok      [256]int32 // id of "<0xNN>" for byte fallback, -1 if absent
}

type mergeRule struct {
	rank int32
	id   int32 // the merged token
}

type symbol struct {
	id         int32
	prev, next int32 // indices into the symbol slice, -1 at the ends
	dead       bool
}

// encodeWord splits w into initial symbols (one per character, or per byte
// with byte fallback) and applies merges lowest rank first, leftmost first
// among equal ranks.
func (m *bpeModel) encodeWord(w string) []int32 {
	if m.ignoreMerges {
		if id, ok := m.vocab[w]; ok {
			return []int32{id}
		}
	}
	syms := m.initialSymbols(w)
	if len(syms) > 1 {
		m.mergeAll(syms)
	}
	out := make([]int32, 0, len(syms))
	for i := int32(0); i >= 0 && int(i) < len(syms); i = syms[i].next {
		out = append(out, syms[i].id)
	}
	return out
}

func (m *bpeModel) initialSymbols(w string) []symbol {
	syms := make([]symbol, 0, len(w))
	lastUnk := false
	add := func(id int32) {
		// #nosec G115 -- a word's symbol count, far below 2^31
		n := int32(len(syms))
		syms = append(syms, symbol{id: id, prev: n - 1, next: n + 1})
	}
	for i := 0; i < len(w); {
		_, size := utf8.DecodeRuneInString(w[i:])
		ch := w[i : i+size]
		i += size
		if id, ok := m.vocab[ch]; ok {
			add(id)
			lastUnk = false
			continue
		}
		if m.byteFallback && m.addBytes(ch, add) {
			lastUnk = false
			continue
		}
		if m.unk < 0 {
			continue // no unknown token: the character is dropped
		}
		if m.fuseUnk && lastUnk {
			continue
		}
		add(m.unk)
		lastUnk = true
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	return syms
}

// addBytes adds one <0xNN> symbol per byte of ch if all of them exist.
func (m *bpeModel) addBytes(ch string, add func(int32)) bool {
	for i := 0; i < len(ch); i++ {
		if m.byteTok[ch[i]] < 0 {
			return false
		}
	}
	for i := 0; i < len(ch); i++ {
		add(m.byteTok[ch[i]])
	}
	return true
}

// mergeAll applies merges with a priority queue ordered by (rank, position).
func (m *bpeModel) mergeAll(syms []symbol) {
	var q mergeQueue
	for i := 0; i+1 < len(syms); i++ {
		if r, ok := m.merges[[2]int32{syms[i].id, syms[i+1].id}]; ok {
			q.push(mergeItem{rank: r.rank, pos: int32(i)})
		}
	}
	for len(q) > 0 {
		it := q.pop()
		left := &syms[it.pos]
		if left.dead || left.next < 0 {
			continue
		}
		right := &syms[left.next]
		r, ok := m.merges[[2]int32{left.id, right.id}]
		if !ok || r.rank != it.rank {
			continue // stale: one side changed since this was queued
		}
		left.id = r.id
		right.dead = true
		left.next = right.next
		if left.next >= 0 {
			syms[left.next].prev = it.pos
		}
		if left.prev >= 0 {
			if r2, ok := m.merges[[2]int32{syms[left.prev].id, left.id}]; ok {
				q.push(mergeItem{rank: r2.rank, pos: left.prev})
			}
		}
		if left.next >= 0 {
			if r2, ok := m.merges[[2]int32{left.id, syms[left.next].id}]; ok {
				q.push(mergeItem{rank: r2.rank, pos: it.pos})
			}
		}
	}
}

type mergeItem struct {
	rank int32
	pos  int32
}

func (a mergeItem) less(b mergeItem) bool {
	return a.rank < b.rank || a.rank == b.rank && a.pos < b.pos
}

// mergeQueue is a binary min-heap of mergeItem.
type mergeQueue []mergeItem

func (q *mergeQueue) push(it mergeItem) {
	*q = append(*q, it)
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h[i].less(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *mergeQueue) pop() mergeItem {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l, r, small := 2*i+1, 2*i+2, i
		if l < n && h[l].less(h[small]) {
			small = l
		}
		if r < n && h[r].less(h[small]) {
			small = r
		}
		if small == i {
			break
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
	*q = h
	return top
}
