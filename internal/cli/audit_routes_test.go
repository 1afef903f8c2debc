package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/store"
)

// auditExempt are the state-changing routes that write no audit entry,
// each with why. A route the server registers that is neither here nor in
// the test's steps fails TestEveryStateChangingRouteIsAudited.
var auditExempt = map[string]string{
	"POST /v1/fsck":             "a read-only check: it re-hashes blobs and reports, changing nothing",
	"POST /v1/chat/completions": "inference: it answers; the prediction record and request log are telemetry, not a change of governed state",
	"POST /v1/completions":      "inference, as chat/completions",
	"POST /v1/classify":         "inference, as chat/completions",
	// A remote worker (a Kubernetes Job's pod) posting its progress, checkpoints and result with the run's worker credential:
	// the same messages a local worker writes on stdout; the run's transitions they lead to are the scheduler's, audited as such.
	"POST /v1/runs/{id}/worker/messages": "a run's own worker reporting, as a local worker's stdout",
}

// routeStep is one call of a state-changing route, with the setup it needs
// (done first, through the client, as another actor). Bodies still name
// an "actor" where the API asks for one today; the audit ignores it and
// records the context's actor.
type routeStep struct {
	pattern string
	path    string // the pattern's path with its wildcards filled in
	query   string
	id      *string // fills {id} in path
	body    func() string
	setup   func()
	action  string // an audit action the call must record
}

