package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
)

// serveEnv is main_test.go's: it makes a child of the test binary a
// serving process.
const serveEnv = "TAILOR_APP_TEST_SERVE"

// TestServingInChildProcess: an app with a serve command answers through a
// real serving process exactly what the in-process engine answers, and its
// /metrics report that process.
func TestServingInChildProcess(t *testing.T) {
	baseDir := t.TempDir()
	writeTinyBase(t, baseDir)
	answer := func(opts app.Options) (string, string) {
		opts.DataDir, opts.EngineVersion, opts.WorkerCommand = t.TempDir(), "test-engine", []string{"/bin/false"}
		a, err := app.Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(httpapi.New(httpapi.Options{Auth: a.Authority(auth.Options{InsecureLocal: true}), Service: a, Inference: a.Inference()}))
		defer func() {
			srv.Close()
			a.Close()
		}()
		e := &env{t: t, app: a, client: api.NewClient(srv.URL, nil), dataDir: opts.DataDir}
		if _, err := importBaseDir(e, "tiny", baseDir, nil); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"model": "tiny", "prompt": "the quick brown", "max_tokens": 5, "temperature": 0})
		resp, err := http.Post(srv.URL+"/v1/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("completion: %d %s", resp.StatusCode, out)
		}
		var c struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(out, &c); err != nil || len(c.Choices) != 1 {
			t.Fatalf("completion %s: %v", out, err)
		}
		resp, err = http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return c.Choices[0].Text, string(metrics)
	}
	inProc, _ := answer(app.Options{})
	child, metrics := answer(app.Options{ServeCommand: []string{"/usr/bin/env", serveEnv + "=1", os.Args[0]}, ServeBaseBudgetBytes: 1 << 30})
	if child != inProc {
		t.Fatalf("through the serving process %q, in process %q", child, inProc)
	}
	if strings.Contains(metrics, "tailor_serve_engine_resident_bytes 0\n") || !strings.Contains(metrics, "tailor_serve_loaded_bases 1\n") ||
		!strings.Contains(metrics, "tailor_serve_base_budget_bytes 1073741824\n") {
		t.Fatalf("/metrics does not describe the serving process:\n%s", metrics)
	}
}
