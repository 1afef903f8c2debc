package childengine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/childengine"
	"github.com/tailor-ml/tailor/internal/serve/modelengine"
	"github.com/tailor-ml/tailor/internal/serve/servetest"
)

var labels = []string{"ham", "spam"}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMatchesInProcessEngine: loads, classify and logits through the
// child answer exactly what the in-process engine answers.
func TestMatchesInProcessEngine(t *testing.T) {
	ctx := context.Background()
	f := servetest.ForTest(t)
	cls, err := f.Classifier(1, labels)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := f.Generator(2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := modelengine.New(modelengine.Options{Loader: f.Loader()})
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, f, childengine.Spec{}, nil)
	for _, tg := range []serve.Target{cls, gen, f.Base} {
		want, err := ref.Load(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Load(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		if got.Tokenizer == nil || !slices.Equal(got.Labels, want.Labels) || got.MaxPositions != want.MaxPositions ||
			got.MaxInputTokens != want.MaxInputTokens || got.VocabSize != want.VocabSize || !slices.Equal(got.EOS, want.EOS) {
			t.Fatalf("%s: loaded %+v, in-process %+v", tg.VersionName(), got, want)
		}
		toks := got.Tokenizer.Encode("win a free prize now", true)
		if !slices.Equal(toks, want.Tokenizer.Encode("win a free prize now", true)) {
			t.Fatal("the parent's tokenizer differs from the engine's")
		}
		var a, b [][]float32
		if got.Classifier() {
			a, err = e.Classify(ctx, []serve.ClassifyRow{{Model: got, Tokens: toks}, {Model: got, Tokens: toks[:3]}})
			if err == nil {
				b, err = ref.Classify(ctx, []serve.ClassifyRow{{Model: want, Tokens: toks}, {Model: want, Tokens: toks[:3]}})
			}
		} else {
			a, err = e.Logits(ctx, []serve.StepRow{{Seq: 1, Model: got, Tokens: toks}})
			if err == nil {
				b, err = ref.Logits(ctx, []serve.StepRow{{Seq: 1, Model: want, Tokens: toks}})
			}
			e.Release(1)
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != len(b) || len(a[0]) != len(b[0]) {
			t.Fatalf("%s: shapes differ", tg.VersionName())
		}
		for i := range a {
			if !slices.Equal(a[i], b[i]) {
				t.Fatalf("%s row %d: child %v, in-process %v", tg.VersionName(), i, a[i][:min(4, len(a[i]))], b[i][:min(4, len(b[i]))])
			}
		}
	}
	// Errors keep their kind across the process boundary.
	gl, _ := e.Load(ctx, gen)
	_, err = e.Classify(ctx, []serve.ClassifyRow{{Model: gl, Tokens: []int32{1}}})
	if errs.Kind(err) != "invalid" || !strings.Contains(err.Error(), "no classification head") {
		t.Fatalf("classify through a generator: %v (kind %s), want invalid", err, errs.Kind(err))
	}
	if st := e.Stats(); st.ResidentBytes <= 0 || st.Bases != 1 || st.Restarts != 0 {
		t.Fatalf("stats %+v: want the child's resident bytes, 1 base, no restart", st)
	}
}

// TestKill9UnderLoad kills the serving process with SIGKILL while clients
// classify through the real HTTP server: every answer is a 200 or a 503
// with Retry-After, and requests succeed again within 5 s of the kill.
// With the default options calls wait for the new process (a batch that
// failed is retried job by job); with a slow restart and a short wait they
// get 503s meanwhile.
func TestKill9UnderLoad(t *testing.T) {
	cases := []struct {
		name     string
		tune     func(*childengine.Options)
		want503s bool
	}{
		{"defaults", func(*childengine.Options) {}, false},
		{"slow restart", func(o *childengine.Options) { o.MinBackoff, o.ReadyWait = 1500*time.Millisecond, 50*time.Millisecond }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { kill9UnderLoad(t, tc.tune, tc.want503s) })
	}
}

func kill9UnderLoad(t *testing.T, tune func(*childengine.Options), want503s bool) {
	f := servetest.ForTest(t)
	cls, err := f.Classifier(1, labels)
	if err != nil {
		t.Fatal(err)
	}
	cls.Model = "spam"
	res := serve.NewMemResolver()
	res.AddBase(f.Base)
	res.AddVersion(cls)
	if err := res.SetAlias("spam", "champion", 1); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, f, childengine.Spec{}, nil, tune)
	srv, err := serve.New(serve.Options{Engine: e, Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })

	type outcome struct {
		start, end time.Time
		status     int
		retryAfter string
		body       string
	}
	post := func() outcome {
		o := outcome{start: time.Now()}
		body, _ := json.Marshal(map[string]any{"model": "spam", "input": []string{"win a free prize now", "lunch tomorrow?"}})
		resp, err := http.Post(hs.URL+"/v1/classify", "application/json", bytes.NewReader(body))
		if err != nil {
			o.status, o.body = -1, err.Error()
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			o.status, o.retryAfter, o.body = resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
		}
		o.end = time.Now()
		return o
	}
	waitFor(t, "a first answer", 20*time.Second, func() bool { return post().status == 200 })
	pid := e.PID()

	var mu sync.Mutex
	var outs []outcome
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				o := post()
				mu.Lock()
				outs = append(outs, o)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	recovered := func() (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range outs {
			if o.status == 200 && o.start.After(killed) {
				return o.end, true
			}
		}
		return time.Time{}, false
	}
	waitFor(t, "a success after the kill", 10*time.Second, func() bool { _, ok := recovered(); return ok })
	time.Sleep(300 * time.Millisecond) // and some more load on the new process
	close(stop)
	wg.Wait()

	first, _ := recovered()
	recovery := first.Sub(killed)
	counts := map[int]int{}
	for _, o := range outs {
		counts[o.status]++
		switch {
		case o.status == 200:
		case o.status == http.StatusServiceUnavailable:
			if n, err := strconv.Atoi(o.retryAfter); err != nil || n < 1 {
				t.Errorf("503 without a Retry-After (%q): %s", o.retryAfter, o.body)
			}
		default:
			t.Errorf("status %d: %s", o.status, o.body)
		}
	}
	t.Logf("kill -9 of pid %d under load: first success %v after the kill; answers by status %v", pid, recovery.Round(time.Millisecond), counts)
	if want503s && counts[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no 503 while the process was down")
	}
	if recovery > 5*time.Second {
		t.Fatalf("requests succeeded again %v after the kill; the bound is 5 s", recovery)
	}
	if e.PID() == pid || e.PID() == 0 {
		t.Fatalf("pid %d after the kill of %d", e.PID(), pid)
	}
	if st := e.Stats(); st.Restarts != 1 {
		t.Fatalf("restarts %d, want 1", st.Restarts)
	}
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"tailor_serve_engine_restarts_total 1\n", "tailor_serve_loaded_bases 1\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(string(body), "tailor_serve_engine_resident_bytes ") || strings.Contains(string(body), "tailor_serve_engine_resident_bytes 0\n") {
		t.Errorf("/metrics reports no resident bytes for the serving process")
	}
}

// TestBaseBudget serves three bases through the child under a base budget
// that fits two: every answer equals a fresh in-process engine's, bases
// are evicted and loaded again, and /metrics counts it.
func TestBaseBudget(t *testing.T) {
	ctx := context.Background()
	fs, err := servetest.Bases(t.TempDir(), 3, servetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var targets []serve.Target
	want := map[int][]float32{}
	toks := fs[0].Tok.Encode("cheap pills online, act now", true)
	var one int64
	for i, f := range fs {
		tg, err := f.Classifier(uint64(20+i), labels)
		if err != nil {
			t.Fatal(err)
		}
		tg.Model = fmt.Sprintf("spam%d", i)
		targets = append(targets, tg)
		fresh, err := modelengine.New(modelengine.Options{Loader: f.Loader()})
		if err != nil {
			t.Fatal(err)
		}
		l, err := fresh.Load(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		p, err := fresh.Classify(ctx, []serve.ClassifyRow{{Model: l, Tokens: toks}})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = p[0]
		one = fresh.Stats().BaseBytes
	}
	e := newEngine(t, fs[0], childengine.Spec{BaseBudgetBytes: 2*one + one/2}, nil)
	var prev int64
	for round := range 3 {
		for i, tg := range targets {
			l, err := e.Load(ctx, tg)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				p, err := e.Classify(ctx, []serve.ClassifyRow{{Model: l, Tokens: toks}})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(p[0], want[i]) {
					t.Fatalf("round %d base %d: %v, fresh engine %v", round, i, p[0], want[i])
				}
			}
			st := e.Stats()
			if st.Bases > 2 || st.BaseBytes > st.BaseBudgetBytes {
				t.Fatalf("round %d base %d: %d bases, %d bytes over the budget %d", round, i, st.Bases, st.BaseBytes, st.BaseBudgetBytes)
			}
			if round > 0 && st.BaseEvictions <= prev {
				t.Fatalf("round %d base %d: base evictions %d, were %d", round, i, st.BaseEvictions, prev)
			}
			prev = st.BaseEvictions
		}
	}
	srv, err := serve.New(serve.Options{Engine: e, Resolver: serve.NewMemResolver()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"tailor_serve_base_evictions_total 7\n", "tailor_serve_base_loads_total 9\n", "tailor_serve_loaded_bases 2\n",
		fmt.Sprintf("tailor_serve_base_budget_bytes %d\n", 2*one+one/2)} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestCancelReachesChild: a call whose context ends returns at once with
// the context's error, and the child's work on it is canceled (the hung
// load sees its context end); the child goes on serving.
func TestCancelReachesChild(t *testing.T) {
	f := servetest.ForTest(t)
	cls, err := f.Classifier(1, labels)
	if err != nil {
		t.Fatal(err)
	}
	logs := &records{}
	e := newEngine(t, f, childengine.Spec{}, slog.New(logs))
	if _, err := e.Load(context.Background(), cls); err != nil {
		t.Fatal(err)
	}
	pid := e.PID()
	hang := f.Base
	hang.Model, hang.BaseID = hangModel, "hang-base"

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = e.Load(ctx, hang)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("load of a hung model: %v, want the deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("load returned %v after a 300 ms deadline", d)
	}
	waitFor(t, "the child to cancel the hung load", 5*time.Second, func() bool { return logs.count("hang canceled") == 1 })

	// A classify step that hangs (its model loads in the child) is
	// canceled by the caller's cancel, not only by a deadline.
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.Classify(ctx, []serve.ClassifyRow{{Model: &serve.Loaded{Target: hang, Labels: labels}, Tokens: []int32{1, 2}}})
		done <- err
	}()
	waitFor(t, "the hung step to start", 5*time.Second, func() bool { return logs.count("hang started") == 2 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled classify: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("classify did not return within 1 s of its cancel")
	}
	waitFor(t, "the child to cancel the hung step", 5*time.Second, func() bool { return logs.count("hang canceled") == 2 })
	if n := logs.count("call canceled by the parent"); n != 2 {
		t.Errorf("the child logged %d canceled calls, want 2", n)
	}

	l, err := e.Load(context.Background(), cls)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Classify(context.Background(), []serve.ClassifyRow{{Model: l, Tokens: []int32{1, 2, 3}}}); err != nil {
		t.Fatal(err)
	}
	if e.PID() != pid {
		t.Fatalf("the child was restarted (pid %d, was %d); cancel should not cost a process", e.PID(), pid)
	}
}

// TestStuckCallKillsChild: a call that its context canceled but the child
// cannot stop (stuck where cancellation does not reach) gets the child
// killed after the grace, and the next process serves.
func TestStuckCallKillsChild(t *testing.T) {
	f := servetest.ForTest(t)
	cls, err := f.Classifier(1, labels)
	if err != nil {
		t.Fatal(err)
	}
	logs := &records{}
	e := newEngine(t, f, childengine.Spec{}, slog.New(logs), func(o *childengine.Options) { o.CancelGrace = 300 * time.Millisecond })
	if _, err := e.Load(context.Background(), cls); err != nil {
		t.Fatal(err)
	}
	pid := e.PID()
	stuck := f.Base
	stuck.Model, stuck.BaseID = stuckModel, "stuck-base"
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := e.Load(ctx, stuck); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("load of a stuck model: %v, want the deadline", err)
	}
	waitFor(t, "a new serving process", 5*time.Second, func() bool { p := e.PID(); return p != 0 && p != pid })
	if logs.count("did not stop a canceled call") != 1 {
		t.Fatal("the kill was not logged")
	}
	l, err := e.Load(context.Background(), cls)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Classify(context.Background(), []serve.ClassifyRow{{Model: l, Tokens: []int32{1, 2}}}); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Restarts != 1 {
		t.Fatalf("restarts %d, want 1", st.Restarts)
	}
}
