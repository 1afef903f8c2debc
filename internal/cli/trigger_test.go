package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"net/http/httptest"

	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
)

// The trigger subcommands against a real server: apply (twice: the second
// is unchanged), list, show, history, and the exit code of a bad spec and
// of an unknown name.
func TestTriggerCommands(t *testing.T) {
	a, err := app.Open(app.Options{DataDir: t.TempDir(), EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Auth: a.Authority(auth.Options{InsecureLocal: true}), Service: a}))
	defer func() {
		srv.Close()
		a.Close()
	}()
	dir := t.TempDir()
	good := filepath.Join(dir, "hook.yaml")
	if err := os.WriteFile(good, []byte("name: hook\non: {event: feedback}\ndo:\n  - webhook: {url: \"https://hooks.example.com/x\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: bad\non: {event: feedback}\ndo:\n  - promote_if_pass: {alias: champion}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(append(args, "--server", srv.URL), strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	tests := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"trigger", "apply", good}, ExitOK, "", "trigger hook v1: created"},
		{[]string{"trigger", "apply", good}, ExitOK, "", "trigger hook v1: unchanged"},
		{[]string{"trigger", "apply", bad}, ExitInvalid, "", "bad.yaml:4: do[0].promote_if_pass"},
		{[]string{"trigger", "list"}, ExitOK, "hook  v1", ""},
		{[]string{"trigger", "show", "hook"}, ExitOK, `"event": "feedback"`, ""},
		{[]string{"trigger", "history", "hook"}, ExitOK, "EVENT", ""},
		{[]string{"trigger", "history", "nope"}, ExitNotFound, "", "nope"},
	}
	for _, tc := range tests {
		code, out, errOut := run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
			t.Errorf("tailor %s = %d\nstdout %q\nstderr %q\nwant %d, %q, %q", strings.Join(tc.args, " "), code, out, errOut, tc.code, tc.out, tc.err)
		}
	}
}
