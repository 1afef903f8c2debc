package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
)

// lockedBuffer is a log destination the App's goroutines may write while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecretsStayOutOfLogsEventsAndHistory: a webhook's URL carries its
// token in the path and query (as Slack's and Discord's do), and clients
// send Authorization headers. Through the real App and HTTP server, with
// a webhook that fails and requests that fail, neither reaches the log
// (at debug level), any event, a trigger's firing history, an API error
// or the request log. The stored trigger spec is the one place the URL is
// kept (docs/security.md).
func TestSecretsStayOutOfLogsEventsAndHistory(t *testing.T) {
	const hookSecret, forged = "h00k-s3cr3t", "sk-b3ar3r-t0k3n"
	var logs lockedBuffer
	e := newEnv(t, app.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	e.start()
	ctx := context.Background()
	// A real token (its creation is logged and evented too) and a forged one.
	tok, err := e.app.Authority(auth.Options{}).CreateToken(ctx, auth.Local(), auth.NewToken{Principal: "ann", Project: "default",
		Roles: map[string]auth.Role{"default": auth.Operator}})
	if err != nil {
		t.Fatal(err)
	}
	bearer := tok.Secret.String()
	secret := bearer[len("tlr_")+17:] // what must stay unreadable; the id may be named
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer failing.Close()
	hook := failing.URL + "/services/" + hookSecret + "?token=" + hookSecret
	spec := "name: hook\non: {event: feedback, model: m}\ndo:\n  - webhook: {url: %q%s}\n"

	var seen []string // every text an outsider could read
	_, err = e.client.ApplyTrigger(ctx, "hook.yaml", []byte(fmt.Sprintf(spec, hook, "")))
	var se *api.StatusError
	if !errors.As(err, &se) || se.Err.Kind != "forbidden" {
		t.Fatalf("a loopback webhook without allow_private: %v, want forbidden", err)
	}
	seen = append(seen, err.Error())
	_, err = e.client.ApplyTrigger(ctx, "cred.yaml", []byte(fmt.Sprintf(strings.Replace(spec, "name: hook", "name: cred", 1), "https://bot:"+hookSecret+"@hooks.example.com/x", "")))
	if err == nil {
		t.Fatal("a webhook URL with credentials was accepted")
	}
	seen = append(seen, err.Error())
	if _, err := e.client.ApplyTrigger(ctx, "hook.yaml", []byte(fmt.Sprintf(spec, hook, ", allow_private: true"))); err != nil {
		t.Fatal(err)
	}
	e.label(0, 2)
	fs := e.waitFirings("hook", func(fs []api.Firing) bool { return terminal(fs, 1) })
	if fs[0].State != "failed" || !strings.Contains(fs[0].Error, "answered 502") {
		t.Fatalf("firing %+v, want failed with the webhook's answer", fs[0])
	}
	hist, _ := json.Marshal(fs)
	seen = append(seen, string(hist))

	// Requests carrying a bearer token, answered and refused, on the
	// inference and the control routes.
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/v1/classify", `{"model": "missing", "input": "x"}`},
		{"POST", "/v1/classify", `{"model": "missing", "input": "forged"}`},
		{"POST", "/v1/chat/completions", `{"model": "missing", "messages": [{"role": "user", "content": "hi"}]}`},
		{"POST", "/v1/completions", `{"model": "", "prompt": "x"}`},
		{"GET", "/v1/datasets", ""},
		{"GET", "/v1/nowhere", ""},
		{"POST", "/v1/datasets/d/versions?task=classify", "not json\n"},
		{"GET", "/metrics", ""},
	} {
		req, _ := http.NewRequest(r.method, e.url+r.path, strings.NewReader(r.body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		if strings.Contains(r.body, "forged") {
			req.Header.Set("Authorization", "Bearer "+forged)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		seen = append(seen, b.String())
	}

	if err := e.client.Events(ctx, 0, false, func(ev api.Event) error {
		raw, _ := json.Marshal(ev)
		seen = append(seen, string(raw))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(e.dataDir, "requests", "*.jsonl"))
	if len(files) == 0 {
		t.Fatal("no request log to check")
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		seen = append(seen, string(b))
	}
	seen = append(seen, logs.String())
	if !strings.Contains(logs.String(), "trigger firing failed") {
		t.Fatalf("the failed firing was not logged; the check would prove nothing:\n%s", logs.String())
	}
	for _, s := range seen {
		for _, secret := range []string{hookSecret, secret, forged} {
			if i := strings.Index(s, secret); i >= 0 {
				t.Fatalf("%q is readable: …%s…", secret, s[max(0, i-200):min(len(s), i+100)])
			}
		}
	}
}
