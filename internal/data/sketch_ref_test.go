package data

import (
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// refHeavyHitters is the map-based heavy-hitter counter the arena table
// replaced, kept as the reference the table must match exactly.
type refHeavyHitters struct {
	cap   int
	index map[uint64]*refEntry
	floor int64
}

type refEntry struct {
	gram       string
	count, err int64
}

func (s *refHeavyHitters) add(key []byte, h uint64) {
	if e, ok := s.index[h]; ok {
		e.count++
		return
	}
	s.index[h] = &refEntry{gram: string(key), count: s.floor + 1, err: s.floor}
	if len(s.index) > s.cap {
		s.prune()
	}
}

func (s *refHeavyHitters) prune() {
	keep := s.cap / 2
	counts := make([]int64, 0, len(s.index))
	for _, e := range s.index {
		counts = append(counts, e.count)
	}
	slices.Sort(counts)
	threshold := counts[len(counts)-keep]
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
	s.index = make(map[uint64]*refEntry, s.cap+1)
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

func (s *refHeavyHitters) top(n int) []NGram {
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

// TestHeavyHittersMatchReference feeds the same Zipf streams to the table
// and to the reference and wants identical counts, errors and floors, for
// capacities small enough to prune often.
func TestHeavyHittersMatchReference(t *testing.T) {
	tests := []struct {
		cap, n, vocab int
		seed          int64
	}{
		{8, 1000, 50, 1}, {64, 50000, 5000, 2}, {1024, 200000, 100000, 3}, {16, 20000, 20, 4},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.cap, "_", tc.vocab), func(t *testing.T) {
			rng := rand.New(rand.NewSource(tc.seed))
			zipf := rand.NewZipf(rng, 1.1, 2, uint64(tc.vocab-1))
			got := newHeavyHitters(tc.cap)
			want := &refHeavyHitters{cap: tc.cap, index: map[uint64]*refEntry{}}
			for i := 0; i < tc.n; i++ {
				k := []byte(fmt.Sprintf("w%d", zipf.Uint64()))
				h := hashBytes(k)
				got.add(k, h)
				want.add(k, h)
			}
			if got.floor != want.floor || got.live != len(want.index) {
				t.Fatalf("floor %d live %d, reference %d %d", got.floor, got.live, want.floor, len(want.index))
			}
			for _, n := range []int{0, 1, 7, 50, tc.cap, 2 * tc.cap} {
				if g, w := got.top(n), want.top(n); !reflect.DeepEqual(g, w) {
					t.Errorf("top(%d) differs:\n got %v\nwant %v", n, g[:min(5, len(g))], w[:min(5, len(w))])
				}
			}
		})
	}
}

func TestNthSmallest(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, n := range []int{1, 2, 3, 10, 257, 5000} {
		a := make([]uint64, n)
		for i := range a {
			a[i] = rng.Uint64() % uint64(4*n) // some repeats as well
		}
		sorted := slices.Clone(a)
		slices.Sort(sorted)
		for _, k := range []int{0, n / 3, n / 2, n - 1} {
			if got := nthSmallest(slices.Clone(a), k); got != sorted[k] {
				t.Errorf("n %d k %d: got %d, want %d", n, k, got, sorted[k])
			}
		}
	}
}

// TestHashSetMatchesMap runs random adds and removes against a Go map,
// with homes crowded at the end of the table so that probe clusters collide
// and wrap around, and with 0 among the values.
func TestHashSetMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	s, ref := newHashSet(300), map[uint64]bool{}
	for step := 0; step < 200000; step++ {
		h := uint64(rng.Intn(40))<<16 | uint64(2040+rng.Intn(8)) // homes 2040..2047 of 2048
		if rng.Intn(50) == 0 {
			h = 0
		}
		if rng.Intn(2) == 0 && len(ref) < 300 {
			if got, want := s.add(h), !ref[h]; got != want {
				t.Fatalf("step %d: add(%d) = %v, want %v", step, h, got, want)
			}
			ref[h] = true
		} else if ref[h] {
			if s.add(h) {
				t.Fatalf("step %d: %d lost", step, h)
			}
			s.remove(h)
			delete(ref, h)
		}
	}
	for h := range ref {
		if got := s.find(h); (h == 0 && !s.zero) || (h != 0 && s.slots[got] != h) {
			t.Fatalf("%d missing from the set", h)
		}
	}
}
