package model

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/engine/gemm"
)

type timing struct {
	inner gemm.GEMM
	t     map[string]time.Duration
	fl    map[string]float64
}

func (g *timing) Name() string { return "t" }
func (g *timing) Sgemm(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	s := time.Now()
	g.inner.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	key := fmt.Sprintf("%v%v %dx%dx%d", tA, tB, m, n, k)
	g.t[key] += time.Since(s)
	g.fl[key] += 2 * float64(m*n*k)
}
func (g *timing) Dgemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
}

func TestZZProf(t *testing.T) {
	for _, split := range []bool{false, true} {
		inner := gemm.New(1)
		if split {
			inner = gemm.New(2)
		}
		tg := &timing{inner: inner, t: map[string]time.Duration{}, fl: map[string]float64{}}
		m, err := New(benchConfig(), nil, Options{Method: Full, GEMM: tg})
		if err != nil {
			t.Fatal(err)
		}
		b := benchBatch(benchConfig(), 8, 128)
		m.ForwardBackward(b)
		tg.t, tg.fl = map[string]time.Duration{}, map[string]float64{}
		s := time.Now()
		for i := 0; i < 3; i++ {
			m.ForwardBackward(b)
		}
		total := time.Since(s)
		var keys []string
		var sum time.Duration
		for k := range tg.t {
			keys = append(keys, k)
			sum += tg.t[k]
		}
		sort.Slice(keys, func(i, j int) bool { return tg.t[keys[i]] > tg.t[keys[j]] })
		fmt.Printf("split=%v total %v gemm %v\n", split, total/3, sum/3)
		for _, k := range keys {
			fmt.Printf("  %-28s %8v %6.1f GFLOPS\n", k, tg.t[k]/3, tg.fl[k]/tg.t[k].Seconds()/1e9)
		}
	}
}
