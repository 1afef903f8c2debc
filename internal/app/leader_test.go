package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/bus/nats/natstest"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlite"
)

// replicaTTL is the tests' lease ttl: short, so handovers are quick.
const replicaTTL = 900 * time.Millisecond

// openReplica opens and starts an App with its own data dir on the shared
// store file, blob directory (next to the store file) and bus, with real
// training workers; stop cancels and closes it (also when the test ends).
func openReplica(t *testing.T, name, storeFile, busURL string) (a *App, stop func()) {
	t.Helper()
	t.Setenv(workerEnv, "1")
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Open(Options{DataDir: filepath.Join(t.TempDir(), name), EngineVersion: "test", WorkerCommand: []string{os.Args[0]},
		Store: "sqlite://" + storeFile, Blob: "file://" + filepath.Join(filepath.Dir(storeFile), "blobs"), Bus: busURL, Replica: name, LeaseTTL: replicaTTL})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := a.Close(); err != nil {
				t.Errorf("close %s: %v", name, err)
			}
		}
	}
	t.Cleanup(stop)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return a, stop
}

// waitHealth polls a's health until ok says so; a hang guard bounds it.
func waitHealth(t *testing.T, a *App, what string, ok func(api.Health) bool) api.Health {
	t.Helper()
	var h api.Health
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var err error
		if h, err = a.Health(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ok(h) {
			return h
		}
	}
	t.Fatalf("replica %s: %s never held (health %+v)", a.Replica(), what, h)
	return h
}

// longRecipe trains long enough to be canceled mid-run.
const longRecipe = "name: mail\ntask: classify\nbase: tiny\ndata: {dataset: mail}\nmethod: {kind: lora, lora: {rank: 4}}\n" +
	"train: {max_steps: 100000, batch_size: 8, learning_rate: 0.01, max_seq_len: 32, checkpoint_every: 50}\nseed: 1\nregion: local\n"

func mailData() string {
	var b strings.Builder
	words := [][]string{{"meeting", "notes", "lunch"}, {"prize", "cash", "winner"}}
	for i := range 60 {
		c := i % 2
		fmt.Fprintf(&b, "{\"id\":\"m%d\",\"text\":\"the %s for you %d\",\"label\":%q}\n", i, words[c][i%3], i, []string{"ham", "spam"}[c])
	}
	return b.String()
}