// TestEveryStateChangingRouteIsAudited enumerates the routes the server
// registers, calls every POST, PUT, PATCH and DELETE route with a valid
// request that changes state, as an actor set through the same context
// seam authentication uses, and requires a new audit entry with that
// actor. At the end the chain verifies, and no secret sent in a request
// (a webhook URL's token) is in the exported log.
func TestEveryStateChangingRouteIsAudited(t *testing.T) {
	data := newDeployData(t) // base tiny; model spam v1 (no report), v2 (failed), v3 (passed); champion → v1
	w := openAuditWorld(t, data, true, func(o *app.Options) {
		o.RequireApproval = map[string]bool{"prod": true}
		o.WorkerCommand = []string{"/bin/sh", "-c", "exec sleep 30"} // a run stays running until canceled (the appended args are $0, $1…)
		// The server may write a backup region, so a copy has somewhere to go.
		o.Residency = &residency.Policy{Source: "test policy",
			Regions: map[string]residency.Rule{"local": {Read: []string{"local"}, Write: []string{"local", "local-backup"}}}}
	})
	ctx := context.Background()
	start := lastAuditSeq(t, w) // the fixture's own entries, written without an actor, come before
	setupActor := "setup"
	as := func(actor string, f func()) {
		w.auth.as(actor)
		f()
	}
	const hookSecret = "h00k-s3cr3t-in-the-url"

	baseDir := t.TempDir()
	var runID, approvalID, tokenID, stoppedID string
	steps := []routeStep{
		{pattern: "POST /v1/datasets/{name}/versions", path: "/v1/datasets/mail/versions", query: "task=classify&filename=mail.jsonl",
			body: func() string { return mailRecords(0, 40) }, action: "dataset.version.created"},
		{pattern: "POST /v1/copies", path: "/v1/copies",
			body: func() string { return `{"kind": "dataset", "source": "mail", "to_region": "local-backup"}` }, action: "dataset.copy.created"},
		{pattern: "POST /v1/bases/{name}/versions", path: "/v1/bases/tiny2/versions",
			setup: func() { w.mustCLI("base", "export", "tiny", "--out", baseDir) },
			body:  func() string { return tarDir(t, baseDir) }, action: "base.version.created"},
		{pattern: "POST /v1/recipes", path: "/v1/recipes", query: "filename=mailer.yaml",
			body: func() string { return mailerRecipe }, action: "recipe.version.created"},
		{pattern: "POST /v1/runs", path: "/v1/runs", body: func() string { return `{"recipe": "mailer"}` }, action: "run.state.changed"},
		{pattern: "POST /v1/runs/{id}/cancel", path: "/v1/runs/{id}/cancel",
			id: &runID, setup: func() { runID = waitRunning(t, w.client) }, action: "run.state.changed"},
		{pattern: "POST /v1/evals", path: "/v1/evals",
			setup: func() { registerTrained(t, w.app.Store(), runID) },
			body:  func() string { return `{"model": "mailer@v1", "dataset": "mail"}` }, action: "run.state.changed"},
		{pattern: "POST /v1/monitors", path: "/v1/monitors", query: "filename=watch.yaml",
			body: func() string {
				return "name: watch\nmodel: spam\nalias: champion\nwindow: {kind: count, size: 100}\nfeedback: {dataset: spam-feedback, every: 1000}\n"
			}, action: "monitor.version.created"},
		{pattern: "POST /v1/triggers", path: "/v1/triggers", query: "filename=hook.yaml",
			body: func() string {
				return "name: hook\non: {event: feedback, model: nobody}\ndo:\n  - webhook: {url: \"http://127.0.0.1:9/services/" + hookSecret +
					"?token=" + hookSecret + "\", allow_private: true}\n"
			}, action: "trigger.version.created"},
		{pattern: "POST /v1/deployments", path: "/v1/deployments",
			body: func() string {
				return `{"model": "spam", "canary": {"model": "spam@v2", "percent": 10}, "reason": "try v2"}`
			},
			action: "deployment.changed"},
		{pattern: "POST /v1/deployments/{name}/rollback", path: "/v1/deployments/spam/rollback",
			body: func() string { return `{"reason": "v2 disagrees", "actor": "promoter"}` }, action: "deployment.changed"},
		{pattern: "POST /v1/deployments/{name}/promote", path: "/v1/deployments/spam/promote",
			setup: func() {
				if _, err := w.client.Deploy(ctx, api.DeploymentSpec{Model: "spam", Canary: &api.Canary{Model: "spam@v3", Percent: 10}, Reason: "v3"}); err != nil {
					t.Fatal(err)
				}
			},
			body: func() string { return `{"reason": "v3 passed", "actor": "promoter"}` }, action: "model.alias.moved"},
		{pattern: "POST /v1/feedback", path: "/v1/feedback",
			body: func() string {
				return fmt.Sprintf(`{"request_id": %q, "label": "spam"}`, classify(t, w, "spam", "win a prize now"))
			}, action: "feedback.received"},
		{pattern: "POST /v1/feedback/{model}/accumulate", path: "/v1/feedback/spam/accumulate", action: "feedback.accumulated"},
		{pattern: "POST /v1/registry/models/{name}/promote", path: "/v1/registry/models/spam/promote",
			body: func() string {
				return `{"version": "v3", "alias": "challenger", "reason": "passed its gates", "actor": "promoter"}`
			}, action: "model.alias.moved"},
		{pattern: "POST /v1/registry/models/{name}/rollback", path: "/v1/registry/models/spam/rollback",
			body: func() string { return `{"alias": "champion", "reason": "back to v1", "actor": "promoter"}` }, action: "model.alias.moved"},
		{pattern: "POST /v1/registry/approvals/{id}", path: "/v1/registry/approvals/{id}", id: &approvalID,
			setup: func() {
				p, err := w.client.Promote(ctx, "spam", api.Promote{Version: "v3", Alias: "prod", Reason: "to prod", Actor: "requester"})
				if err != nil || p.Approval == nil {
					t.Fatalf("promote to prod: %+v, %v; want a pending approval", p, err)
				}
				approvalID = p.Approval.ID
			},
			body: func() string { return `{"approve": true, "reason": "checked", "actor": "approver"}` }, action: "model.approval.approved"},
		{pattern: "POST /v1/tokens", path: "/v1/tokens", body: func() string { return `{"principal": "ci-bot", "role": "viewer"}` },
			action: "token.created"},
		{pattern: "POST /v1/tokens/{id}/revoke", path: "/v1/tokens/{id}/revoke", id: &tokenID,
			setup: func() {
				c, err := w.client.CreateToken(ctx, api.TokenCreate{Principal: "leaver", Role: "viewer"})
				if err != nil {
					t.Fatal(err)
				}
				tokenID = c.Token.ID
			}, action: "token.revoked"},
		{pattern: "POST /v1/projects", path: "/v1/projects", body: func() string { return `{"name": "blue"}` }, action: "project.created"},
		{pattern: "POST /v1/runs/{id}/resume", path: "/v1/runs/{id}/resume", id: &stoppedID,
			setup: func() {
				// A run stopped at its budget, as the scheduler leaves one.
				r, err := w.app.Store().Run(ctx, runID)
				if err != nil {
					t.Fatal(err)
				}
				r.ID, r.State, stoppedID = "run-stopped", store.RunBudgetExceeded, "run-stopped"
				if _, err := w.app.Store().CreateRun(store.WithActor(ctx, setupActor), r, nil); err != nil {
					t.Fatal(err)
				}
			},
			body: func() string { return `{"max_steps": 100}` }, action: "run.budget.raised"},
		{pattern: "POST /v1/gc", path: "/v1/gc", query: "grace=0s",
			setup: func() {
				if _, _, err := w.app.Blobs().Put(ctx, strings.NewReader("nothing refers to this")); err != nil {
					t.Fatal(err)
				}
			}, action: "blobs.collected"},
	}

	// The routes the server serves, against the steps and exemptions.
	var changing []string
	for _, p := range httpapi.Routes(httpapi.Options{Inference: http.NotFoundHandler()}) {
		method, _, _ := strings.Cut(p, " ")
		if method != http.MethodGet && method != http.MethodHead {
			changing = append(changing, p)
		}
	}
	covered := map[string]bool{}
	for _, s := range steps {
		covered[s.pattern] = true
	}
	for _, p := range changing {
		if !covered[p] && auditExempt[p] == "" {
			t.Errorf("route %s changes state but the test neither calls it nor exempts it: give it an audited step (or an exemption with a reason)", p)
		}
	}
	for p := range covered {
		if !slices.Contains(changing, p) {
			t.Errorf("step for %s, which the server does not serve", p)
		}
	}
	for p := range auditExempt {
		if !slices.Contains(changing, p) {
			t.Errorf("exemption for %s, which the server does not serve", p)
		}
	}
	if len(changing) < 20 {
		t.Fatalf("only %d state-changing routes found: %v", len(changing), changing)
	}
	if t.Failed() {
		t.FailNow()
	}

	for i, s := range steps {
		if s.setup != nil {
			as(setupActor, s.setup)
		}
		actor := fmt.Sprintf("actor-%02d", i)
		before := lastAuditSeq(t, w)
		path := s.path
		if s.id != nil {
			path = strings.ReplaceAll(path, "{id}", *s.id)
		}
		var body string
		if s.body != nil {
			as(setupActor, func() { body = s.body() })
		}
		w.auth.as(actor)
		method, _, _ := strings.Cut(s.pattern, " ")
		status, answer := send(t, w, method, path, s.query, body)
		if status/100 != 2 {
			t.Fatalf("%s (%s): HTTP %d %s", s.pattern, path, status, answer)
		}
		page, err := w.client.AuditEntries(ctx, before, 1000)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range page.Entries {
			if e.Actor == actor && e.Action == s.action {
				found = true
			}
		}
		if !found {
			t.Errorf("%s as %s: no %s audit entry by %s among %d new entries: %+v", s.pattern, actor, s.action, actor, len(page.Entries), page.Entries)
		}
	}

	v, err := w.client.VerifyAudit(ctx)
	if err != nil || !v.OK || v.Entries < int64(len(steps)) {
		t.Fatalf("verify after every route: %+v, %v", v, err)
	}
	rc, err := w.client.ExportAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exported, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(exported, []byte("\n")); int64(n) != v.Entries {
		t.Fatalf("export has %d lines, verify counted %d entries", n, v.Entries)
	}
	// What the server did on its own since the fixture was made carries a
	// system actor (the scheduler started the run the cancel step
	// stopped); nothing fell back to store.SystemActor.
	actors := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(exported), []byte("\n")) {
		var e api.AuditEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		if e.Seq > start {
			actors[e.Actor] = true
		}
	}
	if !actors["tailor-scheduler"] || actors[store.SystemActor] {
		t.Errorf("actors in the log: %v; want tailor-scheduler (the run it started) and no change without an actor", actors)
	}
	if !bytes.Contains(exported, []byte(`"trigger.version.created"`)) || bytes.Contains(exported, []byte(hookSecret)) {
		t.Fatalf("the export must record the trigger's spec without its webhook URL's secret:\n%s", exported)
	}
}

