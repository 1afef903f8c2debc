package data

import (
	"bytes"
	"slices"
	"sort"
)

// heavyHitters keeps approximate counts of the most frequent strings in a
// bounded table: when it holds more than cap keys it keeps the cap/2 highest
// (ties broken by a fixed 64-bit hash of the string) and raises floor to the
// highest count it dropped. A key first seen (or seen again) after that
// starts at floor+1, so every count is an upper bound exceeding the true
// count by at most its err, as in space-saving (Metwally et al.). Prunes
// happen at fixed points of the input, so the result depends only on the
// input order. Keys are looked up by their 64-bit hash (two strings sharing
// one among the ≤ cap live keys, odds about cap²/2⁶⁵, would share a counter).
//
// The table is open-addressed with linear probing, at most half full, in
// 16-byte slots; a prune deletes in place by backward shifting (no
// tombstones). Key bytes live in one arena, compacted at a prune once it
// holds four times the live bytes left by the last compaction, so counting
// allocates nothing and strings are made only for the final top. Cost: O(1)
// per add, amortized O(1) per new key plus a selection among the keys tied
// at the prune threshold.
type heavyHitters struct {
	cap   int
	slots []hhSlot // len is a power of two ≥ 2·cap
	meta  []hhMeta // parallel to slots
	live  int
	arena []byte // key bytes; dead bytes of dropped keys until compacted
	// compactAt is the arena length that triggers a compaction: four times
	// the live bytes left by the last one.
	compactAt int
	floor     int64
	// Scratch space of prune and compact.
	spareArena []byte
	hist       []int
	tied       []uint64
}

// hhSlot is one counter: the key's hash and its count (0: empty slot).
type hhSlot struct {
	h     uint64
	count int64
}

// hhMeta is what only inserts, prunes and top read: the count's error bound
// and where the key's bytes are in the arena.
type hhMeta struct {
	err       int64
	off, size int // int, not uint32: the arena is fed by imported text and may pass 4 GiB
}

// hhHist bounds the histogram a prune finds its threshold with: counts more
// than hhHist above the floor share its top bucket.
const hhHist = 1024

func newHeavyHitters(capacity int) *heavyHitters {
	n := 16
	for n < 2*capacity { // at most cap+1 live keys: at most half full
		n <<= 1
	}
	return &heavyHitters{cap: capacity, slots: make([]hhSlot, n), meta: make([]hhMeta, n), hist: make([]int, 4*(hhHist+2))}
}

// add counts one occurrence of key, whose hashBytes is h; key is copied
// only when it is new.
func (s *heavyHitters) add(key []byte, h uint64) {
	if i := s.find(h); s.slots[i].count != 0 {
		s.slots[i].count++
	} else {
		s.insert(i, h, key, nil)
	}
}

// addPair counts one occurrence of the key a+" "+b, whose hashBytes is h;
// the key is built only when it is new.
func (s *heavyHitters) addPair(a, b []byte, h uint64) {
	if i := s.find(h); s.slots[i].count != 0 {
		s.slots[i].count++
	} else {
		s.insert(i, h, a, b)
	}
}

// find returns the index of h's slot, or of the empty slot where h would go.
func (s *heavyHitters) find(h uint64) int {
	mask := len(s.slots) - 1
	// #nosec G115 -- hash bits masked to the table size; wrap-around is intended
	for i := int(h) & mask; ; i = (i + 1) & mask {
		if e := &s.slots[i]; e.count == 0 || e.h == h {
			return i
		}
	}
}

// insert adds the new key a (+" "+b when b is not nil) with hash h in the
// empty slot i.
func (s *heavyHitters) insert(i int, h uint64, a, b []byte) {
	off := len(s.arena)
	s.arena = append(s.arena, a...)
	if b != nil {
		s.arena = append(append(s.arena, ' '), b...)
	}
	s.slots[i] = hhSlot{h: h, count: s.floor + 1}
	s.meta[i] = hhMeta{err: s.floor, off: off, size: len(s.arena) - off}
	s.live++
	if s.live > s.cap {
		s.prune()
	}
}

// prune keeps the cap/2 highest counts, ties broken by the lower hash.
func (s *heavyHitters) prune() {
	keep := s.cap / 2
	threshold, above := s.threshold(keep)
	s.tied = s.tied[:0]
	for _, e := range s.slots {
		if e.count == threshold {
			s.tied = append(s.tied, e.h)
		}
	}
	lastTied := nthSmallest(s.tied, keep-above-1) // the highest tied hash kept
	s.floor = max(s.floor, threshold)             // every count ≤ threshold is dropped or tied
	// Scan from just after an empty slot: no cluster wraps past it, so a
	// backward shift only moves a slot the scan has not reached into the
	// slot being looked at, which is then looked at again.
	mask := len(s.slots) - 1
	start := 0
	for s.slots[start].count != 0 {
		start++
	}
	for k := 1; k < len(s.slots); {
		i := (start + k) & mask
		e := s.slots[i]
		if e.count != 0 && (e.count < threshold || e.count == threshold && e.h > lastTied) {
			s.remove(i)
			s.live--
			continue
		}
		k++
	}
	if len(s.arena) >= s.compactAt {
		s.compact()
	}
}

