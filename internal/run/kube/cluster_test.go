package kube_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/tailortest"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/blob/local"
	"github.com/tailor-ml/tailor/internal/run/kube"
	"github.com/tailor-ml/tailor/internal/run/kube/kubetest"
)

// The cluster test needs the binaries scripts/kube.sh builds (58
// minutes cold, then cached): it runs with TAILOR_KUBE=1, as `make
// test-kube` sets it. Without the switch it is skipped, and says so.
const kubeSwitch = "TAILOR_KUBE"

const namespace = "tailor"

// TestKubernetesJobs drives the real tailor binary as a server with
// --executor kubernetes against a real control plane and a KWOK node,
// whose pods the kubetest runner executes as local child processes:
// (a) a training run through a Job to succeeded, with progress and logs
// read through the API and its adapter in the blob store, and its Job and
// Secret cleaned up; (b) cancel deletes the Job; (c) the Job's pod deleted
// after a checkpoint: the run resumes from that checkpoint in a new Job
// (attempt 2) and succeeds; (d) likewise when someone deletes the Job;
// (e) a Job whose pod no node can hold fails the run, with the
// scheduler's message, after --kube-pending-timeout.
func TestKubernetesJobs(t *testing.T) {
	if os.Getenv(kubeSwitch) != "1" {
		t.Skipf("the Kubernetes cluster test runs with %s=1 (make test-kube builds the cluster with scripts/kube.sh and runs it)", kubeSwitch)
	}
	if m := kubetest.Missing(kubetest.CacheDir()); len(m) > 0 {
		t.Fatalf("%s=1 but %s lacks %v: run scripts/kube.sh (make test-kube does)", kubeSwitch, kubetest.CacheDir(), m)
	}
	ctx := context.Background()
	work := t.TempDir()
	bin, err := tailortest.Build(work)
	must(t, err)

	start := time.Now()
	cluster, err := kubetest.Start(ctx, kubetest.Options{Dir: filepath.Join(work, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Stop)
	t.Logf("control plane and KWOK node ready in %s", time.Since(start).Round(time.Millisecond))
	if err := cluster.CreateNamespace(ctx, namespace); err != nil {
		t.Fatal(err)
	}
	podLogs := filepath.Join(work, "pods")
	if err := os.MkdirAll(podLogs, 0o755); err != nil {
		t.Fatal(err)
	}
	runner := cluster.Run(kubetest.RunnerOptions{Commands: map[string]string{"tailor": bin}, Dir: podLogs,
		Env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "TMPDIR=" + work}})
	t.Cleanup(runner.Stop)

	addr := freeAddr(t)
	dataDir := filepath.Join(work, "data")
	srv := startServer(t, bin, dataDir, "--listen", addr, "--insecure-local", "--log-level", "debug",
		"--executor", "kubernetes", "--kube-config", cluster.Kubeconfig, "--kube-namespace", namespace,
		"--kube-image", "tailor:test", "--worker-api", "http://"+addr, "--kube-pending-timeout", "3s")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", srv.log())
			ents, _ := os.ReadDir(podLogs)
			for _, e := range ents {
				b, _ := os.ReadFile(filepath.Join(podLogs, e.Name()))
				t.Logf("pod %s:\n%s", e.Name(), tail(string(b), 3000))
			}
		}
	})

	records := filepath.Join(work, "mail.jsonl")
	must(t, os.WriteFile(records, []byte(tailortest.Corpus(0, 400)), 0o644))
	srv.tailor("dataset", "import", records, "--name", "mail", "--task", "classify")
	baseDir := filepath.Join(work, "tiny")
	must(t, tailortest.WriteBase(baseDir, tailortest.Corpus(0, 400), tailortest.Small))
	srv.tailor("base", "import", baseDir, "--name", "tiny")

	jobs := cluster.Client.BatchV1().Jobs(namespace)
	secrets := cluster.Client.CoreV1().Secrets(namespace)

	t.Run("a: run to success through a Job", func(t *testing.T) {
		srv.tailor("recipe", "apply", writeRecipe(t, work, "mail-short", 30, 10, 1))
		id := strings.TrimSpace(srv.tailor("run", "start", "mail-short"))
		r := waitRun(t, srv, id, func(r api.Run) bool { return r.State == "succeeded" })
		if r.Attempt != 1 || r.Step != 30 || r.TotalSteps != 30 || r.Result == "" {
			t.Fatalf("run %+v", r)
		}
		job := kube.JobName(id, 1)
		if !slices.Contains(runner.Started(), namespace+"/"+job) && !hasPrefix(runner.Started(), namespace+"/"+job+"-") {
			t.Fatalf("the runner started %v, not a pod of Job %s", runner.Started(), job)
		}
		logs := srv.tailor("run", "logs", id)
		for _, want := range []string{"step 30/30 loss", "checkpoint at step 10", "attempt 1 started", "succeeded: result " + r.Result} {
			if !strings.Contains(logs, want) {
				t.Fatalf("run logs lack %q:\n%s", want, logs)
			}
		}
		blobs, err := local.Open(filepath.Join(dataDir, "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		if rc, err := blobs.Open(ctx, r.Result); err != nil {
			t.Fatalf("adapter %s not in the blob store: %v", r.Result, err)
		} else {
			rc.Close()
		}
		// Cleaned up: the Job and its Secret are gone.
		waitGone(t, func() error { _, err := jobs.Get(ctx, job, metav1.GetOptions{}); return err })
		waitGone(t, func() error { _, err := secrets.Get(ctx, job, metav1.GetOptions{}); return err })
	})

	t.Run("b: cancel deletes the Job", func(t *testing.T) {
		srv.tailor("recipe", "apply", writeRecipe(t, work, "mail-cancel", 2000, 5, 2))
		id := strings.TrimSpace(srv.tailor("run", "start", "mail-cancel"))
		waitRun(t, srv, id, func(r api.Run) bool { return r.State == "running" && r.Step > 0 })
		job := kube.JobName(id, 1)
		if _, err := jobs.Get(ctx, job, metav1.GetOptions{}); err != nil {
			t.Fatalf("Job %s of the running run: %v", job, err)
		}
		var r api.Run
		srv.tailorJSON(&r, "run", "cancel", id)
		r = waitRun(t, srv, id, func(r api.Run) bool { return r.State == "canceled" })
		waitGone(t, func() error { _, err := jobs.Get(ctx, job, metav1.GetOptions{}); return err })
		waitGone(t, func() error {
			pods, err := cluster.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelRun + "=" + id})
			if err == nil && len(pods.Items) == 0 {
				return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, id)
			}
			return err
		})
	})

	t.Run("c: pod deleted after a checkpoint resumes in a new Job", func(t *testing.T) {
		srv.tailor("recipe", "apply", writeRecipe(t, work, "mail-lost", 1000, 5, 3))
		id := strings.TrimSpace(srv.tailor("run", "start", "mail-lost"))
		before := waitRun(t, srv, id, func(r api.Run) bool { return r.State == "running" && r.Checkpoint != "" })
		job1 := kube.JobName(id, 1)
		pods, err := cluster.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job1})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("pods of Job %s: %v %v", job1, pods, err)
		}
		if err := cluster.Client.CoreV1().Pods(namespace).Delete(ctx, pods.Items[0].Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		r := waitRun(t, srv, id, func(r api.Run) bool { return r.State == "succeeded" })
		job2 := kube.JobName(id, 2)
		if r.Attempt != 2 || !hasPrefix(runner.Started(), namespace+"/"+job2+"-") {
			t.Fatalf("run finished in attempt %d; pods started %v, want one of Job %s", r.Attempt, runner.Started(), job2)
		}
		logs := srv.tailor("run", "logs", id)
		m := regexp.MustCompile(`attempt 2 resuming from checkpoint at step (\d+)`).FindStringSubmatch(logs)
		if !strings.Contains(logs, "attempt 1 lost") || m == nil {
			t.Fatalf("run logs do not tell the loss and the resume:\n%s", logs)
		}
		if step, _ := strconv.Atoi(m[1]); int64(step) < before.Step || step >= 1000 {
			t.Fatalf("resumed at step %d; the checkpoint seen before the pod was deleted was at step %d", step, before.Step)
		}
		t.Logf("pod deleted after the checkpoint at step %d; %s; finished in Job %s", before.Step, m[0], job2)
		waitGone(t, func() error { _, err := jobs.Get(ctx, job1, metav1.GetOptions{}); return err })
		waitGone(t, func() error { _, err := jobs.Get(ctx, job2, metav1.GetOptions{}); return err })

		// Resuming gives the bytes an uninterrupted run gives (a forced
		// re-run of the same key, in a Job of its own).
		var forced api.Run
		srv.tailorJSON(&forced, "run", "start", "mail-lost", "--force", "--wait")
		if forced.State != "succeeded" || forced.Attempt != 1 || forced.Result != r.Result {
			t.Fatalf("uninterrupted run: %s in attempt %d, adapter %s; the resumed run's adapter %s", forced.State, forced.Attempt, forced.Result, r.Result)
		}
	})

	t.Run("d: Job deleted by someone else resumes in a new Job", func(t *testing.T) {
		srv.tailor("recipe", "apply", writeRecipe(t, work, "mail-deleted", 1000, 5, 4))
		id := strings.TrimSpace(srv.tailor("run", "start", "mail-deleted"))
		before := waitRun(t, srv, id, func(r api.Run) bool { return r.State == "running" && r.Checkpoint != "" })
		job1 := kube.JobName(id, 1)
		if err := jobs.Delete(ctx, job1, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)}); err != nil {
			t.Fatal(err)
		}
		r := waitRun(t, srv, id, func(r api.Run) bool { return r.State == "succeeded" })
		if r.Attempt != 2 || !hasPrefix(runner.Started(), namespace+"/"+kube.JobName(id, 2)+"-") {
			t.Fatalf("run finished in attempt %d; pods started %v", r.Attempt, runner.Started())
		}
		if logs := srv.tailor("run", "logs", id); !strings.Contains(logs, "attempt 1 lost") || !strings.Contains(logs, "attempt 2 resuming from checkpoint") {
			t.Fatalf("run logs do not tell the loss and the resume:\n%s", logs)
		}
		t.Logf("Job %s deleted after the checkpoint at step %d; finished in attempt 2", job1, before.Step)
	})

	t.Run("e: a pod no node fits fails the run with the scheduler's reason", func(t *testing.T) {
		path := writeRecipe(t, work, "mail-huge", 30, 10, 5)
		src, err := os.ReadFile(path)
		must(t, err)
		must(t, os.WriteFile(path, []byte(strings.Replace(string(src), "cpu: 500m", `cpu: "64"`, 1)), 0o644)) // the node has 32
		srv.tailor("recipe", "apply", path)
		id := strings.TrimSpace(srv.tailor("run", "start", "mail-huge"))
		r := waitRun(t, srv, id, func(r api.Run) bool { return r.State == "failed" })
		job := kube.JobName(id, 1)
		if r.Attempt != 1 || !strings.Contains(r.Error, "could not be scheduled for 3s") || !strings.Contains(r.Error, "Insufficient cpu") {
			t.Fatalf("run %s in attempt %d: %q; want the scheduler's reason after --kube-pending-timeout", r.State, r.Attempt, r.Error)
		}
		if hasPrefix(runner.Started(), namespace+"/"+job+"-") {
			t.Fatalf("the runner started a pod of Job %s, which no node fits", job)
		}
		waitGone(t, func() error { _, err := jobs.Get(ctx, job, metav1.GetOptions{}); return err })
		t.Logf("run failed: %s", r.Error)
	})

	// No worker credential reached the server's log, its events or its
	// audit log (they never hold one; the Secret did).
	for what, text := range map[string]string{"server log": srv.log(), "events": srv.tailor("events", "--output", "json"),
		"audit log": srv.tailor("audit", "export")} {
		if strings.Contains(text, "tlw_") {
			t.Errorf("the %s holds a worker credential", what)
		}
		if len(text) < 100 {
			t.Errorf("the %s is nearly empty (%d bytes): the check above proves nothing", what, len(text))
		}
	}
}

