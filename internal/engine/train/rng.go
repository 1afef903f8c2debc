package train

import (
	"math"
	"math/bits"
)

// RNG is a xoshiro256** generator with an exported state, so it can be saved
// in a checkpoint and restored exactly. The zero value is not usable; create
// one with NewRNG. It is not safe for concurrent use.
type RNG struct {
	S [4]uint64
}

// NewRNG returns a generator whose state is expanded from seed with
// SplitMix64, as the xoshiro authors recommend.
func NewRNG(seed uint64) *RNG {
	r := &RNG{}
	x := seed
	for i := range r.S {
		x, r.S[i] = splitMix64(x)
	}
	return r
}

// splitMix64 advances x and returns the new x and the next output.
func splitMix64(x uint64) (uint64, uint64) {
	x += 0x9e3779b97f4a7c15
	z := x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return x, z ^ (z >> 31)
}

// DeriveSeed mixes a base seed with stream identifiers into a new seed, so
// independent streams (epoch shuffles, dropout) never share a sequence.
func DeriveSeed(seed uint64, stream ...uint64) uint64 {
	_, z := splitMix64(seed)
	for _, s := range stream {
		_, z = splitMix64(z ^ s*0xd1342543de82ef95)
	}
	return z
}

// Uint64 returns the next 64 random bits.
func (r *RNG) Uint64() uint64 {
	s := &r.S
	result := bits.RotateLeft64(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = bits.RotateLeft64(s[3], 45)
	return result
}

// Intn returns a uniform integer in [0, n) using Lemire's unbiased method.
// It panics if n <= 0, like math/rand.
func (r *RNG) Intn(n int) int {
	if n <= 0 {
		panic("train: RNG.Intn with n <= 0")
	}
	bound := uint64(n)
	hi, lo := bits.Mul64(r.Uint64(), bound)
	if lo < bound {
		thresh := -bound % bound
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), bound)
		}
	}
	// #nosec G115 -- hi < n (Lemire's bounded draw), so it fits an int
	return int(hi)
}

// Float64 returns a uniform float64 in [0, 1) with 53 random bits.
func (r *RNG) Float64() float64 {
	return float64(r.Uint64()>>11) * (1.0 / (1 << 53))
}

// Normal returns a standard normal sample (Box–Muller, one value per call).
func (r *RNG) Normal() float64 {
	u1 := 1 - r.Float64() // (0, 1]
	u2 := r.Float64()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// Shuffle permutes n elements with Fisher–Yates, calling swap(i, j).
func (r *RNG) Shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.Intn(i+1))
	}
}

// Perm returns a random permutation of [0, n).
func (r *RNG) Perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r.Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}
