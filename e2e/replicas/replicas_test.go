// Package replicas is the multi-process failover test of several `tailor
// server` replicas (docs/scale-out.md): two real server processes built by
// the test, sharing one metadata store, one artifact store and a real
// nats-server process, with the leader killed with SIGKILL mid-run and
// mid-trigger-action.
package replicas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/tailortest"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/bus/nats/natstest"
)

// leaseTTL is the replicas' --lease-ttl. A follower acquires an expired
// lease at its next try (every leaseTTL/3), so after the leader's death
// the other replica leads within leaseTTL + leaseTTL/3 (the lease's rest,
// then one try), plus how long it takes to notice.
const leaseTTL = 3 * time.Second

// takeoverBound is what the test allows a takeover: the bound above plus
// one more try period for process scheduling on a busy machine; it is
// below the 10 s that issue 13 asks.
const takeoverBound = leaseTTL + 2*leaseTTL/3

// setup is what the replicas share: their flags (--store, --blob, --bus,
// --lease-ttl, an executor), their environment, and the flags naming a
// replica's own address.
type setup struct {
	shared []string
	env    []string
	own    func(addr string) []string
	// pods reports the Jobs' pods the kubetest runner started (nil
	// without a Kubernetes executor).
	pods func() []string
}

// cluster is what the replicas share on one machine. The store and blob
// addresses come from TAILOR_REPLICAS_STORE and TAILOR_REPLICAS_BLOB when
// set; by default one SQLite file (WAL) and one file:// blob directory in
// a temporary directory.
func cluster(t *testing.T) setup {
	return setup{shared: clusterFlags(t)}
}

