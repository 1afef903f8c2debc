package train

import (
	"slices"
	"testing"
)

func lengthsOf(d sliceData, maxLen int) []int {
	out := make([]int, len(d))
	for i, ex := range d {
		out[i] = len(truncate(ex, maxLen).Tokens)
	}
	return out
}

func TestPlanCoversEveryExampleOnce(t *testing.T) {
	data := lmData(103, 11, 5)
	tests := []struct {
		name string
		p    planner
	}{
		{"plain", planner{seed: 1, batchSize: 8}},
		{"bucketing", planner{seed: 1, batchSize: 8, window: 4}},
		{"packing", planner{seed: 1, batchSize: 4, packing: true, maxLen: 20}},
		{"truncated packing", planner{seed: 9, batchSize: 3, packing: true, maxLen: 6}},
		{"batch larger than data", planner{seed: 2, batchSize: 500}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.lengths = lengthsOf(data, tc.p.maxLen)
			var orders [][]int
			for e := range 2 {
				pl := tc.p.plan(e)
				var seen []int
				for bi, b := range pl.batches {
					if len(b) == 0 || len(b) > tc.p.batchSize {
						t.Fatalf("epoch %d batch %d has %d rows, batch size %d", e, bi, len(b), tc.p.batchSize)
					}
					for _, r := range b {
						n := 0
						for _, idx := range r {
							n += tc.p.lengths[idx]
						}
						if tc.p.packing && n > tc.p.maxLen {
							t.Fatalf("packed row of %d tokens exceeds %d", n, tc.p.maxLen)
						}
						seen = append(seen, r...)
					}
				}
				orders = append(orders, slices.Clone(seen))
				slices.Sort(seen)
				for i, v := range seen {
					if v != i {
						t.Fatalf("epoch %d: example order is not a permutation at %d (got %d)", e, i, v)
					}
				}
				if again := tc.p.plan(e); !slices.EqualFunc(again.batches, pl.batches, func(a, b []row) bool {
					return slices.EqualFunc(a, b, func(x, y row) bool { return slices.Equal(x, y) })
				}) {
					t.Fatalf("epoch %d plan is not deterministic", e)
				}
			}
			if slices.Equal(orders[0], orders[1]) {
				t.Error("epochs 0 and 1 read the data in the same order")
			}
		})
	}
}

func TestBucketingGroupsLengths(t *testing.T) {
	data := lmData(200, 7, 3)
	p := planner{seed: 4, batchSize: 5, window: 8, lengths: lengthsOf(data, 0)}
	pl := p.plan(0)
	span := func(b []row) (lo, hi int) {
		lo, hi = 1<<30, 0
		for _, r := range b {
			lo, hi = min(lo, p.lengths[r[0]]), max(hi, p.lengths[r[0]])
		}
		return lo, hi
	}
	for w := 0; w < len(pl.batches); w += p.window {
		batches := pl.batches[w:min(w+p.window, len(pl.batches))]
		for i := range batches {
			for j := range batches {
				loI, hiI := span(batches[i])
				loJ, hiJ := span(batches[j])
				if i != j && loI < hiJ && loJ < hiI {
					t.Fatalf("window %d: batches %d [%d,%d] and %d [%d,%d] overlap in length", w/p.window, i, loI, hiI, j, loJ, hiJ)
				}
			}
		}
	}
	// Batch order is shuffled within windows: not simply longest first.
	sorted := true
	for i := 1; i < p.window; i++ {
		a, _ := span(pl.batches[i-1])
		_, b := span(pl.batches[i])
		sorted = sorted && a >= b
	}
	if sorted {
		t.Error("first window's batches are in length order; want a seeded shuffle")
	}
}

func TestMaterialize(t *testing.T) {
	data := sliceData{
		{Tokens: []int32{1, 2, 3}, Label: -1},
		{Tokens: []int32{4, 5}, LossMask: []bool{false, true}, Label: -1},
		{Tokens: []int32{6, 7, 8, 9, 10, 11}, LossMask: []bool{false, false, true, true, true, true}, Label: 2},
	}
	tests := []struct {
		name     string
		rows     []row
		maxLen   int
		packing  bool
		wantToks [][]int32
		wantMask [][]bool
		wantLab  []int
	}{
		{"plain", []row{{0}, {2}}, 0, false,
			[][]int32{{1, 2, 3}, {6, 7, 8, 9, 10, 11}}, [][]bool{nil, {false, false, true, true, true, true}}, []int{-1, 2}},
		{"truncated", []row{{2}, {1}}, 4, false,
			[][]int32{{6, 7, 8, 9}, {4, 5}}, [][]bool{{false, false, true, true}, {false, true}}, []int{2, -1}},
		{"packed masks example ends", []row{{0, 1}}, 5, true,
			[][]int32{{1, 2, 3, 4, 5}}, [][]bool{{true, true, false, false, false}}, []int{-1}},
		{"packed other order", []row{{1, 0}}, 5, true,
			[][]int32{{4, 5, 1, 2, 3}}, [][]bool{{false, false, true, true, false}}, []int{-1}},
		{"packed and truncated", []row{{2}, {0}}, 4, true,
			[][]int32{{6, 7, 8, 9}, {1, 2, 3}}, [][]bool{{false, false, true, false}, {true, true, false}}, []int{-1, -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := materialize(data, tc.rows, tc.maxLen, tc.packing)
			if len(b.Examples) != len(tc.wantToks) {
				t.Fatalf("%d examples, want %d", len(b.Examples), len(tc.wantToks))
			}
			for i, ex := range b.Examples {
				if !slices.Equal(ex.Tokens, tc.wantToks[i]) || !slices.Equal(ex.LossMask, tc.wantMask[i]) || ex.Label != tc.wantLab[i] {
					t.Errorf("row %d = %v %v %d, want %v %v %d", i, ex.Tokens, ex.LossMask, ex.Label, tc.wantToks[i], tc.wantMask[i], tc.wantLab[i])
				}
			}
		})
	}
	// The source examples must not be modified.
	if !slices.Equal(data[1].LossMask, []bool{false, true}) || len(data[2].Tokens) != 6 {
		t.Error("materialize modified the dataset")
	}
}