// remove empties slot i and shifts later slots of its cluster back so every
// key stays reachable from its home slot (Knuth's algorithm R).
func (s *heavyHitters) remove(i int) {
	mask := len(s.slots) - 1
	for {
		s.slots[i] = hhSlot{}
		j := i
		for {
			j = (j + 1) & mask
			if s.slots[j].count == 0 {
				return
			}
			// #nosec G115 -- hash bits masked to the table size; wrap-around is intended
			home := int(s.slots[j].h) & mask
			// The key at j may move to i unless its home lies in (i, j].
			if i <= j && (home <= i || home > j) || i > j && home <= i && home > j {
				s.slots[i], s.meta[i] = s.slots[j], s.meta[j]
				i = j
				break
			}
		}
	}
}

// compact copies the live keys into a fresh arena.
func (s *heavyHitters) compact() {
	arena := s.spareArena[:0]
	for i, e := range s.slots {
		if e.count != 0 {
			m := &s.meta[i]
			off := len(arena)
			arena = append(arena, s.arena[m.off:m.off+m.size]...)
			m.off = off
		}
	}
	s.arena, s.spareArena = arena, s.arena
	s.compactAt = 4 * len(arena)
}

// threshold returns the keep-th highest count and how many counts are
// higher. Counts are at least the floor, so a histogram of count-floor finds
// it in one pass unless keep counts or more share the histogram's top
// bucket; then it sorts them.
func (s *heavyHitters) threshold(keep int) (threshold int64, above int) {
	// Four histograms, summed after, so that runs of equal counts do not
	// serialize on one counter; bucket hhHist+1 counts the empty slots.
	const w = hhHist + 2
	clear(s.hist)
	h0, h1, h2, h3 := s.hist[:w], s.hist[w:2*w], s.hist[2*w:3*w], s.hist[3*w:4*w]
	bucket := func(c int64) int {
		d := int(min(c-s.floor, hhHist))
		if c == 0 {
			d = hhHist + 1
		}
		return d
	}
	slots := s.slots // len is a multiple of 4
	for i := 0; i+3 < len(slots); i += 4 {
		h0[bucket(slots[i].count)]++
		h1[bucket(slots[i+1].count)]++
		h2[bucket(slots[i+2].count)]++
		h3[bucket(slots[i+3].count)]++
	}
	for v := range h0 {
		h0[v] += h1[v] + h2[v] + h3[v]
	}
	if s.hist[hhHist] < keep {
		above = s.hist[hhHist]
		for v := hhHist - 1; v >= 0; v-- {
			if above+s.hist[v] >= keep {
				return s.floor + int64(v), above
			}
			above += s.hist[v]
		}
	}
	counts := make([]int64, 0, s.live)
	for _, e := range s.slots {
		if e.count != 0 {
			counts = append(counts, e.count)
		}
	}
	slices.Sort(counts)
	threshold = counts[len(counts)-keep]
	above = len(counts) - sort.Search(len(counts), func(i int) bool { return counts[i] > threshold })
	return threshold, above
}

// nthSmallest returns the n-th smallest (0-based) of the values in a,
// reordering a (quickselect with a median-of-three pivot).
func nthSmallest(a []uint64, n int) uint64 {
	lo, hi := 0, len(a)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		p := max(min(a[lo], a[mid]), min(max(a[lo], a[mid]), a[hi]))
		i, j := lo, hi
		for i <= j {
			for a[i] < p {
				i++
			}
			for a[j] > p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case n <= j:
			hi = j
		case n >= i:
			lo = i
		default:
			return a[n]
		}
	}
	return a[n]
}

func (s *heavyHitters) key(i int) []byte {
	m := &s.meta[i]
	return s.arena[m.off : m.off+m.size]
}

// NGram is one frequent word n-gram. Count may overestimate the true count
// by at most Error (Error is 0 when the count is exact).
type NGram struct {
	Gram  string `json:"gram"`
	Count int64  `json:"count"`
	Error int64  `json:"error,omitempty"`
}

// top returns the n highest counts, ties broken by string ascending. It
// selects with a heap of n slots, so strings are made for those n only.
func (s *heavyHitters) top(n int) []NGram {
	// below reports whether slot i ranks below slot j.
	below := func(i, j int) bool {
		if ci, cj := s.slots[i].count, s.slots[j].count; ci != cj {
			return ci < cj
		}
		return bytes.Compare(s.key(i), s.key(j)) > 0
	}
	// h is a min-heap by rank: its root is the lowest-ranked slot kept.
	h := make([]int, 0, n)
	down := func(i int) {
		for {
			l, m := 2*i+1, i
			if l < len(h) && below(h[l], h[m]) {
				m = l
			}
			if r := l + 1; r < len(h) && below(h[r], h[m]) {
				m = r
			}
			if m == i {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i, e := range s.slots {
		switch {
		case e.count == 0 || n == 0:
		case len(h) < n:
			h = append(h, i)
			for j := len(h) - 1; j > 0 && below(h[j], h[(j-1)/2]); j = (j - 1) / 2 {
				h[j], h[(j-1)/2] = h[(j-1)/2], h[j]
			}
		case below(h[0], i):
			h[0] = i
			down(0)
		}
	}
	sort.Slice(h, func(a, b int) bool { return below(h[b], h[a]) })
	out := make([]NGram, len(h))
	for k, i := range h {
		out[k] = NGram{Gram: string(s.key(i)), Count: s.slots[i].count, Error: s.meta[i].err}
	}
	return out
}
