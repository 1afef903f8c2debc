// Package e2e drives the real tailor binary: a server on a random loopback
// port, the CLI as child processes, and kill -9 of the server mid-run.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/tailortest"
)

var tailorBin string

func TestMain(m *testing.M) { os.Exit(tailortest.Main(m.Run, &tailorBin)) }

// server is a running `tailor server` child process.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string
	dataDir string
	logs    *bytes.Buffer
	done    chan error
}

func startServer(t *testing.T, dataDir string, extra ...string) *server {
	t.Helper()
	args := append([]string{"server", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--log-level", "debug", "--insecure-local"}, extra...)
	cmd := exec.Command(tailorBin, args...)
	s := &server{t: t, cmd: cmd, dataDir: dataDir, logs: &bytes.Buffer{}}
	cmd.Stderr = &syncWriter{w: s.logs}
	addr, done, err := tailortest.Start(cmd, 60*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, s.logs)
	}
	s.addr, s.done = addr, done
	t.Cleanup(func() { s.stop() })
	return s
}

// kill sends SIGKILL, as a crash or `kill -9` would.
func (s *server) kill() {
	s.t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.done <- nil
}

func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	tailortest.Stop(s.cmd, s.done, 10*time.Second)
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", s.logs)
	}
}

// tailor runs the CLI against the server and returns stdout; it fails the
// test on a non-zero exit.
func (s *server) tailor(args ...string) string {
	s.t.Helper()
	out, errOut, code := s.tailorCode(args...)
	if code != 0 {
		s.t.Fatalf("tailor %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (s *server) tailorCode(args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tailorBin, args...)
	cmd.Env = append(os.Environ(), "TAILOR_SERVER="+s.addr)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("tailor %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

func (s *server) tailorJSON(v any, args ...string) {
	s.t.Helper()
	out := s.tailor(append(args, "--output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		s.t.Fatalf("tailor %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
