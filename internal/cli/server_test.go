package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
)

// logBytes is the size of the request log's files on disk. The server
// writes a request's record after its answer, so retention may delete a
// segment between the listing and its stat: a deleted one holds nothing.
func (w *deployWorld) logBytes() int64 {
	w.t.Helper()
	files, err := filepath.Glob(filepath.Join(w.dir, "requests", "*.jsonl"))
	if err != nil {
		w.t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		st, err := os.Stat(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			w.t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// The request log's sample rate and retention, through the real server:
// a rate of 0 logs nothing (it logged everything), and a size bound holds
// while the server answers. Feedback reads the prediction store, not the
// log, so it works for a request whose record retention deleted; `deploy
// compare`, which reads the log, says what retention deleted.
func TestRequestLogSampleAndRetention(t *testing.T) {
	data := newDeployData(t)
	ctx := context.Background()

	t.Run("sample 0 logs none", func(t *testing.T) {
		none := 0.0
		w := openDeployWorld(t, data, func(o *app.Options) { o.RequestLogSampleRate = &none })
		before := len(w.records())
		var ids []string
		for i := range 20 {
			id, _ := w.classify("spam", deployInputs[i%len(deployInputs)], "")
			ids = append(ids, id)
		}
		if got := len(w.records()); got != before {
			t.Fatalf("--request-log-sample 0 logged %d requests", got-before)
		}
		if _, err := w.client.PostFeedback(ctx, api.Feedback{RequestID: ids[0], Label: "spam"}); err != nil {
			t.Fatalf("feedback on an unlogged request: %v", err)
		}
		w.close()
	})

	t.Run("max bytes", func(t *testing.T) {
		const maxBytes = 8 << 10
		w := openDeployWorld(t, data, func(o *app.Options) { o.RequestLogMaxBytes = maxBytes })
		w.mustCLI("deploy", "spam", "--alias", "champion", "--shadow", "spam@v3", "--reason", "retention")
		const n = 120
		var ids []string
		for i := range n {
			id, _ := w.classify("spam", deployInputs[i%len(deployInputs)], fmt.Sprint("user-", i))
			ids = append(ids, id)
			if got := w.logBytes(); got > maxBytes {
				t.Fatalf("after request %d the request log holds %d bytes, more than %d", i+1, got, maxBytes)
			}
		}
		recs := w.waitShadows(ids[n-5:])
		kept := map[string]bool{}
		for _, r := range recs {
			kept[r.RequestID] = true
		}
		if kept[ids[0]] || !kept[ids[n-1]] {
			t.Fatalf("the log kept the first request %v and the last %v; want the oldest deleted, the newest kept", kept[ids[0]], kept[ids[n-1]])
		}
		for _, id := range []string{ids[0], ids[n-1]} {
			if _, err := w.client.PostFeedback(ctx, api.Feedback{RequestID: id, Label: "ham"}); err != nil {
				t.Fatalf("feedback on %s (logged: %v): %v", id, kept[id], err)
			}
		}
		out := w.mustCLI("deploy", "compare", "spam")
		if !strings.Contains(out, "the request log's retention deleted the records before") {
			t.Fatalf("compare does not say what retention deleted:\n%s", out)
		}
		var cmp api.DeploymentComparison
		if err := json.Unmarshal([]byte(w.mustCLI("deploy", "compare", "spam", "--output", "json")), &cmp); err != nil {
			t.Fatal(err)
		}
		if cmp.PrunedBefore.IsZero() || cmp.Records == 0 || cmp.Records >= 2*n {
			t.Fatalf("compare: pruned_before %v, %d records of %d answers", cmp.PrunedBefore, cmp.Records, 2*n)
		}
	})
}

// Out-of-range request log and import flags are refused before anything opens, with
// the flag named.
func TestServerLimitFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"sample above 1", []string{"--request-log-sample", "2"}, "--request-log-sample 2 must be in [0, 1]"},
		{"sample negative", []string{"--request-log-sample", "-0.5"}, "--request-log-sample -0.5 must be in [0, 1]"},
		{"max bytes negative", []string{"--request-log-max-bytes", "-1"}, "--request-log-max-bytes and --request-log-max-age must not be negative"},
		{"max age negative", []string{"--request-log-max-age", "-1h"}, "--request-log-max-bytes and --request-log-max-age must not be negative"},
		{"import limit zero", []string{"--max-import-bytes", "0"}, "--max-import-bytes 0 must be positive"},
		{"insecure on all interfaces", []string{"--insecure-local", "--listen", ":7070"}, `--insecure-local: listen address ":7070" is not on loopback`},
		{"insecure on 0.0.0.0", []string{"--insecure-local", "--listen", "0.0.0.0:0"}, `listen address "0.0.0.0:0" is not on loopback`},
		{"insecure on a LAN address", []string{"--insecure-local", "--listen", "192.168.1.10:7070"}, "is not on loopback"},
		{"insecure on a host name", []string{"--insecure-local", "--listen", "example.com:7070"}, "is not on loopback"},
		{"burst zero", []string{"--rate-burst", "0"}, "--rate-burst 0 must be at least 1"},
		{"unknown executor", []string{"--executor", "nomad"}, `--executor "nomad": want local or kubernetes`},
		{"kubernetes without image", []string{"--executor", "kubernetes", "--worker-api", "http://tailor.example:7070"}, "needs --kube-image"},
		{"kubernetes without worker api", []string{"--executor", "kubernetes", "--kube-image", "tailor:1"}, `needs --worker-api, this server's http(s):// URL as the Jobs' pods reach it (got "")`},
		{"kubernetes with a bad worker api", []string{"--executor", "kubernetes", "--kube-image", "tailor:1", "--worker-api", "tailor:7070"}, `(got "tailor:7070")`},
		{"kube flags without kubernetes", []string{"--kube-image", "tailor:1"}, "need --executor kubernetes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var out, errOut strings.Builder
			code := Main(append([]string{"server", "--data-dir", dir}, c.args...), strings.NewReader(""), &out, &errOut)
			if code != ExitUsage || !strings.Contains(errOut.String(), c.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut.String(), ExitUsage, c.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("a refused server wrote %d entries into its data dir", len(ents))
			}
		})
	}
}

