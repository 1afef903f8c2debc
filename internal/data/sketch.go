package data

import (
	"container/heap"
	"math"
	"slices"
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

// heavyHitters keeps approximate counts of the most frequent strings in a
// bounded map: when it holds more than cap keys it keeps the cap/2 highest
// (ties broken by a fixed 64-bit hash of the string) and raises floor to the
// highest count it dropped. A key first seen (or seen again) after that
// starts at floor+1, so every count is an upper bound exceeding the true
// count by at most its err, as in space-saving (Metwally et al.). Prunes
// happen at fixed points of the input, so the result depends only on the
// input order. Keys are looked up by their 64-bit hash (two strings sharing
// one among the ≤ cap live keys, odds about cap²/2⁶⁵, would share a counter).
// Cost: O(1) per add, amortized O(log cap) per new key.
type heavyHitters struct {
	cap   int
	index map[uint64]*hhEntry
	floor int64
}

type hhEntry struct {
	gram       string
	count, err int64
}

func newHeavyHitters(capacity int) *heavyHitters {
	return &heavyHitters{cap: capacity, index: make(map[uint64]*hhEntry, capacity+1)}
}

// add counts one occurrence of key, whose hashBytes is h; key is copied
// only when it is new.
func (s *heavyHitters) add(key []byte, h uint64) {
	if e, ok := s.index[h]; ok {
		e.count++
		return
	}
	s.index[h] = &hhEntry{gram: string(key), count: s.floor + 1, err: s.floor}
	if len(s.index) > s.cap {
		s.prune()
	}
}

// prune keeps the cap/2 highest counts, ties broken by the lower hash, in a
// fresh map (a map that only deletes would fill with tombstones). It sorts
// plain integers: the counts, to find the threshold count, then the hashes of
// the keys tied at the threshold.
func (s *heavyHitters) prune() {
	keep := s.cap / 2
	counts := make([]int64, 0, len(s.index))
	for _, e := range s.index {
		counts = append(counts, e.count)
	}
	slices.Sort(counts)
	threshold := counts[len(counts)-keep] // the keep-th highest count
	above := len(counts) - sort.Search(len(counts), func(i int) bool { return counts[i] > threshold })
	var tied []uint64
	for h, e := range s.index {
		if e.count == threshold {
			tied = append(tied, h)
		}
	}
	slices.Sort(tied)
	tied = tied[:keep-above]
	old := s.index
	s.index = make(map[uint64]*hhEntry, s.cap+1)
	for h, e := range old {
		if e.count > threshold {
			s.index[h] = e
		} else {
			s.floor = max(s.floor, e.count)
		}
	}
	for _, h := range tied {
		s.index[h] = old[h]
	}
}

// NGram is one frequent word n-gram. Count may overestimate the true count
// by at most Error (Error is 0 when the count is exact).
type NGram struct {
	Gram  string `json:"gram"`
	Count int64  `json:"count"`
	Error int64  `json:"error,omitempty"`
}

// top returns the n highest counts, ties broken by string ascending.
func (s *heavyHitters) top(n int) []NGram {
	all := make([]NGram, 0, len(s.index))
	for _, e := range s.index {
		all = append(all, NGram{Gram: e.gram, Count: e.count, Error: e.err})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Count != all[j].Count {
			return all[i].Count > all[j].Count
		}
		return all[i].Gram < all[j].Gram
	})
	return all[:min(n, len(all))]
}
