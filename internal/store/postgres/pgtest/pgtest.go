// Package pgtest starts a real PostgreSQL server for tests: initdb into a
// temporary directory, then `postgres` as a child process listening on
// 127.0.0.1 on a free port (its socket in the same directory, fsync off),
// about 3 s on a busy machine. Each test then gets a fresh database of its
// own (CREATE DATABASE, milliseconds). One server per test binary is the
// intended use:
//
//	var pg *pgtest.Server
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }
//
// When the PostgreSQL binaries are missing, Binaries installs Debian's
// postgresql-15 package with scripts/deps.sh servers, so tests never skip
// for want of them; when that fails too the error says how to install it.
// initdb and postgres refuse to run as root: as root the server runs as the
// postgres user.
//
// This package is for tests only and imports no Tailor package.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL server.
type Server struct {
	Dir  string // data directory and socket directory's parent
	Port int
	Bin  string // the directory of initdb and postgres

	cmd  *exec.Cmd
	done chan struct{}
	log  *syncBuffer
	next atomic.Int64
}

const installHint = "install PostgreSQL 15 (Debian: apt-get install postgresql-15, or scripts/deps.sh servers) so that initdb and postgres are on PATH or in /usr/lib/postgresql/15/bin"

// Binaries returns the directory that holds initdb and postgres: PATH
// first, then /usr/lib/postgresql/*/bin; when neither has them it runs
// scripts/deps.sh servers and looks again.
func Binaries() (string, error) {
	if dir, ok := findBinaries(); ok {
		return dir, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("pgtest: cannot locate the repository; " + installHint)
	}
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "scripts", "deps.sh")
	// #nosec G204 -- test helper: runs the repository's own setup script
	out, err := exec.Command(script, "servers").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("pgtest: PostgreSQL is not installed and %s servers failed: %v\n%s\n%s", script, err, out, installHint)
	}
	if dir, ok := findBinaries(); ok {
		return dir, nil
	}
	return "", fmt.Errorf("pgtest: %s servers ran but initdb and postgres are still missing; %s\n%s", script, installHint, out)
}

func findBinaries() (string, bool) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := exec.LookPath("postgres"); err == nil {
			return dir, true
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- { // the newest version first
		if isFile(filepath.Join(dirs[i], "initdb")) && isFile(filepath.Join(dirs[i], "postgres")) {
			return dirs[i], true
		}
	}
	return "", false
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// Start initialises a cluster in a new temporary directory and starts a
// server on it. Close stops it and removes the directory.
func Start() (*Server, error) {
	bin, err := Binaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Bin: bin, log: &syncBuffer{}}
	cred, err := credential(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	// #nosec G204 -- test helper: the PostgreSQL binaries found above, with fixed arguments
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
		"--no-sync", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	for attempt := 0; ; attempt++ {
		err = s.start(data, cred)
		if err == nil || attempt == 4 {
			break
		}
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// credential returns the user to run PostgreSQL as (postgres when this
// process is root, else nil) and gives it dir.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, PostgreSQL must run as another user and there is no postgres user: %v; %s", err, installHint)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: postgres user: %w", err)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return nil, fmt.Errorf("pgtest: give %s to postgres: %w", dir, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort returns a loopback port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs postgres on a free port and waits until it accepts clients.
func (s *Server) start(data string, cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Port = port
	s.log.Reset()
	// #nosec G204 -- test helper: the PostgreSQL binary found above, on loopback
	s.cmd = exec.Command(filepath.Join(s.Bin, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", s.Dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200")
	// The server dies with the test binary even if Close never runs.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		cancel()
		if err == nil {
			_ = c.Close(context.Background())
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("pgtest: postgres exited: %v\n%s", s.cmd.ProcessState, s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("pgtest: postgres not accepting connections after 60s: %v\n%s", err, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL returns the connection URL of database db as the postgres superuser.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// CreateDatabase creates a new, empty database and returns its URL.
func (s *Server) CreateDatabase() (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.next.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: connect: %w", err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// Database creates a fresh database for t and returns its URL; the test
// fails when it cannot.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	url, err := s.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// Log returns what the server printed.
func (s *Server) Log() string { return s.log.String() }

func (s *Server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Close stops the server (fast shutdown) and removes its directory.
func (s *Server) Close() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.kill()
		}
	}
	_ = os.RemoveAll(s.Dir)
}

// Main starts a server into *srv, runs the tests and stops it; it returns
// the exit code for os.Exit. A server that does not start fails the
// binary with the reason.
func Main(m *testing.M, srv **Server) int {
	s, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*srv = s
	defer s.Close()
	return m.Run()
}

// syncBuffer is a bytes.Buffer for two writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}
