package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/modelengine"
	"github.com/tailor-ml/tailor/internal/serve/reqlog"
)

// gated is a real engine whose steps wait while the gate is closed, so a
// test can hold the batch busy and fill the queue deterministically.
type gated struct {
	*modelengine.Engine
	mu    sync.Mutex
	open  chan struct{}
	steps chan struct{} // calls let through a closed gate (allow)
}

func (g *gated) wait(ctx context.Context) {
	g.mu.Lock()
	ch, steps := g.open, g.steps
	g.mu.Unlock()
	select {
	case <-ch:
	case <-steps:
	case <-ctx.Done():
	}
}

// hold closes the gate again; allow lets n more calls through it.
func (g *gated) hold() { g.mu.Lock(); g.open = make(chan struct{}); g.mu.Unlock() }

func (g *gated) allow(n int) {
	g.mu.Lock()
	if g.steps == nil {
		g.steps = make(chan struct{}, 1024)
	}
	steps := g.steps
	g.mu.Unlock()
	for range n {
		steps <- struct{}{}
	}
}

func (g *gated) Logits(ctx context.Context, rows []serve.StepRow) ([][]float32, error) {
	g.wait(ctx)
	return g.Engine.Logits(ctx, rows)
}

func (g *gated) Classify(ctx context.Context, rows []serve.ClassifyRow) ([][]float32, error) {
	g.wait(ctx)
	return g.Engine.Classify(ctx, rows)
}

func (g *gated) release() { g.mu.Lock(); close(g.open); g.mu.Unlock() }

