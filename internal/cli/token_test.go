package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

func TestReadConfig(t *testing.T) {
	tests := []struct {
		file                   string
		token, server, project string
		err                    string
	}{
		{"good.conf", "tlr_0123456789abcdef_" + strings.Repeat("ab", 32), "10.0.0.5:7070", "blue", ""},
		{"no-equals.conf", "", "", "", "no-equals.conf, line 1: want key = value"},
		{"unknown-key.conf", "", "", "", `unknown-key.conf, line 2: unknown key "region"`},
		{"empty-value.conf", "", "", "", "empty-value.conf, line 1: want key = value"},
		{"missing.conf", "", "", "", "missing.conf: open"},
	}
	for _, tt := range tests {
		c, err := readConfig(filepath.Join("testdata", "config", tt.file), true)
		if tt.err != "" {
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %v, want %q", tt.file, err, tt.err)
			}
			continue
		}
		if err != nil || c.token != tt.token || c.server != tt.server || c.project != tt.project {
			t.Errorf("%s: %+v, %v", tt.file, c, err)
		}
	}
	// The default path may be absent.
	if c, err := readConfig(filepath.Join(t.TempDir(), "absent"), false); err != nil || c.token != "" {
		t.Errorf("an absent default config: %+v, %v", c, err)
	}
}

// FuzzReadConfig: any file content gives a config or an Invalid error
// naming the file, never a panic.
func FuzzReadConfig(f *testing.F) {
	for _, name := range []string{"good.conf", "no-equals.conf", "unknown-key.conf"} {
		b, err := os.ReadFile(filepath.Join("testdata", "config", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "config")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readConfig(path, true); err != nil && (!errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), path)) {
			t.Fatalf("%q: %v", b, err)
		}
	})
}

