package loadgen_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/loadgen"
	"github.com/tailor-ml/tailor/internal/serve/modelengine"
	"github.com/tailor-ml/tailor/internal/serve/servetest"
)

var inputs = []string{"win a free prize now", "lunch tomorrow?", "the report is ready for review", "cheap pills online, act now"}

// cluster serves n classifier models a0…a(n-1) (v1 champion, v2 ready for
// swaps) over one base.
type cluster struct {
	srv *serve.Server
	res *serve.MemResolver
	url string
}

func newCluster(t testing.TB, n int, fo servetest.Options, so serve.Options) *cluster {
	f, err := servetest.New(t.TempDir(), fo)
	if err != nil {
		t.Fatal(err)
	}
	res := serve.NewMemResolver()
	for i := range n {
		for v := range 2 {
			tg, err := f.Classifier(uint64(1+2*i+v), []string{"ham", "spam"})
			if err != nil {
				t.Fatal(err)
			}
			tg.Model = fmt.Sprintf("a%d", i)
			res.AddVersion(tg)
		}
		if err := res.SetAlias(fmt.Sprintf("a%d", i), "champion", 1); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := modelengine.New(modelengine.Options{Loader: f.Loader()})
	if err != nil {
		t.Fatal(err)
	}
	so.Engine, so.Resolver = eng, res
	srv, err := serve.New(so)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &cluster{srv: srv, res: res, url: hs.URL}
}

func models(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("a%d@champion", i))
	}
	return out
}

// compare runs the same load against 1 adapter and against n adapters.
func compare(t *testing.T, n, requests, conc int, fo servetest.Options) (one, many loadgen.Result) {
	c := newCluster(t, n, fo, serve.Options{MaxBatch: 16, MaxQueue: 1024})
	ctx := context.Background()
	// Warm every adapter first, so loads are not measured.
	if _, err := loadgen.Run(ctx, loadgen.Options{URL: c.url, Models: models(n), Inputs: inputs, Requests: 2 * n, Concurrency: conc}); err != nil {
		t.Fatal(err)
	}
	var err error
	if one, err = loadgen.Run(ctx, loadgen.Options{URL: c.url, Models: models(1), Inputs: inputs, Requests: requests, Concurrency: conc}); err != nil {
		t.Fatal(err)
	}
	if many, err = loadgen.Run(ctx, loadgen.Options{URL: c.url, Models: models(n), Inputs: inputs, Requests: requests, Concurrency: conc}); err != nil {
		t.Fatal(err)
	}
	t.Logf("1 adapter:   %v", one)
	t.Logf("%d adapters: %v", n, many)
	t.Logf("throughput ratio %d/1 = %.3f", n, many.Throughput/one.Throughput)
	return one, many
}

func TestManyAdaptersShort(t *testing.T) {
	one, many := compare(t, 5, 300, 8, servetest.Options{})
	for _, r := range []loadgen.Result{one, many} {
		if r.Errors != 0 || r.Status[200] != r.Requests || r.P50 <= 0 || r.P99 < r.P50 {
			t.Fatalf("result %+v (first error %s)", r, r.FirstError)
		}
	}
	if len(many.Versions) != 5 {
		t.Fatalf("versions answered %v, want 5 adapters", many.Versions)
	}
}

// swapUnderLoad runs load on a0@champion while moving the alias swaps
// times; every request must succeed.
//
// With wantBoth, both versions must have answered (the long run spreads its
// swaps over the whole load; the short one may finish them early).
func swapUnderLoad(t *testing.T, requests, swaps int, fo servetest.Options, wantBoth bool) loadgen.Result {
	c := newCluster(t, 1, fo, serve.Options{MaxBatch: 16, MaxQueue: 1024})
	ctx := context.Background()
	var res loadgen.Result
	var err error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		res, err = loadgen.Run(ctx, loadgen.Options{URL: c.url, Models: models(1), Inputs: inputs, Requests: requests, Concurrency: 8})
	}()
	for i := range swaps {
		if err := c.res.SetAlias("a0", "champion", 1+(i+1)%2); err != nil {
			t.Fatal(err)
		}
		if err := c.srv.AliasMoved(ctx, "a0", "champion"); err != nil {
			t.Fatal(err)
		}
		// Spread the swaps over the load rather than bunching them at its start.
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("swap under load (%d swaps): %v, versions %v", swaps, res, res.Versions)
	if res.Errors != 0 || len(res.Versions) > 2 || (wantBoth && len(res.Versions) != 2) {
		t.Fatalf("%d failed requests during swaps (first: %s), versions %v", res.Errors, res.FirstError, res.Versions)
	}
	return res
}

func TestSwapUnderLoadShort(t *testing.T) {
	swapUnderLoad(t, 400, 20, servetest.Options{}, false)
}
