package data

import (
	"container/heap"
	"math"
	"sort"
)

// hashBytes is FNV-1a 64 followed by the splitmix64 finalizer: fixed, fast
// and well mixed, so sketches are deterministic across runs and machines.
func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// kmv estimates the number of distinct items from the k smallest hashes
// seen (k minimum values). With fewer than k distinct hashes it is exact.
type kmv struct {
	k    int
	heap maxHeap // the k smallest hashes; root is the largest of them
	set  map[uint64]struct{}
}

func newKMV(k int) *kmv { return &kmv{k: k, set: make(map[uint64]struct{}, k)} }

func (s *kmv) add(h uint64) {
	full := len(s.heap) >= s.k
	if full && h >= s.heap[0] {
		return
	}
	if _, ok := s.set[h]; ok {
		return
	}
	s.set[h] = struct{}{}
	if !full {
		heap.Push(&s.heap, h)
		return
	}
	delete(s.set, s.heap[0])
	s.heap[0] = h
	heap.Fix(&s.heap, 0)
}

func (s *kmv) estimate() int64 {
	if len(s.heap) < s.k {
		return int64(len(s.heap))
	}
	kth := float64(s.heap[0]) / math.Exp2(64)
	return int64(math.Round(float64(s.k-1) / kth))
}

type maxHeap []uint64

func (h maxHeap) Len() int           { return len(h) }
func (h maxHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h maxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *maxHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *maxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// spaceSaving keeps approximate counts of the most frequent strings in a
// fixed number of counters (Metwally et al.). Ties are broken by the string,
// so the result depends only on the input order.
type spaceSaving struct {
	cap   int
	index map[string]*ssEntry
	heap  []*ssEntry // min-heap by (count, then larger string first)
}

type ssEntry struct {
	gram       string
	count, err int64
	pos        int
}

func newSpaceSaving(capacity int) *spaceSaving {
	return &spaceSaving{cap: capacity, index: make(map[string]*ssEntry, capacity)}
}

// less orders the heap: the entry evicted first has the lowest count and,
// among equal counts, the largest string.
func (s *spaceSaving) less(i, j int) bool {
	a, b := s.heap[i], s.heap[j]
	if a.count != b.count {
		return a.count < b.count
	}
	return a.gram > b.gram
}

func (s *spaceSaving) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.heap[i].pos, s.heap[j].pos = i, j
}

func (s *spaceSaving) down(i int) {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			return
		}
		s.swap(i, m)
		i = m
	}
}

func (s *spaceSaving) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

// add counts one occurrence of key; key is copied only when it is new.
func (s *spaceSaving) add(key []byte) {
	if e, ok := s.index[string(key)]; ok {
		e.count++
		s.down(e.pos)
		return
	}
	if len(s.heap) < s.cap {
		e := &ssEntry{gram: string(key), count: 1, pos: len(s.heap)}
		s.heap = append(s.heap, e)
		s.index[e.gram] = e
		s.up(e.pos)
		return
	}
	e := s.heap[0]
	delete(s.index, e.gram)
	e.gram, e.err = string(key), e.count
	e.count++
	s.index[e.gram] = e
	s.down(0)
}

// NGram is one frequent word n-gram. Count may overestimate the true count
// by at most Error (Error is 0 when the count is exact).
type NGram struct {
	Gram  string `json:"gram"`
	Count int64  `json:"count"`
	Error int64  `json:"error,omitempty"`
}

// top returns the n highest counts, ties broken by string ascending.
func (s *spaceSaving) top(n int) []NGram {
	out := make([]NGram, 0, len(s.heap))
	for _, e := range s.heap {
		out = append(out, NGram{Gram: e.gram, Count: e.count, Error: e.err})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Gram < out[j].Gram
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
