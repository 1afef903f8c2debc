package replicas

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/tailortest"

	"github.com/tailor-ml/tailor/api"
)

var tailorBin string

func TestMain(m *testing.M) { os.Exit(tailortest.Main(m.Run, &tailorBin)) }

// replica is one `tailor server` child process with its own data dir,
// sharing the cluster's store, blob store and bus. It keeps its name and
// port across restarts.
type replica struct {
	t       testing.TB
	name    string
	dataDir string
	shared  []string // --store, --blob, --bus, --lease-ttl flags
	env     []string // every start's environment (S3 credentials)
	// own gives the flags that name the replica's own address
	// (--worker-api of a Kubernetes executor); nil: none.
	own  func(addr string) []string
	logs *tailortest.Log

	mu   sync.Mutex
	addr string
	cmd  *exec.Cmd
	done chan error
}

func newReplica(t testing.TB, name string, c setup) *replica {
	r := &replica{t: t, name: name, dataDir: filepath.Join(t.TempDir(), name), shared: c.shared, env: c.env, own: c.own,
		logs: &tailortest.Log{Max: 1 << 20}}
	if r.own != nil {
		// Its address is known before it starts, so its flags can name it.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.addr = ln.Addr().String()
		_ = ln.Close()
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("replica %s log (tail):\n%s", r.name, r.logs.Tail(12<<10))
		}
	})
	return r
}

// start runs the server with env added to its environment and waits
// until it listens.
func (r *replica) start(env ...string) error {
	listen := r.addr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	var lastErr error
	for try := 0; try < 20; try++ { // a restart may find the port briefly held
		if lastErr = r.spawn(listen, env); lastErr == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return lastErr
}

func (r *replica) spawn(listen string, env []string) error {
	args := append([]string{"server", "--data-dir", r.dataDir, "--listen", listen, "--log-level", "info", "--insecure-local",
		"--replica", r.name}, r.shared...)
	if r.own != nil {
		args = append(args, r.own(listen)...)
	}
	cmd := exec.Command(tailorBin, args...)
	cmd.Env = append(append(os.Environ(), r.env...), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = r.logs
	fmt.Fprintf(r.logs, "---- %s: start %s (env %v) ----\n", time.Now().Format(time.RFC3339Nano), r.name, env)
	addr, done, err := tailortest.Start(cmd, 2*time.Minute)
	if err != nil {
		return fmt.Errorf("replica %s: %v\n%s", r.name, err, r.logs.Tail(4096))
	}
	r.mu.Lock()
	r.addr, r.cmd, r.done = addr, cmd, done
	r.mu.Unlock()
	return nil
}

// stop ends the server with SIGTERM, as an operator would (it releases
// the lease if it leads).
func (r *replica) stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	tailortest.Stop(cmd, done, 30*time.Second)
}

// exited waits up to timeout for the process to die by itself (at a
// failpoint, by SIGKILL on itself) and returns when it was seen dead.
func (r *replica) exited(timeout time.Duration) (time.Time, error) {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	select {
	case err := <-done:
		at := time.Now()
		r.mu.Lock()
		r.cmd = nil
		r.mu.Unlock()
		fmt.Fprintf(r.logs, "---- %s: %s died (%v) ----\n", at.Format(time.RFC3339Nano), r.name, err)
		return at, nil
	case <-time.After(timeout):
		return time.Time{}, fmt.Errorf("replica %s did not die within %s\n%s", r.name, timeout, r.logs.Tail(4096))
	}
}

func (r *replica) url() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "http://" + r.addr
}

func (r *replica) client() *api.Client { return api.NewClient(r.url(), nil) }

// waitLeading polls the replica's health until it says it leads, and
// returns when it first did.
func (r *replica) waitLeading(ctx context.Context, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	c := r.client()
	var last api.Health
	for time.Now().Before(deadline) {
		h, err := c.HealthStatus(ctx)
		if err == nil && h.Leading {
			return time.Now(), nil
		}
		last = h
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("replica %s not leading after %s (health %+v)", r.name, timeout, last)
}