const mailerRecipe = `name: mailer
task: classify
base: tiny
data:
  dataset: mail
method:
  kind: lora
  lora: {rank: 4, alpha: 8, targets: [q_proj, v_proj]}
  head: {pooling: mean}
train: {epochs: 1, batch_size: 4, learning_rate: 0.01}
seed: 1
region: local
`

func lastAuditSeq(t *testing.T, w *auditWorld) int64 {
	t.Helper()
	v, err := w.client.VerifyAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v.HeadSeq
}

func send(t *testing.T, w *auditWorld, method, path, query, body string) (int, string) {
	t.Helper()
	u := w.srv.URL + path
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// tarDir is the tar of dir's regular files, the body of a base import.
func tarDir(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.Name(), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// waitRunning returns the id of a run that is running (its worker sleeps).
func waitRunning(t *testing.T, c *api.Client) string {
	t.Helper()
	for range 500 {
		rs, err := c.Runs(context.Background(), "running")
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > 0 {
			return rs[0].ID
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no run reached running")
	return ""
}

// registerTrained records, as setup, a model version trained by run (so
// an eval of it can be started): spam v3's adapter under the name mailer.
func registerTrained(t *testing.T, st store.Store, run string) {
	t.Helper()
	ctx := context.Background()
	v3, err := st.ModelVersion(ctx, "spam", "v3")
	if err != nil {
		t.Fatal(err)
	}
	v := store.ModelVersion{ID: v3.ID, Name: "mailer", BaseID: v3.BaseID, Adapter: v3.Adapter, RunID: run, Task: "classify"}
	if _, _, err := st.PutModelVersion(store.WithActor(ctx, "setup"), v, nil); err != nil {
		t.Fatal(err)
	}
}

// classify answers one request and returns its request id.
func classify(t *testing.T, w *auditWorld, model, input string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": model, "input": input, "user": "u1"})
	resp, err := http.Post(w.srv.URL+"/v1/classify", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	id := resp.Header.Get("X-Tailor-Request-Id")
	if resp.StatusCode != 200 || id == "" {
		t.Fatalf("classify: %d %s (request id %q)", resp.StatusCode, answer, id)
	}
	return id
}
