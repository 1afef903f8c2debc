package run

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlite"
)

// The test binary doubles as a worker: with TAILOR_TEST_WORKER set it reads
// a Spec from stdin and behaves as the mode says, as a real child process.
func TestMain(m *testing.M) {
	if mode := os.Getenv("TAILOR_TEST_WORKER"); mode != "" {
		os.Exit(fakeWorker(mode))
	}
	os.Exit(m.Run())
}

func fakeWorker(mode string) int {
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return 9
	}
	var spec Spec
	if err := json.Unmarshal(line, &spec); err != nil {
		return 9
	}
	out := json.NewEncoder(os.Stdout)
	switch mode {
	case "ok":
		out.Encode(Message{Type: MsgProgress, Step: 1, TotalSteps: 2, Loss: 0.5})
		out.Encode(Message{Type: MsgCheckpoint, Step: 1, Digest: "sha256:ckpt1"})
		out.Encode(Message{Type: MsgProgress, Step: 2, TotalSteps: 2, Loss: 0.25})
		metrics, _ := json.Marshal(map[string]string{"resume": spec.Resume, "recipe": string(spec.Recipe)})
		out.Encode(Message{Type: MsgResult, Step: 2, Digest: "sha256:adapter", Metrics: metrics})
		return 0
	case "longline":
		// A line over the message limit is skipped, and what follows still
		// arrives: the supervisor keeps reading, so the worker never blocks.
		out.Encode(Message{Type: MsgProgress, Step: 1, TotalSteps: 1, Loss: 0.5})
		os.Stdout.Write(append(bytes.Repeat([]byte("x"), 9<<20), '\n'))
		out.Encode(Message{Type: MsgResult, Step: 1, Digest: "sha256:adapter"})
		return 0
	case "fail":
		fmt.Fprintln(os.Stderr, "out of memory loading base weights")
		return 3
	case "silent":
		return 0
	case "steps":
		// Trains 3 steps, checkpointing each, then waits to be stopped; a
		// resumed attempt finishes at once.
		if spec.Resume != "" {
			metrics, _ := json.Marshal(map[string]string{"resume": spec.Resume})
			out.Encode(Message{Type: MsgResult, Step: 5, Digest: "sha256:adapter", Metrics: metrics, FLOPs: 2e9})
			return 0
		}
		for step := int64(1); step <= 3; step++ {
			out.Encode(Message{Type: MsgProgress, Step: step, TotalSteps: 5, FLOPs: float64(step) * 1e9})
			out.Encode(Message{Type: MsgCheckpoint, Step: step, Digest: fmt.Sprintf("sha256:ckpt%d", step), FLOPs: float64(step) * 1e9})
		}
		in.ReadBytes(0)
		return 0
	case "finish":
		// Trains all of its 3 steps, checkpointing each, then succeeds.
		for step := int64(1); step <= 3; step++ {
			out.Encode(Message{Type: MsgProgress, Step: step, TotalSteps: 3, FLOPs: float64(step) * 1e9})
			out.Encode(Message{Type: MsgCheckpoint, Step: step, Digest: fmt.Sprintf("sha256:ckpt%d", step), FLOPs: float64(step) * 1e9})
		}
		out.Encode(Message{Type: MsgResult, Step: 3, Digest: "sha256:adapter", FLOPs: 3e9})
		return 0
	case "lost", "always-lost":
		// Checkpoints two steps, then vanishes as a deleted pod would (exit
		// 75, which lostExecutor reports as ErrWorkerLost); a resumed
		// attempt of "lost" finishes.
		if spec.Resume != "" && mode == "lost" {
			metrics, _ := json.Marshal(map[string]any{"resume": spec.Resume, "attempt": spec.Attempt})
			out.Encode(Message{Type: MsgResult, Step: 4, Digest: "sha256:adapter", Metrics: metrics})
			return 0
		}
		for step := int64(1); step <= 2; step++ {
			out.Encode(Message{Type: MsgCheckpoint, Step: step, Digest: fmt.Sprintf("sha256:ckpt%d-a%d", step, spec.Attempt)})
		}
		return 75
	case "hang":
		out.Encode(Message{Type: MsgProgress, Step: 1, TotalSteps: 100})
		in.ReadBytes(0) // until stdin closes (the server died)
		return 0
	}
	return 8
}

type recorder struct {
	mu  sync.Mutex
	evs []store.Event
}

func (r *recorder) Publish(evs ...store.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, evs...)
}

func (r *recorder) transitions(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.evs {
		if e.Subject == id && e.Type == "run.state.changed" {
			var d struct{ To string }
			json.Unmarshal(e.Data, &d)
			out = append(out, d.To)
		}
	}
	return out
}