// warm loads the spam model with the gate open (Load runs a forward), then
// closes the gate again.
func (g *gated) warm(t *testing.T, w *world) {
	t.Helper()
	g.release()
	if st, _, _, body := w.classify(t, "spam", "warm"); st != 200 {
		t.Fatalf("warm: %d %s", st, body)
	}
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func newGated(t *testing.T) *gated {
	e, err := modelengine.New(modelengine.Options{Loader: sharedFixture(t).Loader()})
	must(t, err)
	return &gated{Engine: e, open: make(chan struct{})}
}

// metricValue reads one sample from /metrics ("" if absent).
func (w *world) metricValue(t *testing.T, series string) string {
	t.Helper()
	_, body := w.get(t, "/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// waitFor polls cond until it holds (no timing assertion: the test's own
// deadline bounds it).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBackpressure(t *testing.T) {
	g := newGated(t)
	w := newWorld(t, serve.Options{MaxBatch: 1, MaxQueue: 2, RetryAfter: 2 * time.Second}, g)
	g.warm(t, w)
	base := w.f.Base.BaseID
	type result struct {
		status int
		retry  string
	}
	results := make(chan result, 40)
	var wg sync.WaitGroup
	fire := func() {
		defer wg.Done()
		resp, _ := w.post(t, "/v1/completions", map[string]any{"model": "chat", "prompt": "hello", "max_tokens": 4})
		results <- result{resp.StatusCode, resp.Header.Get("Retry-After")}
	}
	// One request runs (held at the gate), two wait; every other one is
	// refused at once.
	wg.Add(1)
	go fire()
	waitFor(t, "a running sequence", func() bool { return w.metricValue(t, `tailor_serve_running_batch_size{base="`+base+`"}`) == "1" })
	wg.Add(2)
	go fire()
	go fire()
	waitFor(t, "a full queue", func() bool { return w.metricValue(t, `tailor_serve_queue_depth{base="`+base+`"}`) == "2" })
	for range 30 {
		wg.Add(1)
		go fire()
	}
	for range 30 {
		r := <-results
		if r.status != 429 || r.retry != "2" {
			t.Fatalf("overloaded request: status %d Retry-After %q, want 429 and 2", r.status, r.retry)
		}
	}
	g.release()
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != 200 {
			t.Fatalf("queued request finished with %d", r.status)
		}
	}
	// Recovered: normal service, and the refusals are counted.
	if st, _, _, body := w.classify(t, "spam", "after the storm"); st != 200 {
		t.Fatalf("after overload: %d %s", st, body)
	}
	if v := w.metricValue(t, `tailor_serve_rejected_total{model="chat"}`); v != "30" {
		t.Fatalf("rejected_total %q, want 30", v)
	}
}

// TestClassifyTimeout: a classification the server gives up on after its
// per-request limit is a 503 with Retry-After naming the limit, not a 500.
func TestClassifyTimeout(t *testing.T) {
	g := newGated(t)
	w := newWorld(t, serve.Options{MaxRequestTime: 300 * time.Millisecond, RetryAfter: 3 * time.Second}, g)
	g.warm(t, w)
	defer g.release()
	resp, body := w.post(t, "/v1/classify", map[string]any{"model": "spam", "input": "held at the gate"})
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "3" || !strings.Contains(string(body), "no answer within 300ms") {
		t.Fatalf("timed-out classify: %d Retry-After %q %s; want 503, 3 and the limit", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

func TestClientDisconnectFreesSlot(t *testing.T) {
	// The gate lets a few steps through (the load's warm-up forward, the
	// prefill, the first tokens) and then holds the sequence running, so
	// the polls below cannot miss it however fast the machine is.
	g := newGated(t)
	g.allow(5)
	w := newWorld(t, serve.Options{MaxBatch: 1, MaxTokens: 4096}, g)
	ctx, cancel := context.WithCancel(context.Background())
	body := strings.NewReader(`{"model":"tiny","prompt":"the","max_tokens":200,"stream":true,"temperature":1,"seed":1}`)
	req, _ := http.NewRequestWithContext(ctx, "POST", w.http.URL+"/v1/completions", body)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	buf := make([]byte, 64)
	resp.Body.Read(buf) // the stream has started
	base := w.f.Base.BaseID
	waitFor(t, "the running sequence", func() bool { return w.metricValue(t, `tailor_serve_running_batch_size{base="`+base+`"}`) == "1" })
	cancel()
	resp.Body.Close()
	g.release() // the held step goes on and finds its client gone
	waitFor(t, "the slot to be freed", func() bool { return w.metricValue(t, `tailor_serve_running_batch_size{base="`+base+`"}`) == "0" })
	// The next request gets the slot and completes.
	r2, b2 := w.post(t, "/v1/completions", map[string]any{"model": "tiny", "prompt": "the", "max_tokens": 3})
	if r2.StatusCode != 200 {
		t.Fatalf("after disconnect: %d %s", r2.StatusCode, b2)
	}
	// A client that leaves while its unstreamed answer is computed: both
	// disconnects are their own outcome in /metrics, not a server error.
	g.hold()
	g.allow(2) // its prefill and one token, then it is held running
	ctx2, cancel2 := context.WithCancel(context.Background())
	req2, _ := http.NewRequestWithContext(ctx2, "POST", w.http.URL+"/v1/completions",
		strings.NewReader(`{"model":"tiny","prompt":"the","max_tokens":200,"temperature":1,"seed":1}`))
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req2)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, "the second running sequence", func() bool { return w.metricValue(t, `tailor_serve_running_batch_size{base="`+base+`"}`) == "1" })
	cancel2()
	<-done
	g.release()
	waitFor(t, "both disconnects counted as 499", func() bool {
		return w.metricValue(t, `tailor_serve_requests_total{endpoint="completion",model="tiny",status="499"}`) == "2"
	})
	for _, st := range []string{"500", "503"} {
		if v := w.metricValue(t, `tailor_serve_requests_total{endpoint="completion",model="tiny",status="`+st+`"}`); v != "" {
			t.Errorf("a disconnect was counted as %s (%s)", st, v)
		}
	}
}

// answers returns each version's probabilities for the inputs, from
// explicit version requests.
func answers(t *testing.T, w *world, inputs []string) map[string][]float64 {
	out := map[string][]float64{}
	for _, v := range []string{"spam@v1", "spam@v2"} {
		for _, in := range inputs {
			st, got, c, body := w.classify(t, v, in)
			if st != 200 || got != v {
				t.Fatalf("%s: %d %s %s", v, st, got, body)
			}
			out[v+"\x00"+in] = []float64{c.Probabilities["ham"], c.Probabilities["spam"]}
		}
	}
	return out
}

func TestHotSwapUnderLoad(t *testing.T) {
	w := newWorld(t, serve.Options{MaxBatch: 8, MaxQueue: 256}, nil)
	inputs := []string{"win a free prize now", "lunch tomorrow?", "the report is ready"}
	want := answers(t, w, inputs)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	var failures []string
	// served counts answered load requests, so each swap can wait until
	// the load has crossed it: with 6 clients at most 6 requests are in
	// flight at a swap, so 7 more answers include one sent after it.
	var served atomic.Int64
	const clients = 6
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				in := inputs[(c+i)%len(inputs)]
				st, v, cl, body := w.classify(t, "spam@champion", in)
				mu.Lock()
				seen[v]++
				p := want[v+"\x00"+in]
				if st != 200 || p == nil || math.Abs(p[1]-cl.Probabilities["spam"]) > 1e-6 {
					failures = append(failures, fmt.Sprintf("status %d version %q answer %v want %v: %s", st, v, cl.Probabilities, p, body))
				}
				mu.Unlock()
				served.Add(1)
			}
		}()
	}
	for i := range 40 {
		v := 1 + (i+1)%2
		must(t, w.res.SetAlias("spam", "champion", v))
		must(t, w.srv.AliasMoved(ctx, "spam", "champion"))
		// Right after AliasMoved returns, new requests see the new version.
		if _, got, _, _ := w.classify(t, "spam@champion", "x"); got != fmt.Sprintf("spam@v%d", v) {
			t.Fatalf("after swap %d: served %s, want v%d", i, got, v)
		}
		from := served.Load()
		waitFor(t, "load requests after the swap", func() bool { return served.Load() >= from+clients+1 })
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failed or mismatched answers during swaps, first: %s", len(failures), failures[0])
	}
	if seen["spam@v1"] == 0 || seen["spam@v2"] == 0 || len(seen) != 2 {
		t.Fatalf("versions seen %v", seen)
	}
	if v := w.metricValue(t, `tailor_serve_swaps_total{outcome="ok"}`); v == "" || v == "0" {
		t.Fatalf("swaps_total %q", v)
	}
}

