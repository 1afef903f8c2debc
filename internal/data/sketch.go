package data

import (
	"container/heap"
	"math"
)

// hashBytes is FNV-1a 64 followed by the splitmix64 finalizer: fixed, fast
// and well mixed, so sketches are deterministic across runs and machines.
func hashBytes(b []byte) uint64 { return mix64(fnvAdd(fnvOffset, b)) }

// FNV-1a 64 parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnvAdd continues an FNV-1a state over b.
func fnvAdd(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

func fnvAddByte(h uint64, c byte) uint64 { return (h ^ uint64(c)) * fnvPrime }

// mix64 is the splitmix64 finalizer.
func mix64(h uint64) uint64 {
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
	heap maxHeap  // the k smallest hashes; root is the largest of them
	set  *hashSet // the same hashes
}

func newKMV(k int) *kmv { return &kmv{k: k, set: newHashSet(k + 1)} }

func (s *kmv) add(h uint64) {
	full := len(s.heap) >= s.k
	if full && h >= s.heap[0] {
		return
	}
	if !s.set.add(h) {
		return
	}
	if !full {
		heap.Push(&s.heap, h)
		return
	}
	s.set.remove(s.heap[0])
	s.heap[0] = h
	heap.Fix(&s.heap, 0)
}

// hashSet is a set of at most n uint64 hashes in an open-addressed table at
// most a quarter full (linear probing, backward-shift deletes, no
// tombstones); 0 has a flag of its own since it marks empty slots.
type hashSet struct {
	slots []uint64
	zero  bool
}

func newHashSet(n int) *hashSet {
	size := 16
	for size < 4*n {
		size <<= 1
	}
	return &hashSet{slots: make([]uint64, size)}
}

// find returns h's slot, or the empty slot where it would go.
func (s *hashSet) find(h uint64) int {
	mask := len(s.slots) - 1
	// #nosec G115 -- hash bits masked to the table size; wrap-around is intended
	i := int(h) & mask
	for s.slots[i] != 0 && s.slots[i] != h {
		i = (i + 1) & mask
	}
	return i
}

// add inserts h and reports whether it was new.
func (s *hashSet) add(h uint64) bool {
	if h == 0 {
		added := !s.zero
		s.zero = true
		return added
	}
	i := s.find(h)
	if s.slots[i] == h {
		return false
	}
	s.slots[i] = h
	return true
}

// remove deletes h, which must be in the set.
func (s *hashSet) remove(h uint64) {
	if h == 0 {
		s.zero = false
		return
	}
	mask := len(s.slots) - 1
	i := s.find(h)
	for {
		s.slots[i] = 0
		j := i
		for {
			j = (j + 1) & mask
			if s.slots[j] == 0 {
				return
			}
			// #nosec G115 -- hash bits masked to the table size; wrap-around is intended
			home := int(s.slots[j]) & mask
			// The hash at j may move to i unless its home lies in (i, j].
			if i <= j && (home <= i || home > j) || i > j && home <= i && home > j {
				s.slots[i] = s.slots[j]
				i = j
				break
			}
		}
	}
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
