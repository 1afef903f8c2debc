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
