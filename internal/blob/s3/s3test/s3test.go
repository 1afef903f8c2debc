// Package s3test starts versitygw (github.com/versity/versitygw, Apache-2.0),
// a real S3 server, as a child process on 127.0.0.1 for tests, with its
// posix backend in a temp directory. The binary is built from the Go module
// proxy by scripts/versitygw.sh into $TAILOR_CACHE/versitygw-<version>
// (default $HOME/.cache/tailor) on first use — about two minutes cold,
// instant afterwards — so tests never skip for want of it.
//
// This package is for tests only and imports no Tailor package, so the s3
// package's own tests can use it.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Server is a running versitygw.
type Server struct {
	Endpoint  string // "http://127.0.0.1:PORT"
	AccessKey string
	SecretKey string
	Dir       string // the posix backend's root: one directory per bucket

	cmd    *exec.Cmd
	done   chan struct{}
	logMu  sync.Mutex
	logBuf bytes.Buffer
	client *minio.Client
}

// Binary builds versitygw if needed and returns its path.
func Binary() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("s3test: cannot locate the repository")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
	script := filepath.Join(root, "scripts", "versitygw.sh")
	// #nosec G204 -- test helper: runs the repository's own setup script
	cmd := exec.Command(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("s3test: %s: %v\n%s", script, err, stderr.String())
	}
	bin := strings.TrimSpace(string(out))
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("s3test: %s printed %q: %v", script, bin, err)
	}
	return bin, nil
}

// Start builds versitygw if needed, starts it on a free loopback port with
// a fresh directory under dir, and waits until it answers. Close stops it.
func Start(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a port taken between probe and bind: try another
		s, err := start(bin, dir)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(bin, dir string) (*Server, error) {
	root, err := os.MkdirTemp(dir, "versitygw-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
		AccessKey: "tailor-test",
		SecretKey: "tailor-test-secret-" + randomHex(8),
		Dir:       root,
		done:      make(chan struct{}),
	}
	// #nosec G204 -- test helper: starts the MinIO binary found by the test setup script, on loopback
	s.cmd = exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey,
		"--port", "127.0.0.1:"+strconv.Itoa(port), "--quiet", "--keep-alive", "posix", root)
	s.cmd.Stdout = (*logWriter)(s)
	s.cmd.Stderr = (*logWriter)(s)
	// The server dies with the test binary even if Close never runs.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("s3test: start %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	s.client, err = minio.New("127.0.0.1:"+strconv.Itoa(port), &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// waitReady polls until the server answers an authenticated request.
func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.client.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("s3test: versitygw exited before it was ready: %v\n%s", s.cmd.ProcessState, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("s3test: versitygw not ready after %s: %v\n%s", limit, err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NewBucket creates a bucket with a fresh name and returns the name.
func (s *Server) NewBucket(ctx context.Context) (string, error) {
	name := "tailor-" + randomHex(8)
	if err := s.client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		return "", fmt.Errorf("s3test: create bucket %s: %w", name, err)
	}
	return name, nil
}

// Path is where the posix backend keeps object key of bucket, so a test
// can damage a stored object behind the S3 API's back.
func (s *Server) Path(bucket, key string) string {
	return filepath.Join(s.Dir, bucket, filepath.FromSlash(key))
}

// Log returns what the server printed so far.
func (s *Server) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.logBuf.String()
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	_ = os.RemoveAll(s.Dir)
}

type logWriter Server

func (w *logWriter) Write(p []byte) (int, error) {
	w.logMu.Lock()
	defer w.logMu.Unlock()
	if w.logBuf.Len() < 1<<20 {
		w.logBuf.Write(p)
	}
	return len(p), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Counter is an http.RoundTripper that counts requests by a name the test
// chooses, for checking how a client talked to the server (multipart parts,
// copies) without a fake.
type Counter struct {
	Next  http.RoundTripper
	mu    sync.Mutex
	count map[string]int
}

// RoundTrip counts the request and sends it on.
func (c *Counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if c.count == nil {
		c.count = map[string]int{}
	}
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		c.count["copy"]++
	case r.Method == http.MethodPut && q.Has("partNumber"):
		c.count["upload-part"]++
	case r.Method == http.MethodPost && q.Has("uploads"):
		c.count["create-multipart"]++
	case r.Method == http.MethodPost && q.Has("uploadId"):
		c.count["complete-multipart"]++
	case r.Method == http.MethodPut:
		c.count["put"]++
	}
	c.mu.Unlock()
	next := c.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// Get returns how many requests of the kind were sent: "put",
// "create-multipart", "upload-part", "complete-multipart", "copy".
func (c *Counter) Get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count[kind]
}

// Reset zeroes the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count = nil
}
