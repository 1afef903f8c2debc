//go:build bench

package replicas

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/tailortest"

	"github.com/tailor-ml/tailor/api"
)

var (
	benchClients = flag.Int("bench-clients", 8, "concurrent classify clients")
	benchSeconds = flag.Int("bench-seconds", 15, "seconds each measurement lasts")
	benchRounds  = flag.Int("bench-rounds", 2, "rounds of (1 replica, 2 replicas) measurements, interleaved so that drifting load from elsewhere hits both alike")
)

// TestBenchReplicas (make bench-replicas) measures classify requests/s
// against one replica, then against two serving the same adapter with the
// clients spreading their requests over both, and reports the ratio. The
// base is models/tailor-tiny (4 layers, hidden 256); each replica runs
// inference in its `tailor worker serve` child. Both measurements run on
// the same machine, one after the other, with both replicas up.
func TestBenchReplicas(t *testing.T) {
	ctx := context.Background()
	shared := cluster(t)
	a, b := newReplica(t, "replica-a", shared), newReplica(t, "replica-b", shared)
	must(t, a.start())
	must(t, b.start())
	ca := a.client()
	_, err := ca.ImportBaseDir(ctx, "tailor-tiny", "", filepath.Join("..", "..", "models", "tailor-tiny"))
	must(t, err)
	_, err = ca.ImportDataset(ctx, strings.NewReader(tailortest.Corpus(0, 120)), api.DatasetImportOptions{Name: "frozen", Task: "classify", FileName: "frozen.jsonl"})
	must(t, err)
	_, err = ca.ApplyRecipe(ctx, "promo.yaml", []byte(strings.Replace(recipeText("promo", 1, 4), "base: tiny", "base: tailor-tiny", 1)))
	must(t, err)
	r, err := ca.StartRun(ctx, api.RunStart{Recipe: "promo"})
	must(t, err)
	if r = waitRun(ctx, t, ca, r.ID, 10*time.Minute); r.State != "succeeded" {
		t.Fatalf("run %s: %s %s", r.ID, r.State, r.Error)
	}
	promote(ctx, t, ca, "promo", "v1", "bench")
	for _, rep := range []*replica{a, b} {
		waitServed(ctx, t, rep, "promo@champion", "promo@v1", time.Minute) // loaded on both
	}
	t.Logf("machine: %d CPUs (runtime.NumCPU); %d clients, %d s per measurement, %d rounds", runtime.NumCPU(), *benchClients, *benchSeconds, *benchRounds)
	var sum1, sum2 float64
	for round := 1; round <= *benchRounds; round++ {
		one := measure(t, []*replica{a})
		t.Logf("round %d, 1 replica:  %s", round, one)
		two := measure(t, []*replica{a, b})
		t.Logf("round %d, 2 replicas: %s", round, two)
		sum1, sum2 = sum1+one.rps, sum2+two.rps
	}
	t.Logf("ratio 2/1: %.2fx requests/s (%.1f vs %.1f, mean over rounds)", sum2/sum1, sum2/float64(*benchRounds), sum1/float64(*benchRounds))
}

type result struct {
	requests, errors int64
	rps              float64
	p50, p99         time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("%.1f requests/s (%d requests, %d errors), latency p50 %s p99 %s", r.rps, r.requests, r.errors,
		r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond))
}

// measure runs the clients for benchSeconds; client i sends its requests
// to replica i mod len(reps), alternating between them request by request
// when there are two, so the load is spread evenly.
func measure(t *testing.T, reps []*replica) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*benchSeconds)*time.Second)
	defer cancel()
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for c := range *benchClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; ctx.Err() == nil; i++ {
				rep := reps[(c+i)%len(reps)]
				t0 := time.Now()
				_, err := classify(ctx, rep.url(), "promo@champion", fmt.Sprintf("free cash offer number %d from client %d", i, c))
				if ctx.Err() != nil {
					break // cut by the deadline: not counted
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				ok.Add(1)
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	res := result{requests: ok.Load(), errors: failed.Load(), rps: float64(ok.Load()) / elapsed.Seconds()}
	if n := len(lat); n > 0 {
		res.p50, res.p99 = lat[n/2], lat[n*99/100]
	}
	if res.errors > 0 {
		t.Errorf("%d requests failed", res.errors)
	}
	return res
}