func ptr[T any](v T) *T { return &v }

func hasPrefix(list []string, prefix string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

func waitGone(t *testing.T, get func() error) {
	t.Helper()
	var err error
	for i := 0; i < 600; i++ {
		if err = get(); apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("still there after 60 s (last error %v)", err)
}

func waitRun(t *testing.T, srv *server, id string, ok func(api.Run) bool) api.Run {
	t.Helper()
	deadline := time.Now().Add(8 * time.Minute)
	for time.Now().Before(deadline) {
		var r api.Run
		srv.tailorJSON(&r, "run", "show", id)
		if ok(r) {
			return r
		}
		if r.State == "failed" || (r.State == "canceled" && !ok(r)) {
			t.Fatalf("run %s %s: %s", id, r.State, r.Error)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("run %s: not there within 8 minutes", id)
	return api.Run{}
}

func writeRecipe(t *testing.T, dir, name string, steps, every, seed int) string {
	t.Helper()
	src := fmt.Sprintf(`name: %s
task: classify
base: tiny
data:
  dataset: mail
method:
  kind: lora
  lora:
    rank: 4
    alpha: 8
    targets: [q_proj, v_proj]
train:
  max_steps: %d
  batch_size: 8
  learning_rate: 0.003
  checkpoint_every: %d
  max_seq_len: 32
seed: %d
region: local
resources:
  cpu: 500m
  memory: 512Mi
`, name, steps, every, seed)
	p := filepath.Join(dir, name+".yaml")
	must(t, os.WriteFile(p, []byte(src), 0o644))
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// server is a running `tailor server` child process.
type server struct {
	t    *testing.T
	bin  string
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan error
}

func (s *server) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.Write(p)
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

func startServer(t *testing.T, bin, dataDir string, extra ...string) *server {
	t.Helper()
	// #nosec G204 -- the binary this test built
	cmd := exec.Command(bin, append([]string{"server", "--data-dir", dataDir}, extra...)...)
	s := &server{t: t, bin: bin, cmd: cmd}
	cmd.Stderr = s
	addr, done, err := tailortest.Start(cmd, 60*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, s.log())
	}
	s.addr, s.done = addr, done
	t.Cleanup(func() { tailortest.Stop(cmd, s.done, 15*time.Second) })
	return s
}

func (s *server) tailor(args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// #nosec G204 -- the binary this test built
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), "TAILOR_SERVER="+s.addr)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("tailor %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String()
}

func (s *server) tailorJSON(v any, args ...string) {
	s.t.Helper()
	out := s.tailor(append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		s.t.Fatalf("tailor %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}