// The replica flags: a too short lease is a usage error; a bad bus or
// store address is refused by app.Open, before it creates anything, with
// the flag named.
func TestServerReplicaFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"lease too short", []string{"--lease-ttl", "100ms"}, "--lease-ttl 100ms must be at least 300ms", ExitUsage},
		{"bus without scheme", []string{"--bus", "127.0.0.1:4222"}, `--bus: bus address "127.0.0.1:4222"`, ExitInvalid},
		{"bus with credentials", []string{"--bus", "nats://u:p@nats-0:4222"}, "TAILOR_NATS_CREDS", ExitInvalid},
		{"store relative", []string{"--store", "sqlite://tailor.db"}, `--store: metadata store address "sqlite://tailor.db": host "tailor.db"; a SQLite file is on this machine (sqlite:///absolute/file.db)`, ExitInvalid},
		{"store unknown", []string{"--store", "mysql://db/tailor"}, `--store: metadata store address: unknown scheme "mysql"; want sqlite:///absolute/file.db or postgres://`, ExitInvalid},
		{"store without a database", []string{"--store", "postgres://tailor:s3cret@db"}, `--store: metadata store address "postgres://tailor@db" names no database`, ExitInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var out, errOut strings.Builder
			code := Main(append([]string{"server", "--data-dir", dir}, c.args...), strings.NewReader(""), &out, &errOut)
			if code != c.code || !strings.Contains(errOut.String(), c.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut.String(), c.code, c.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Fatalf("a refused server wrote %d entries into its data dir", len(ents))
			}
		})
	}
}