// TestReplicasShareOneLeader: two Apps on one SQLite file and one NATS
// server. One leads; the other answers the API and hands what only the
// leader does to it through the store and the bus: a run started on the
// follower is executed by the leader, and a cancel asked of the follower
// stops the leader's worker. When the leader stops, it releases the lease
// and the follower leads and runs what is queued.
func TestReplicasShareOneLeader(t *testing.T) {
	ns, err := natstest.Embedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	storeFile := filepath.Join(t.TempDir(), "tailor.db")
	a, stopA := openReplica(t, "a", storeFile, ns.URL)
	b, _ := openReplica(t, "b", storeFile, ns.URL)
	ctx := store.WithActor(context.Background(), "ana")
	if h, _ := a.Health(ctx); !h.Leading || h.Leader != "a" {
		t.Fatalf("a's health %+v: the first replica started did not lead", h)
	}
	hb := waitHealth(t, b, "following a", func(h api.Health) bool { return h.Leader == "a" })
	if hb.Leading || hb.Replica != "b" {
		t.Fatalf("b's health %+v, want b following a", hb)
	}

	importSeedBase(t, b, "tiny", 5)
	if _, err := b.ImportDataset(ctx, strings.NewReader(mailData()), api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "mail.jsonl"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ApplyRecipe(ctx, "mail.yaml", []byte(longRecipe)); err != nil {
		t.Fatal(err)
	}
	r, err := b.StartRun(ctx, api.RunStart{Recipe: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	waitRunState(t, b, ctx, r.ID, "running")
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, err := b.Run(ctx, r.ID); err != nil || got.Step > 0 {
			break // the worker trains: it read its inputs from the shared blob store
		}
	}
	if !a.sched.Supervises(r.ID) || b.sched.Supervises(r.ID) {
		t.Fatalf("run %s started on the follower is not supervised by the leader", r.ID)
	}
	got, err := b.CancelRun(ctx, r.ID)
	if err != nil || got.State != "canceled" {
		t.Fatalf("cancel through the follower: %+v, %v", got, err)
	}
	evs, err := b.store.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cancelSeq int64
	for _, e := range evs {
		if e.Type == run.EventStateChanged && e.Subject == r.ID && strings.Contains(string(e.Data), `"to":"canceled"`) {
			cancelSeq = e.Seq
		}
	}
	entries, err := b.store.AuditEntries(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var canceledBy string
	for _, e := range entries {
		if e.EventSeq == cancelSeq {
			canceledBy = e.Actor
		}
	}
	if canceledBy != "ana" {
		t.Errorf("the cancel is audited under %q, want the actor who asked the follower (ana)", canceledBy)
	}

	// The leader stops: the follower leads at once (the lease is released)
	// and runs the next run itself.
	stopA()
	waitHealth(t, b, "leading", func(h api.Health) bool { return h.Leading && h.Term == 2 })
	if _, err := b.ApplyRecipe(ctx, "mail.yaml", []byte(strings.Replace(longRecipe, "max_steps: 100000", "max_steps: 4", 1))); err != nil {
		t.Fatal(err)
	}
	r2, err := b.StartRun(ctx, api.RunStart{Recipe: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	waitRunState(t, b, ctx, r2.ID, "succeeded")
}

// TestLeaderStepsDownWhenFenced: a leader whose lease another holder took
// (here: released behind its back and acquired by an intruder) finds out
// at its next renewal, stops the leader's work and follows; when the
// lease is free again it leads in a new term, its scheduler running again.
func TestLeaderStepsDownWhenFenced(t *testing.T) {
	storeFile := filepath.Join(t.TempDir(), "tailor.db")
	a, _ := openReplica(t, "a", storeFile, "local")
	ctx := context.Background()
	h := waitHealth(t, a, "leading", func(h api.Health) bool { return h.Leading })
	other, err := sqlite.Open(storeFile, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	held, err := other.Lease(ctx, leaderLease)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.ReleaseLease(ctx, held, time.Now()); err != nil {
		t.Fatal(err)
	}
	intruder, err := other.AcquireLease(ctx, leaderLease, "intruder", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	waitHealth(t, a, "following the intruder", func(h api.Health) bool { return !h.Leading && h.Leader == "intruder" })
	// Its old term's writes are refused from now on.
	if _, err := a.store.AppendEvents(store.WithFence(ctx, store.Fence{Lease: leaderLease, Holder: "a", Term: h.Term}),
		[]store.Event{{Type: "x.happened", Subject: "x"}}); err == nil {
		t.Fatal("a write under the old term committed after the intruder's term began")
	}
	if err := other.ReleaseLease(ctx, intruder, time.Now()); err != nil {
		t.Fatal(err)
	}
	h2 := waitHealth(t, a, "leading again", func(h api.Health) bool { return h.Leading })
	if h2.Term != intruder.Term+1 {
		t.Errorf("new term %d, want %d", h2.Term, intruder.Term+1)
	}
	importSeedBase(t, a, "tiny", 5)
	if _, err := a.ImportDataset(ctx, strings.NewReader(mailData()), api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "mail.jsonl"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ApplyRecipe(ctx, "mail.yaml", []byte(strings.Replace(longRecipe, "max_steps: 100000", "max_steps: 4", 1))); err != nil {
		t.Fatal(err)
	}
	r, err := a.StartRun(store.WithActor(ctx, "ana"), api.RunStart{Recipe: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	waitRunState(t, a, ctx, r.ID, "succeeded")
	// The events say who led when.
	evs, err := a.store.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var terms []string
	for _, e := range evs {
		if e.Type == EventLeaderElected {
			terms = append(terms, string(e.Data))
		}
	}
	if len(terms) != 2 {
		t.Errorf("leader.elected events %v, want two (term %d and %d)", terms, h.Term, h2.Term)
	}
}
