// Package natstest starts real NATS servers with JetStream on 127.0.0.1 for
// tests: in this process (github.com/nats-io/nats-server/v2, ready in tens
// of milliseconds), or as a `nats-server` child process. When the binary is
// not on PATH, Process installs Debian's nats-server package with
// scripts/deps.sh servers, so tests never skip for want of it.
//
// This package is for tests only and imports no Tailor package.
package natstest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a running NATS server.
type Server struct {
	URL     string // "nats://127.0.0.1:PORT"
	Dir     string // JetStream's store directory
	Version string // the server's version, as it reports it

	embedded *server.Server

	bin    string
	port   int
	cmd    *exec.Cmd
	done   chan struct{}
	logMu  sync.Mutex
	logBuf bytes.Buffer
}

// Embedded starts a server in this process with JetStream storing under
// dir, on a random loopback port.
func Embedded(dir string) (*Server, error) {
	s, err := server.NewServer(&server.Options{
		ServerName: "tailor-test",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("natstest: embedded server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("natstest: embedded server not ready after 30s")
	}
	return &Server{URL: s.ClientURL(), Dir: dir, Version: server.VERSION, embedded: s}, nil
}

// Binary returns the path of nats-server, installing Debian's package
// through scripts/deps.sh servers when it is not on PATH.
func Binary() (string, error) {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("natstest: cannot locate the repository")
	}
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "scripts", "deps.sh")
	// #nosec G204 -- test helper: runs the repository's own setup script
	cmd := exec.Command(script, "servers")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("natstest: nats-server is not on PATH and %s servers failed: %v\n%s", script, err, out)
	}
	p, err := exec.LookPath("nats-server")
	if err != nil {
		return "", fmt.Errorf("natstest: %s servers ran but nats-server is still not on PATH\n%s", script, out)
	}
	return p, nil
}

// Process starts `nats-server -js` as a child process on a random loopback
// port, storing under dir, and waits until it accepts clients.
func Process(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, bin: bin}
	if err := s.start(-1); err != nil {
		return nil, err
	}
	return s, nil
}

var listening = regexp.MustCompile(`Listening for client connections on [^\s]*:(\d+)`)
var version = regexp.MustCompile(`Version:\s+(\S+)`)

// start runs the binary on port (-1: a random one) and waits for it.
func (s *Server) start(port int) error {
	s.logMu.Lock()
	s.logBuf.Reset()
	s.logMu.Unlock()
	// #nosec G204 -- test helper: starts the nats-server binary found by the setup script, on loopback
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", s.Dir)
	// The server dies with the test binary even if Close never runs.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("natstest: start %s: %w", s.bin, err)
	}
	s.done = make(chan struct{})
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			s.logMu.Lock()
			if s.logBuf.Len() < 1<<20 {
				s.logBuf.WriteString(line + "\n")
			}
			s.logMu.Unlock()
			if m := version.FindStringSubmatch(line); m != nil && s.Version == "" {
				s.Version = m[1]
			}
			if m := listening.FindStringSubmatch(line); m != nil && !sent {
				p, _ := strconv.Atoi(m[1])
				ready <- p
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	select {
	case p := <-ready:
		s.port = p
		s.URL = "nats://127.0.0.1:" + strconv.Itoa(p)
	case <-s.done:
		return fmt.Errorf("natstest: nats-server exited: %v\n%s", s.cmd.ProcessState, s.Log())
	case <-time.After(30 * time.Second):
		s.Kill()
		return fmt.Errorf("natstest: nats-server not listening after 30s\n%s", s.Log())
	}
	// "Server is ready" follows the listener line once JetStream is up.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.Log(), "Server is ready") {
		select {
		case <-s.done:
			return fmt.Errorf("natstest: nats-server exited: %v\n%s", s.cmd.ProcessState, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("natstest: nats-server not ready after 30s\n%s", s.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// Kill stops a process server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Restart starts a killed process server again on the same port and
// directory, so clients reconnect to it and find its streams.
func (s *Server) Restart() error {
	if s.embedded != nil {
		return errors.New("natstest: Restart is for process servers")
	}
	var err error
	for attempt := 0; attempt < 50; attempt++ { // the old socket may linger briefly
		if err = s.start(s.port); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Log returns what a process server printed since it last started.
func (s *Server) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.logBuf.String()
}

// Close stops the server.
func (s *Server) Close() {
	if s.embedded != nil {
		s.embedded.Shutdown()
		s.embedded.WaitForShutdown()
		return
	}
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.Kill()
		}
	}
}
