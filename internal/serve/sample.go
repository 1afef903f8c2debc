package serve

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Sampling chooses the next token from logits.
type Sampling struct {
	Temperature float64 // 0: greedy (argmax, lowest id on ties)
	TopK        int     // 0: no limit
	TopP        float64 // 0 or 1: no limit
	Seed        uint64
}

// sampler draws tokens for one sequence from an explicit seeded source.
type sampler struct {
	p   Sampling
	rng *rand.Rand
	idx []int
	pr  []float64
}

func newSampler(p Sampling) *sampler {
	// #nosec G404 -- seeded token sampling (a request may fix the seed); not a secret
	return &sampler{p: p, rng: rand.New(rand.NewPCG(p.Seed, 0x5a3b1e))}
}

// next returns the chosen token id.
func (s *sampler) next(logits []float32) int32 {
	if s.p.Temperature <= 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return int32(best)
	}
	n := len(logits)
	if cap(s.idx) < n {
		s.idx, s.pr = make([]int, n), make([]float64, n)
	}
	idx, pr := s.idx[:n], s.pr[:n]
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	for i, v := range logits {
		idx[i] = i
		pr[i] = math.Exp((float64(v) - mx) / s.p.Temperature)
	}
	// Highest probability first, lowest id on ties: the order is fixed.
	sort.Slice(idx, func(a, b int) bool {
		if pr[idx[a]] != pr[idx[b]] {
			return pr[idx[a]] > pr[idx[b]]
		}
		return idx[a] < idx[b]
	})
	keep := n
	if s.p.TopK > 0 && s.p.TopK < keep {
		keep = s.p.TopK
	}
	total := 0.0
	for _, i := range idx[:keep] {
		total += pr[i]
	}
	if s.p.TopP > 0 && s.p.TopP < 1 {
		cum := 0.0
		for k, i := range idx[:keep] {
			cum += pr[i] / total
			if cum >= s.p.TopP {
				keep = k + 1
				break
			}
		}
		total = 0
		for _, i := range idx[:keep] {
			total += pr[i]
		}
	}
	u := s.rng.Float64() * total
	for _, i := range idx[:keep] {
		u -= pr[i]
		if u < 0 {
			// #nosec G115 -- a vocabulary index, below 2^31
			return int32(i)
		}
	}
	// #nosec G115 -- a vocabulary index, below 2^31
	return int32(idx[keep-1])
}