func TestCanarySplitAndSticky(t *testing.T) {
	w := newWorld(t, serve.Options{Seed: 7, MaxQueue: 256}, nil)
	must(t, w.srv.Deploy(context.Background(), serve.Deployment{Model: "spam", Canary: &serve.Canary{Model: "spam@challenger", Percent: 20}}))
	const n = 2000
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				st, v, _, body := w.classify(t, "spam", "win a prize")
				if st != 200 {
					t.Errorf("status %d %s", st, body)
				}
				mu.Lock()
				counts[v]++
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	share := 100 * float64(counts["spam@v2"]) / n
	if math.Abs(share-20) > 3 || counts["spam@v1"]+counts["spam@v2"] != n {
		t.Fatalf("challenger share %.1f%% (%v), want 20 ± 3", share, counts)
	}
	// Sticky: a user key always gets the same variant, by field or header;
	// and users split near the percentage too.
	users := map[string]int{}
	for u := range 300 {
		user := fmt.Sprintf("user-%d", u)
		_, first, _, _ := w.classify(t, "spam", "hi", "X-Tailor-User", user)
		for range 3 {
			_, v, _, _ := w.classify(t, "spam", "hi", "X-Tailor-User", user)
			resp, body := w.post(t, "/v1/classify", map[string]any{"model": "spam", "input": "hi", "user": user})
			if v != first || resp.Header.Get("X-Tailor-Model-Version") != first {
				t.Fatalf("user %s got %s then %s / %s (%s)", user, first, v, resp.Header.Get("X-Tailor-Model-Version"), body)
			}
		}
		users[first]++
	}
	if s := 100 * float64(users["spam@v2"]) / 300; s < 12 || s > 28 {
		t.Fatalf("sticky users on the challenger: %.1f%% (%v)", s, users)
	}
	// Explicit versions bypass the policy.
	if _, v, _, _ := w.classify(t, "spam@v1", "hi", "X-Tailor-User", "user-1"); v != "spam@v1" {
		t.Fatalf("explicit version routed to %s", v)
	}
}

