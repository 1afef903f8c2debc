// Package reference finds the independent tools that tests compare Tailor
// against or drive it with: Python modules (torch, numpy, scipy, sklearn),
// Node.js with npm, and programs such as Debian's chromium. A test names what it needs; when it is missing the test skips with
// the reason, or, under TAILOR_REFERENCES=require (which `make test` sets),
// fails, so a broken install can never read as a pass.
//
// Each check that finds its tool appends "NAME<TAB>TEST" to the file named
// by TAILOR_REFERENCES_LOG, when set, so the test log can say which
// references ran (scripts/references-summary.sh prints it).
//
// TAILOR_SKIP_NPM=1 skips the npm references outside require mode.
//
// This package imports only the standard library.
package reference

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// PythonPath is the interpreter whose Debian packages are the references.
const PythonPath = "/usr/bin/python3"

// Required reports whether missing references fail instead of skip.
func Required() bool { return os.Getenv("TAILOR_REFERENCES") == "require" }

var (
	mu      sync.Mutex
	checked = map[string]error{} // memo per process: "python:torch" → import error
)

// Python returns the reference interpreter after checking that it imports
// every module; otherwise it skips or fails t (see the package comment).
func Python(t testing.TB, modules ...string) string {
	t.Helper()
	for _, m := range modules {
		err := probe("python:"+m, func() error {
			// #nosec G204 -- test-only reference probe: the configured python with a module name from code, no shell
			out, err := exec.Command(PythonPath, "-c", "import "+m).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s -c 'import %s': %v: %s", PythonPath, m, err, strings.TrimSpace(lastLine(out)))
			}
			return nil
		})
		missing(t, m, err, "install the Debian package python3-"+m+" (scripts/deps.sh does)")
		ran(t, m)
	}
	return PythonPath
}

// Node checks that node and npm are on PATH; otherwise it skips or fails t.
// what names the npm reference (e.g. "openai", "node-llama-cpp") for the log.
func Node(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("TAILOR_SKIP_NPM") == "1" && !Required() {
		t.Skipf("TAILOR_SKIP_NPM=1: skipping the %s reference", what)
	}
	for _, bin := range []string{"node", "npm"} {
		err := probe("bin:"+bin, func() error {
			_, err := exec.LookPath(bin)
			return err
		})
		missing(t, what, err, "install nodejs and npm (scripts/deps.sh does)")
	}
	ran(t, "npm:"+what)
}

// Program returns the path of an executable the test drives, such as
// Debian's chromium, found on PATH; when it is missing it skips or fails t
// (see the package comment). fix says how to install it.
func Program(t testing.TB, name, fix string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	missing(t, name, err, fix)
	ran(t, name)
	return path
}

func probe(key string, fn func() error) error {
	mu.Lock()
	defer mu.Unlock()
	if err, ok := checked[key]; ok {
		return err
	}
	err := fn()
	checked[key] = err
	return err
}

func missing(t testing.TB, what string, err error, fix string) {
	t.Helper()
	if err == nil {
		return
	}
	if Required() {
		t.Fatalf("reference %s is missing (TAILOR_REFERENCES=require): %v; %s", what, err, fix)
	}
	t.Skipf("reference %s is missing: %v; %s (TAILOR_REFERENCES=require turns this skip into a failure)", what, err, fix)
}

// ran records that t compares against reference name.
func ran(t testing.TB, name string) {
	t.Helper()
	t.Logf("reference: %s", name)
	path := os.Getenv("TAILOR_REFERENCES_LOG")
	if path == "" {
		return
	}
	// #nosec G302 G304 G703 -- test-only: the reference log path is set by make test (TAILOR_REFERENCES_LOG)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("reference log: %v", err)
	}
	defer f.Close()
	// One short write per line: O_APPEND keeps lines whole across processes.
	if _, err := fmt.Fprintf(f, "%s\t%s\n", name, t.Name()); err != nil {
		t.Fatalf("reference log: %v", err)
	}
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// OpenAI returns the install prefix of the official openai npm package at
// the version pinned in dir/package.json (scripts/openai), installing it
// into the cache ($TAILOR_CACHE, else ~/.cache/tailor) on first use; it
// skips or fails t without node and npm (see Node).
func OpenAI(t testing.TB, dir string) string {
	t.Helper()
	Node(t, "openai")
	raw, err := os.ReadFile(filepath.Join(dir, "package.json")) // #nosec G304 -- test-only: the repository's pinned package.json
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Dependencies map[string]string }
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatalf("%s/package.json: %v", dir, err)
	}
	version := pkg.Dependencies["openai"]
	cache := os.Getenv("TAILOR_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache", "tailor")
	}
	prefix := filepath.Join(cache, "openai-"+version)
	installed := filepath.Join(prefix, "node_modules", "openai", "package.json")
	// #nosec G304 G703 -- test-only: the cache directory the test runner names ($TAILOR_CACHE or home)
	if b, err := os.ReadFile(installed); err == nil && strings.Contains(string(b), `"version": "`+version+`"`) {
		return prefix
	}
	// #nosec G301 G703 -- test-only: the cache directory the test runner names ($TAILOR_CACHE or home)
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	// #nosec G204 G702 -- test-only: npm, no shell, the pinned version from the repository, into the runner's cache
	cmd := exec.Command("npm", "install", "--prefix", prefix, "--no-audit", "--no-fund", "--no-save", "openai@"+version)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install openai@%s into %s: %v\n%s\n(needs the npm registry on first run)", version, prefix, err, out)
	}
	return prefix
}