// event returns the last event of type typ about id, or nil.
func (r *recorder) event(id, typ string) *store.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.evs) - 1; i >= 0; i-- {
		if e := r.evs[i]; e.Subject == id && e.Type == typ {
			return &e
		}
	}
	return nil
}

type fixture struct {
	st    store.Store
	pub   *recorder
	sched *Scheduler
	stop  context.CancelFunc
}

func newFixture(t *testing.T, st store.Store, mode string, concurrency int) *fixture {
	t.Helper()
	return newFixtureWith(t, st, mode, Options{Concurrency: concurrency})
}

// newFixtureWith starts a scheduler with opts, its store, publisher and a
// worker of mode filled in.
func newFixtureWith(t *testing.T, st store.Store, mode string, opts Options) *fixture {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, pub: &recorder{}}
	opts.Store, opts.Publisher = st, f.pub
	opts.Executor = &LocalExecutor{Command: []string{self, "-test.run=^$"}, Env: []string{"TAILOR_TEST_WORKER=" + mode}}
	f.sched = New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = func() { cancel(); f.sched.Wait() }
	if err := f.sched.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.stop)
	return f
}

func openStore(t *testing.T, path string) store.Store {
	t.Helper()
	st, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if _, err := st.RecipeVersion(ctx, "r", ""); err != nil {
		if _, _, err := st.PutRecipeVersion(ctx, store.RecipeVersion{ID: "rid", Name: "r", Normalized: []byte("name: r\n"), CreatedAt: time.Now()}, nil); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func submit(t *testing.T, f *fixture, id string) {
	t.Helper()
	in, _ := json.Marshal(Inputs{Recipe: InputRef{Name: "r", ID: "rid"}, Dataset: InputRef{Name: "d", ID: "did"}, Engine: "e"})
	if _, err := f.sched.Submit(context.Background(), store.Run{ID: id, Key: "k-" + id, RecipeID: "rid", DatasetID: "did", Inputs: in}); err != nil {
		t.Fatal(err)
	}
}

func waitState(t *testing.T, st store.Store, id string, want store.RunState) store.Run {
	t.Helper()
	return waitStateIn(context.Background(), t, st, id, want)
}

// waitStateIn is waitState for a run of ctx's project.
func waitStateIn(ctx context.Context, t *testing.T, st store.Store, id string, want store.RunState) store.Run {
	t.Helper()
	for i := 0; i < 600; i++ {
		r, err := st.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == want {
			return r
		}
		if r.State.Terminal() {
			t.Fatalf("run %s ended %s (%s), want %s", id, r.State, r.Error, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("run %s never reached %s", id, want)
	return store.Run{}
}

func TestRunSucceeds(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	f := newFixture(t, st, "ok", 1)
	submit(t, f, "run-a")
	r := waitState(t, st, "run-a", store.RunSucceeded)
	if r.Result != "sha256:adapter" || r.Checkpoint != "sha256:ckpt1" || r.Step != 2 || r.Attempt != 1 {
		t.Fatalf("run %+v", r)
	}
	var m map[string]string
	json.Unmarshal(r.Metrics, &m)
	if m["recipe"] != "name: r\n" || m["resume"] != "" {
		t.Fatalf("worker got spec %v", m)
	}
	if got := f.pub.transitions("run-a"); !slices.Equal(got, []string{"queued", "running", "succeeded"}) {
		t.Fatalf("transitions %v", got)
	}
	logs, _ := st.RunLogs(context.Background(), "run-a", 0, 0)
	var text []string
	for _, l := range logs {
		text = append(text, string(l.Data))
	}
	if all := strings.Join(text, "\n"); !strings.Contains(all, `"loss":0.25`) || !strings.Contains(all, "checkpoint at step 1") {
		t.Fatalf("logs:\n%s", all)
	}
}

func TestOversizedLine(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	f := newFixture(t, st, "longline", 1)
	submit(t, f, "run-l")
	if r := waitState(t, st, "run-l", store.RunSucceeded); r.Result != "sha256:adapter" {
		t.Fatalf("run %+v", r)
	}
}

func TestRunFailures(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"fail", "out of memory loading base weights"},
		{"silent", "without a result"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			st := openStore(t, filepath.Join(t.TempDir(), "t.db"))
			f := newFixture(t, st, tc.mode, 1)
			submit(t, f, "run-f")
			r := waitState(t, st, "run-f", store.RunFailed)
			if !strings.Contains(r.Error, tc.want) || r.FinishedAt.IsZero() {
				t.Fatalf("error %q, want it to contain %q", r.Error, tc.want)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	f := newFixture(t, st, "hang", 1)
	submit(t, f, "run-1")
	waitState(t, st, "run-1", store.RunRunning)
	submit(t, f, "run-2") // queued behind run-1 (concurrency 1)
	ctx := context.Background()
	r2, err := f.sched.Cancel(ctx, "run-2")
	if err != nil || r2.State != store.RunCanceled || r2.Attempt != 0 {
		t.Fatalf("cancel queued: %v %+v", err, r2)
	}
	r1, err := f.sched.Cancel(ctx, "run-1")
	if err != nil || r1.State != store.RunCanceled {
		t.Fatalf("cancel running: %v %+v", err, r1)
	}
	if _, err := f.sched.Cancel(ctx, "run-1"); err == nil {
		t.Fatal("canceling a canceled run succeeded")
	}
}

// TestRecoverAfterCrash: a run left "running" by a dead server is re-queued
// by the next one and its worker is told to resume from the checkpoint.
func TestRecoverAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	st := openStore(t, path)
	ctx := context.Background()
	in, _ := json.Marshal(Inputs{Recipe: InputRef{Name: "r", ID: "rid"}})
	if _, err := st.CreateRun(ctx, store.Run{ID: "run-x", Key: "k", RecipeID: "rid", Inputs: in, State: store.RunQueued, CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	running, one, ckpt, step := store.RunRunning, 1, "sha256:ckpt7", int64(7)
	if _, _, err := st.UpdateRun(ctx, "run-x", store.RunUpdate{State: &running, Attempt: &one, Checkpoint: &ckpt, Step: &step}, nil); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, st, "ok", 1)
	r := waitState(t, st, "run-x", store.RunSucceeded)
	var m map[string]string
	json.Unmarshal(r.Metrics, &m)
	if m["resume"] != ckpt || r.Attempt != 2 {
		t.Fatalf("resumed with %q in attempt %d", m["resume"], r.Attempt)
	}
	if got := f.pub.transitions("run-x"); !slices.Equal(got, []string{"queued", "running", "succeeded"}) {
		t.Fatalf("transitions %v", got)
	}
}

// TestCancelOnAnotherReplica: a follower's scheduler (never started) asked
// to cancel a run the leader's scheduler supervises appends
// run.cancel.requested; the leader, handed that event (the app follows the
// bus for it), kills the worker and records the cancel under the asking
// actor. With no leader supervising the run, the follower records the
// cancel itself once CancelWait has passed, and a new leader's Start does
// not resume it.
func TestCancelOnAnotherReplica(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	leader := newFixture(t, openStore(t, path), "hang", 1)
	followerStore := openStore(t, path)
	follower := New(Options{Store: followerStore, Publisher: &recorder{}, CancelWait: time.Minute})
	ctx := store.WithActor(context.Background(), "ana")

	submit(t, leader, "run-1")
	waitState(t, followerStore, "run-1", store.RunRunning)
	done := make(chan store.Run, 1)
	go func() {
		r, err := follower.Cancel(ctx, "run-1")
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	var req store.Event
	for deadline := time.Now().Add(time.Minute); req.Seq == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		evs, err := followerStore.Events(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == EventCancelRequested && e.Subject == "run-1" {
				req = e
			}
		}
	}
	if req.Seq == 0 {
		t.Fatal("no run.cancel.requested appended")
	}
	if !leader.sched.CancelRequested(req) {
		t.Fatal("the supervising scheduler did not act on the request")
	}
	if r := <-done; r.State != store.RunCanceled {
		t.Fatalf("run-1 %s after a cancel through the follower, want canceled", r.State)
	}
	if leader.sched.CancelRequested(req) {
		t.Error("a second delivery of the request acted again")
	}

	// Nobody supervises run-2: its leader died (a row left running).
	in, _ := json.Marshal(Inputs{Recipe: InputRef{Name: "r", ID: "rid"}})
	if _, err := followerStore.CreateRun(context.Background(), store.Run{ID: "run-2", Key: "k-2", RecipeID: "rid", Inputs: in,
		State: store.RunRunning, CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	quick := New(Options{Store: followerStore, Publisher: &recorder{}, CancelWait: 50 * time.Millisecond})
	r2, err := quick.Cancel(ctx, "run-2")
	if err != nil || r2.State != store.RunCanceled {
		t.Fatalf("cancel with no supervisor: %+v, %v; want canceled", r2, err)
	}
	newFixture(t, followerStore, "hang", 1) // a new leader starts: its Start re-queues running runs
	if r, _ := followerStore.Run(context.Background(), "run-2"); r.State != store.RunCanceled {
		t.Fatalf("a new leader's Start moved run-2 to %s", r.State)
	}
}