// A canary and a shadow together: the canary's share of requests, every
// request mirrored to the shadow whichever variant answered, and a canary
// that does not resolve leaves its share to the primary.
func TestCanaryWithShadow(t *testing.T) {
	logDir := t.TempDir()
	lg, err := reqlog.Open(reqlog.Options{Dir: logDir, SampleRate: 1})
	must(t, err)
	w := newWorld(t, serve.Options{Log: lg}, nil)
	must(t, w.srv.Deploy(context.Background(), serve.Deployment{Model: "spam", Canary: &serve.Canary{Model: "spam@v2", Percent: 50}, Shadow: "spam@challenger"}))
	served := map[string]int{}
	for u := range 40 {
		_, v, _, _ := w.classify(t, "spam", "win a prize", "X-Tailor-User", fmt.Sprintf("u%d", u))
		served[v]++
	}
	must(t, w.srv.Deploy(context.Background(), serve.Deployment{Model: "spam", Canary: &serve.Canary{Model: "spam@v9", Percent: 50}}))
	for u := range 20 {
		if st, v, _, body := w.classify(t, "spam", "hi", "X-Tailor-User", fmt.Sprintf("u%d", u)); st != 200 || v != "spam@v1" {
			t.Fatalf("unresolvable canary: %d %s %s", st, v, body)
		}
	}
	if v := w.metricValue(t, `tailor_serve_canary_requests_total{outcome="fallback"}`); v == "" || v == "0" {
		t.Fatalf("canary fallbacks %q", v)
	}
	w.srv.Close()
	lg.Close()
	variants := map[string]int{}
	_, err = (&reqlog.Reader{Dir: logDir}).ReadFrom(1, func(r reqlog.Record) bool {
		variants[r.Variant+" "+r.Version]++
		return true
	})
	must(t, err)
	if served["spam@v1"] == 0 || served["spam@v2"] == 0 || variants["canary spam@v2"] != served["spam@v2"] ||
		variants["primary spam@v1"] != served["spam@v1"]+20 || variants["shadow spam@v2"] != 40 {
		t.Fatalf("served %v, logged %v", served, variants)
	}
}

func TestShadowNeverChangesAnswer(t *testing.T) {
	logDir := t.TempDir()
	lg, err := reqlog.Open(reqlog.Options{Dir: logDir, SampleRate: 1})
	must(t, err)
	w := newWorld(t, serve.Options{Log: lg}, nil)
	inputs := []string{"win a free prize now", "lunch tomorrow?", "cheap pills online", "please call me back"}
	champion := map[string]serve.Classification{}
	for _, in := range inputs {
		_, _, c, _ := w.classify(t, "spam@champion", in)
		champion[in] = c
	}
	must(t, w.srv.Deploy(context.Background(), serve.Deployment{Model: "spam", Shadow: "spam@challenger"}))
	for round := range 3 {
		if round == 2 {
			// A challenger that fails every request (a generator adapter,
			// asked to classify): shadow errors stay invisible.
			bad := fixGen
			bad.Model = "spam"
			v := w.res.AddVersion(bad)
			must(t, w.res.SetAlias("spam", "challenger", v.Version))
			must(t, w.srv.AliasMoved(context.Background(), "spam", "challenger"))
		}
		for _, in := range inputs {
			st, v, c, body := w.classify(t, "spam", in)
			if st != 200 || v != "spam@v1" || c.Label != champion[in].Label || c.Probabilities["spam"] != champion[in].Probabilities["spam"] {
				t.Fatalf("round %d %q: %d %s %+v, champion alone %+v (%s)", round, in, st, v, c, champion[in], body)
			}
		}
	}
	w.srv.Close() // waits for the mirrored requests
	lg.Close()
	variants := map[string]int{}
	_, err = (&reqlog.Reader{Dir: logDir}).ReadFrom(1, func(r reqlog.Record) bool {
		variants[r.Variant+" "+r.Version]++
		return true
	})
	must(t, err)
	if variants["shadow spam@v2"] != 8 || variants["shadow spam@v3"] != 4 || variants["primary spam@v1"] != 12 {
		t.Fatalf("logged variants %v", variants)
	}
}