func clusterFlags(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	storeAddr := os.Getenv("TAILOR_REPLICAS_STORE")
	if storeAddr == "" {
		storeAddr = "sqlite://" + filepath.Join(dir, "tailor.db")
	}
	blobAddr := os.Getenv("TAILOR_REPLICAS_BLOB")
	if blobAddr == "" {
		blobAddr = "file://" + filepath.Join(dir, "blobs")
	}
	ns, err := natstest.Process(filepath.Join(dir, "nats"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	t.Logf("store %s, blob %s, nats-server %s at %s, lease ttl %s", storeAddr, blobAddr, ns.Version, ns.URL, leaseTTL)
	return []string{"--store", storeAddr, "--blob", blobAddr, "--bus", ns.URL, "--lease-ttl", leaseTTL.String()}
}

// TestFailover: two replicas A and B.
//
//   - Runs started on the follower are run by the leader.
//   - An alias move made through A is answered by B's serving within 1 s.
//   - The leader, killed with SIGKILL at a run's first checkpoint: the
//     other replica leads within takeoverBound, and the run resumes from
//     its checkpoint and succeeds once (one run, one model version).
//   - The leader, killed with SIGKILL after a trigger action was done but
//     before its result was stored: the other replica leads, resumes the
//     firing, and the action's effect happens once (one run, one model
//     version, one alias move).
func TestFailover(t *testing.T) { failover(t, cluster(t)) }

// TestFailoverScaled is TestFailover on the scale-out engines (scaled):
// PostgreSQL, versitygw (S3) and nats-server, with TAILOR_KUBE=1 training
// in Kubernetes Jobs on KWOK too.
func TestFailoverScaled(t *testing.T) { failover(t, scaled(t)) }

func failover(t *testing.T, c setup) {
	ctx := context.Background()
	a, b := newReplica(t, "replica-a", c), newReplica(t, "replica-b", c)
	must(t, a.start())
	if _, err := a.waitLeading(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	must(t, b.start())
	ca, cb := a.client(), b.client()
	hb, err := cb.HealthStatus(ctx)
	must(t, err)
	if hb.Leading || hb.Leader != "replica-a" || hb.Replica != "replica-b" {
		t.Fatalf("B's health %+v, want B following A", hb)
	}

	// Setup, spread over both replicas: imports on B, recipes on A, runs
	// started on the follower B and executed by the leader A.
	baseDir := filepath.Join(t.TempDir(), "tiny")
	must(t, tailortest.WriteBase(baseDir, tailortest.Corpus(0, 200), tailortest.Micro))
	_, err = cb.ImportBaseDir(ctx, "tiny", "", baseDir)
	must(t, err)
	_, err = cb.ImportDataset(ctx, strings.NewReader(tailortest.Corpus(0, 120)), api.DatasetImportOptions{Name: "frozen", Task: "classify", FileName: "frozen.jsonl"})
	must(t, err)
	for seed := 1; seed <= 2; seed++ {
		_, err := ca.ApplyRecipe(ctx, "promo.yaml", []byte(recipeText("promo", seed, 4)))
		must(t, err)
		r, err := cb.StartRun(ctx, api.RunStart{Recipe: "promo"})
		must(t, err)
		r = waitRun(ctx, t, cb, r.ID, 3*time.Minute)
		if r.State != "succeeded" {
			t.Fatalf("run %s of promo seed %d: %s %s", r.ID, seed, r.State, r.Error)
		}
	}

	t.Run("AliasMoveReachesEveryReplica", func(t *testing.T) {
		promote(ctx, t, ca, "promo", "v1", "setup")
		waitServed(ctx, t, b, "promo@champion", "promo@v1", time.Minute) // the first load
		moved := time.Now()
		promote(ctx, t, ca, "promo", "v2", "move through A")
		seen := waitServed(ctx, t, b, "promo@champion", "promo@v2", 30*time.Second)
		lag := seen.Sub(moved)
		t.Logf("alias move through A answered by B's serving %s after A acknowledged it", lag.Round(time.Millisecond))
		if lag > time.Second {
			t.Errorf("B served the new champion %s after the move, want within 1s", lag)
		}
		waitServed(ctx, t, a, "promo@champion", "promo@v2", 30*time.Second)
	})
	if t.Failed() {
		return
	}

	t.Run("LeaderKilledMidRun", func(t *testing.T) {
		// B becomes the leader armed to die at a run's first checkpoint;
		// A comes back as a follower armed for the trigger test.
		b.stop()
		must(t, b.start("TAILOR_FAILPOINTS=run.checkpointed"))
		a.stop() // releases the lease
		if _, err := b.waitLeading(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		must(t, a.start("TAILOR_FAILPOINTS=trigger.acted"))

		_, err := ca.ApplyRecipe(ctx, "long.yaml", []byte(recipeText("long", 5, 12)))
		must(t, err)
		r, err := ca.StartRun(ctx, api.RunStart{Recipe: "long"}) // on the follower
		must(t, err)
		died, err := b.exited(3 * time.Minute)
		must(t, err)
		led, err := a.waitLeading(ctx, time.Minute)
		must(t, err)
		takeover := led.Sub(died)
		t.Logf("leader B killed at a checkpoint; A led %s later (lease ttl %s, bound %s)", takeover.Round(time.Millisecond), leaseTTL, takeoverBound)
		if takeover > takeoverBound {
			t.Errorf("takeover took %s, want at most %s", takeover, takeoverBound)
		}
		r = waitRun(ctx, t, ca, r.ID, 3*time.Minute)
		if r.State != "succeeded" || r.Attempt != 2 {
			t.Fatalf("run %s: %s after %d attempts (%s), want succeeded after 2", r.ID, r.State, r.Attempt, r.Error)
		}
		var resumed bool
		must(t, ca.RunLogs(ctx, r.ID, 0, false, func(l api.RunLog) error {
			resumed = resumed || bytes.Contains(l.Data, []byte("resuming from checkpoint"))
			return nil
		}))
		if !resumed {
			t.Errorf("run %s's log does not say it resumed from its checkpoint", r.ID)
		}
		// The leader registers the model version when it sees the run's
		// success, just after the run's state changes.
		vs := waitModels(ctx, t, ca, "long", 1, 30*time.Second)
		if len(vs) != 1 || vs[0].RunID != r.ID {
			t.Errorf("model versions of long: %+v, want one, from run %s", vs, r.ID)
		}
		runs, err := ca.Runs(ctx, "")
		must(t, err)
		if n := countRuns(runs, r.Key); n != 1 {
			t.Errorf("%d runs with key %s, want 1", n, r.Key)
		}
		if c.pods != nil {
			// Both attempts ran as Jobs: the dead leader's, and the new
			// leader's that resumed it.
			pods := c.pods()
			var a1, a2 bool
			for _, p := range pods {
				a1 = a1 || strings.Contains(p, "tailor-"+r.ID+"-a1")
				a2 = a2 || strings.Contains(p, "tailor-"+r.ID+"-a2")
			}
			t.Logf("pods the fake node ran: %v", pods)
			if !a1 || !a2 {
				t.Errorf("run %s: pods %v, want a Job's pod for attempts 1 and 2", r.ID, pods)
			}
		}
	})
	if t.Failed() {
		return
	}

	t.Run("LeaderKilledMidTriggerAction", func(t *testing.T) {
		must(t, b.start()) // a follower now; A leads, armed at trigger.acted
		before, err := ca.AliasHistory(ctx, "promo", "champion")
		must(t, err)
		_, err = cb.ApplyRecipe(ctx, "promo.yaml", []byte(recipeText("promo", 3, 4)))
		must(t, err)
		_, err = cb.ApplyTrigger(ctx, "rebuild.yaml", []byte(triggerText))
		must(t, err)
		_, err = cb.ImportBaseDir(ctx, "other", "", baseDir) // base.version.created fires it
		must(t, err)
		died, err := a.exited(3 * time.Minute)
		must(t, err)
		led, err := b.waitLeading(ctx, time.Minute)
		must(t, err)
		takeover := led.Sub(died)
		t.Logf("leader A killed after a trigger action; B led %s later (lease ttl %s, bound %s)", takeover.Round(time.Millisecond), leaseTTL, takeoverBound)
		if takeover > takeoverBound {
			t.Errorf("takeover took %s, want at most %s", takeover, takeoverBound)
		}
		f := waitFiring(ctx, t, cb, "rebuild", 3*time.Minute)
		if f.State != "done" || len(f.Results) != 2 || f.Results[0].RunID == "" || !f.Results[1].Promoted {
			t.Fatalf("firing %+v, want done: a retrain, then a promotion", f)
		}
		r, err := cb.Run(ctx, f.Results[0].RunID)
		must(t, err)
		runs, err := cb.Runs(ctx, "")
		must(t, err)
		if n := countRuns(runs, r.Key); n != 1 || r.State != "succeeded" {
			t.Errorf("retrain: %d runs with its key, run %s %s; want one, succeeded", n, r.ID, r.State)
		}
		vs, err := cb.Models(ctx, "promo")
		must(t, err)
		if len(vs) != 3 {
			t.Errorf("%d versions of promo, want 3 (two from setup, one from the trigger)", len(vs))
		}
		after, err := cb.AliasHistory(ctx, "promo", "champion")
		must(t, err)
		if len(after) != len(before)+1 || after[len(after)-1].To != f.Results[1].VersionID {
			t.Errorf("champion moves: %d before, %d after (last %+v); want one more, to %s", len(before), len(after), after[len(after)-1], f.Results[1].VersionID)
		}
		waitServed(ctx, t, b, "promo@champion", fmt.Sprintf("promo@v%d", f.Results[1].Version), 30*time.Second)
	})
}

const triggerText = `name: rebuild
on:
  event: base
  base: other
do:
  - retrain: {recipe: promo}
  - promote_if_pass: {alias: champion}
`

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func countRuns(runs []api.Run, key string) int {
	n := 0
	for _, r := range runs {
		if r.Key == key {
			n++
		}
	}
	return n
}

// recipeText is a tiny classify recipe with an always-passing gate.
func recipeText(name string, seed, steps int) string {
	return fmt.Sprintf(`name: %s
task: classify
base: tiny
data:
  dataset: frozen
method:
  kind: lora
  lora:
    rank: 2
    alpha: 4
    targets: [q_proj, v_proj]
train:
  max_steps: %d
  batch_size: 4
  learning_rate: 0.003
  checkpoint_every: 2
  max_seq_len: 24
seed: %d
eval:
  suite:
    - metric: accuracy
  gates:
    - metric: accuracy
      op: ">="
      value: 0
region: local
`, name, steps, seed)
}

func promote(ctx context.Context, t *testing.T, c *api.Client, model, version, reason string) {
	t.Helper()
	if _, err := c.Promote(ctx, model, api.Promote{Version: version, Alias: "champion", Reason: reason, Actor: "test",
		Override: true, OverrideReason: "replicas test: tiny models"}); err != nil {
		t.Fatalf("promote %s %s: %v", model, version, err)
	}
}

// waitServed classifies through r's serving until the answer comes from
// want (X-Tailor-Model-Version), and returns when it first did.
func waitServed(ctx context.Context, t *testing.T, r *replica, model, want string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got string
	var err error
	for time.Now().Before(deadline) {
		if got, err = classify(ctx, r.url(), model, "free cash offer"); err == nil && got == want {
			return time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("replica %s served %s as %q (err %v) for %s, want %s", r.name, model, got, err, timeout, want)
	return time.Time{}
}

func classify(ctx context.Context, base, model, text string) (string, error) {
	body, _ := json.Marshal(map[string]string{"model": model, "input": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/classify", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", res.StatusCode, b)
	}
	return res.Header.Get("X-Tailor-Model-Version"), nil
}

func waitRun(ctx context.Context, t *testing.T, c *api.Client, id string, timeout time.Duration) api.Run {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := c.Run(ctx, id)
		if err == nil {
			switch r.State {
			case "succeeded", "failed", "canceled":
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not finished after %s: %+v (%v)", id, timeout, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitModels polls model name's versions until there are at least n, or
// timeout passes; it returns the last list read.
func waitModels(ctx context.Context, t *testing.T, c *api.Client, name string, n int, timeout time.Duration) []api.ModelVersion {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		vs, err := c.Models(ctx, name)
		var se *api.StatusError
		if err != nil && !(errors.As(err, &se) && se.Status == 404) {
			t.Fatal(err)
		}
		if len(vs) >= n || time.Now().After(deadline) {
			return vs
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitFiring(ctx context.Context, t *testing.T, c *api.Client, trigger string, timeout time.Duration) api.Firing {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		fs, err := c.TriggerHistory(ctx, trigger)
		if err == nil && len(fs) > 1 {
			t.Fatalf("trigger %s fired %d times, want once: %+v", trigger, len(fs), fs)
		}
		if err == nil && len(fs) == 1 && (fs[0].State == "done" || fs[0].State == "failed") {
			return fs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("trigger %s: no finished firing after %s: %+v (%v)", trigger, timeout, fs, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