// The token and project commands against a real server with tokens: the
// secret alone on stdout, lists without secrets, revocation, a project
// with its creator's admin token, and the config file instead of
// TAILOR_TOKEN.
func TestTokenAndProjectCommands(t *testing.T) {
	w := openDeployWorld(t, t.TempDir())
	ctx := context.Background()
	secret := strings.TrimSpace(w.mustCLI("token", "create", "--principal", "bob", "--role", "operator", "--expires", "24h", "--note", "ci"))
	if !strings.HasPrefix(secret, "tlr_") || strings.Contains(secret, "\n") {
		t.Fatalf("token create printed %q, want the token alone", secret)
	}
	bob := api.NewClient(w.srv.URL, nil).WithToken(secret)
	if me, err := bob.WhoAmI(ctx); err != nil || me.Principal != "bob" || me.Roles["default"] != "operator" {
		t.Fatalf("whoami with the new token: %+v, %v", me, err)
	}
	list := w.mustCLI("token", "list")
	if !strings.Contains(list, "bob") || !strings.Contains(list, "operator") || !strings.Contains(list, "ci") || strings.Contains(list, secret[22:]) {
		t.Fatalf("token list:\n%s", list)
	}
	var ts []api.Token
	if err := json.Unmarshal([]byte(w.mustCLI("token", "list", "--output", "json")), &ts); err != nil || len(ts) != 2 {
		t.Fatalf("token list --output json: %+v, %v", ts, err)
	}
	// bob is an operator: no tokens for him to mint.
	t.Setenv("TAILOR_TOKEN", secret)
	if code, _, errOut := w.cli("token", "create", "--principal", "mallory", "--role", "admin"); code != ExitForbidden || !strings.Contains(errOut, `needs role admin in project "default"`) {
		t.Fatalf("an operator minting an admin token: %d %s", code, errOut)
	}
	// ... but he may revoke his own.
	id := secret[:len("tlr_")+16]
	if out := w.mustCLI("token", "revoke", id); !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %s", out)
	}
	if code, _, errOut := w.cli("token", "list"); code != ExitForbidden || !strings.Contains(errOut, "was revoked") {
		t.Fatalf("a revoked token: %d %s", code, errOut)
	}

	// Back to the tester (admin), through the config file this time.
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte("token = "+w.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TAILOR_TOKEN", "")
	t.Setenv("TAILOR_CONFIG", cfg)
	blue := strings.TrimSpace(w.mustCLI("project", "create", "blue"))
	if !strings.HasPrefix(blue, "tlr_") {
		t.Fatalf("project create printed %q", blue)
	}
	if out := w.mustCLI("project", "list"); !strings.Contains(out, "default") || strings.Contains(out, "blue") {
		t.Fatalf("the tester's projects (blue is not among them; its token is):\n%s", out)
	}
	t.Setenv("TAILOR_TOKEN", blue)
	if out := w.mustCLI("token", "whoami"); !strings.Contains(out, "project    blue") || !strings.Contains(out, "roles      blue=admin") {
		t.Fatalf("token whoami:\n%s", out)
	}
	// The creator's token for blue keeps the creating token's role in
	// default, so one token switches between them with --project.
	if out := w.mustCLI("project", "list"); !strings.Contains(out, "blue") || !strings.Contains(out, "admin") || !strings.Contains(out, "default") {
		t.Fatalf("the blue token's projects:\n%s", out)
	}
	if code, out, errOut := w.cli("token", "list", "--project", "default"); code != 0 || !strings.Contains(out, "tlr_") {
		t.Fatalf("blue's creator in the default project: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := w.cli("token", "list", "--project", "red"); code != ExitForbidden || !strings.Contains(errOut, `no role in project "red"`) {
		t.Fatalf("blue's creator in a project it has no role in: %d %s", code, errOut)
	}
	if code, _, errOut := w.cli("project", "create", "Bad Name"); code != ExitInvalid || !strings.Contains(errOut, "project") {
		t.Fatalf("a bad project name: %d %s", code, errOut)
	}
}

// TestServerBootstrapToken: the real server command on an empty data
// directory writes an admin token to bootstrap-token, mode 0600, prints
// the path and never the token, and refuses requests without it; a second
// start keeps the file as it is.
func TestServerBootstrapToken(t *testing.T) {
	dir := t.TempDir()
	start := func() (addr string, out, logs *strings.Builder, stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		out, logs = &strings.Builder{}, &strings.Builder{}
		e := &env{ctx: ctx, stdin: strings.NewReader(""), stdout: pw, stderr: &syncBuilder{b: logs}, getenv: func(string) string { return "" }}
		done := make(chan error, 1)
		go func() {
			done <- runServer(e, []string{"--data-dir", dir, "--listen", "127.0.0.1:0", "--serve-in-process"})
			pw.Close()
		}()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr = a
				break
			}
		}
		go io.Copy(io.Discard, pr)
		if addr == "" {
			cancel()
			t.Fatalf("the server did not start: %v\n%s%s", <-done, out, logs)
		}
		return addr, out, logs, func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("server: %v", err)
				}
			case <-time.After(time.Minute):
				t.Error("the server did not stop")
			}
		}
	}
	addr, out, logs, stop := start()
	path := filepath.Join(dir, "bootstrap-token")
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap-token: %v, mode %v; want 0600", err, st)
	}
	raw, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(raw))
	if !strings.Contains(out.String(), path) {
		t.Errorf("the server did not print where the token is:\n%s", out)
	}
	secret := token[len("tlr_")+17:]
	if strings.Contains(out.String(), secret) || strings.Contains(logs.String(), secret) {
		t.Errorf("the token's secret reached stdout or the log")
	}
	ctx := context.Background()
	var se *api.StatusError
	if _, err := api.NewClient(addr, nil).Runs(ctx, ""); !errors.As(err, &se) || se.Status != 401 {
		t.Errorf("no token: %v, want 401", err)
	}
	if me, err := api.NewClient(addr, nil).WithToken(token).WhoAmI(ctx); err != nil || me.Principal != "admin" || me.Roles["default"] != "admin" {
		t.Errorf("the bootstrap token: %+v, %v", me, err)
	}
	stop()
	_, out, _, stop = start()
	stop()
	if again, _ := os.ReadFile(path); string(again) != string(raw) || strings.Contains(out.String(), "bootstrap") {
		t.Errorf("a second start rewrote the bootstrap token or announced one:\n%s", out)
	}
}

// syncBuilder is a strings.Builder safe for the server's logger and the
// test to share.
type syncBuilder struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