func TestRequestLogAndMetrics(t *testing.T) {
	logDir := t.TempDir()
	lg, err := reqlog.Open(reqlog.Options{Dir: logDir, SampleRate: 1, Redact: []string{`\b\d{3}-\d{4}\b`}, MaxSegmentBytes: 700})
	must(t, err)
	w := newWorld(t, serve.Options{Log: lg}, nil)
	for i := range 6 {
		st, _, _, body := w.classify(t, "spam@v1", fmt.Sprintf("call 555-%04d now", i))
		if st != 200 {
			t.Fatalf("%d %s", st, body)
		}
	}
	resp, _ := w.post(t, "/v1/chat/completions", map[string]any{"model": "chat", "max_tokens": 5, "seed": 3,
		"messages": []map[string]string{{"role": "user", "content": "ring 555-1234"}}})
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	w.post(t, "/v1/classify", map[string]any{"model": "missing", "input": "x"})
	lg.Close()
	var recs []reqlog.Record
	_, err = (&reqlog.Reader{Dir: logDir}).ReadFrom(1, func(r reqlog.Record) bool { recs = append(recs, r); return true })
	must(t, err)
	if files, _ := filepath.Glob(filepath.Join(logDir, "*.jsonl")); len(recs) != 8 || len(files) < 2 {
		t.Fatalf("%d records in %d files", len(recs), len(files))
	}
	for i, r := range recs {
		if r.Seq != int64(i+1) || strings.Contains(r.Input, "555-") || r.RequestID == "" {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if r := recs[0]; r.Label == "" || r.Confidence < 0.5 || r.Version != "spam@v1" || r.Endpoint != "classify" || r.PromptTokens == 0 {
		t.Fatalf("classify record %+v", r)
	}
	if r := recs[6]; r.Endpoint != "chat" || r.Input != "ring [REDACTED]" || r.CompletionTokens == 0 || r.Version != "chat@v1" {
		t.Fatalf("chat record %+v", r)
	}
	if r := recs[7]; r.Status != 404 || r.Error == "" {
		t.Fatalf("error record %+v", r)
	}
	_, body := w.get(t, "/metrics")
	for _, want := range []string{
		`tailor_serve_requests_total{endpoint="classify",model="spam@v1",status="200"} 6`,
		`tailor_serve_requests_total{endpoint="classify",model="unknown",status="404"} 1`,
		`tailor_serve_request_duration_seconds_count{model="spam@v1",status="200"} 6`,
		`tailor_serve_request_duration_seconds_bucket{model="chat",status="200",le="+Inf"} 1`,
		`# TYPE tailor_serve_request_duration_seconds histogram`,
		`tailor_serve_generated_tokens_total{model="chat@v1"}`,
		`tailor_serve_loaded_adapters 2`,
		`tailor_serve_tokens_per_second `,
	} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("metrics lack %q:\n%s", want, body)
		}
	}
	var probe map[string]any
	if json.Unmarshal(body, &probe) == nil {
		t.Fatal("metrics are JSON, want text exposition")
	}
}
