package history

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/tailortest"
)

var tailorBin string

func TestMain(m *testing.M) {
	code := tailortest.Main(m.Run, &tailorBin)
	if templateDir != "" {
		os.RemoveAll(filepath.Dir(templateDir))
	}
	os.Exit(code)
}

// server is a `tailor server` child process that can be killed with
// SIGKILL and restarted on the same data dir and port.
type server struct {
	t       testing.TB
	dataDir string
	logs    *tailortest.Log
	env     []string // added to the environment of the next incarnations

	mu    sync.Mutex
	addr  string // host:port; fixed by the first start
	cmd   *exec.Cmd
	done  chan error
	up    chan struct{} // closed while an incarnation is listening
	Kills int
}

// startServer starts a server on dataDir and a free loopback port.
func startServer(t testing.TB, dataDir string, env ...string) *server {
	t.Helper()
	s := &server{t: t, dataDir: dataDir, logs: &tailortest.Log{Max: 1 << 20}, up: make(chan struct{}), env: env}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() error {
	listen := s.addr
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	var lastErr error
	// A restart may find the port briefly held; try a few times.
	for try := 0; try < 20; try++ {
		addr, err := s.spawn(listen)
		if err == nil {
			s.mu.Lock()
			s.addr = addr
			close(s.up)
			s.mu.Unlock()
			return nil
		}
		lastErr = err
		time.Sleep(250 * time.Millisecond)
	}
	return lastErr
}

func (s *server) spawn(listen string) (string, error) {
	cmd := exec.Command(tailorBin, "server", "--data-dir", s.dataDir, "--listen", listen, "--log-level", "info", "--insecure-local")
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stderr = s.logs
	addr, done, err := tailortest.Start(cmd, 2*time.Minute)
	if err != nil {
		return "", fmt.Errorf("%v\n%s", err, s.logs.Tail(4096))
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return addr, nil
}

// Addr is the server's host:port; it stays the same across restarts.
func (s *server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ready returns a channel that is closed while the server listens.
func (s *server) ready() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// killRestart sends SIGKILL, as a crash or `kill -9` would, waits for the
// process to die, and starts a new one on the same data dir and port.
func (s *server) killRestart() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.up = make(chan struct{})
	s.Kills++
	s.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	fmt.Fprintf(s.logs, "---- killed with SIGKILL (kill %d); restarting ----\n", s.Kills)
	if err := s.start(); err != nil {
		// Release the clients waiting for the server: their operations
		// fail from now on, and the test with them.
		s.mu.Lock()
		close(s.up)
		s.mu.Unlock()
		return err
	}
	return nil
}

// restartAfterCrash waits up to timeout for the server to die by itself
// (at a failpoint), then starts it again with env in its environment. It
// reports how the process ended.
func (s *server) restartAfterCrash(timeout time.Duration, env ...string) (string, error) {
	s.mu.Lock()
	done := s.done
	s.up = make(chan struct{})
	s.mu.Unlock()
	var how string
	select {
	case err := <-done:
		how = fmt.Sprint(err)
	case <-time.After(timeout):
		return "", fmt.Errorf("the server did not crash within %s\n%s", timeout, s.logs.Tail(4096))
	}
	s.mu.Lock()
	s.env = env
	s.Kills++
	s.mu.Unlock()
	fmt.Fprintf(s.logs, "---- died at a failpoint (%s); restarting ----\n", how)
	return how, s.start()
}

// stop ends the server with SIGTERM, as an operator would.
func (s *server) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	tailortest.Stop(cmd, done, 30*time.Second)
	if s.t.Failed() {
		s.t.Logf("server log (tail):\n%s", s.logs.Tail(8<<10))
	}
}
