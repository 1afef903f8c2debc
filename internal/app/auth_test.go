package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/reference"
	"github.com/tailor-ml/tailor/internal/store"
)

// authWorld is an App behind a real loopback server that requires tokens,
// with a model "spam" whose champion alias needs a second person's
// approval, and tokens for each role in the default project, an admin of
// project "blue", and expired and revoked ones.
type authWorld struct {
	t      *testing.T
	app    *app.App
	url    string
	tokens map[string]string // name → token text
}

func newAuthWorld(t *testing.T) *authWorld {
	t.Helper()
	a, err := app.Open(app.Options{DataDir: t.TempDir(), EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"},
		RequireApproval: map[string]bool{"champion": true}})
	if err != nil {
		t.Fatal(err)
	}
	authority := a.Authority(auth.Options{Rate: -1})
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: a, Auth: authority, Inference: a.Inference()}))
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	w := &authWorld{t: t, app: a, url: srv.URL, tokens: map[string]string{}}
	ctx := context.Background()
	if _, err := authority.Bootstrap(ctx, func(s string) error { w.tokens["bootstrap"] = s; return nil }); err != nil {
		t.Fatal(err)
	}
	boot := api.NewClient(srv.URL, nil).WithToken(w.tokens["bootstrap"])
	for name, role := range map[string]string{"vera": "viewer", "otto": "operator", "ada": "admin", "adam": "admin"} {
		c, err := boot.CreateToken(ctx, api.TokenCreate{Principal: name, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		w.tokens[name] = c.Secret
	}
	blue, err := boot.CreateProject(ctx, "blue")
	if err != nil {
		t.Fatal(err)
	}
	// The creator's token holds its role in default too; blue's admin is
	// a token of blue's alone, made by it.
	ba, err := api.NewClient(srv.URL, nil).WithToken(blue.Secret).CreateToken(ctx, api.TokenCreate{Principal: "blue-admin", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	w.tokens["blue-admin"] = ba.Secret
	exp, err := boot.CreateToken(ctx, api.TokenCreate{Principal: "eve", Role: "admin", ExpiresIn: "1ns"})
	if err != nil {
		t.Fatal(err)
	}
	w.tokens["expired"] = exp.Secret
	rev, err := boot.CreateToken(ctx, api.TokenCreate{Principal: "rex", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := boot.RevokeToken(ctx, rev.Token.ID); err != nil {
		t.Fatal(err)
	}
	w.tokens["revoked"] = rev.Secret

	st := a.Store()
	base := strings.Repeat("b", 64)
	if _, _, err := st.PutBaseVersion(ctx, store.BaseVersion{ID: base, Name: "tiny", Arch: "LlamaForCausalLM", Manifest: "sha256:" + strings.Repeat("c", 64),
		Region: "local", CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.PutModelVersion(ctx, store.ModelVersion{ID: strings.Repeat("d", 64), Name: "spam", BaseID: base,
		Adapter: "sha256:" + strings.Repeat("e", 64), Task: "classify", CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	return w
}

// do sends one request with the named token ("" none; a name not in
// tokens is sent as it is) in project ("" the token's own), and returns
// the status and the body, or for an error its kind and message.
func (w *authWorld) do(method, path, token, project, body string) (int, string) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.url+path, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	if token != "" {
		if tk, ok := w.tokens[token]; ok {
			token = "Bearer " + tk
		}
		req.Header.Set("Authorization", token)
	}
	if project != "" {
		req.Header.Set(httpapi.ProjectHeader, project)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// An error answer is its message (JSON escapes quotes and <>).
	var eb api.ErrorBody
	if resp.StatusCode != 200 && json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
		return resp.StatusCode, eb.Error.Kind + ": " + eb.Error.Message
	}
	return resp.StatusCode, string(b)
}

// endpoint is one route of an action class, with a body that succeeds
// (200) once the request is allowed.
type endpoint struct{ method, path, body string }

var (
	readEP    = endpoint{"GET", "/v1/runs", ""}
	operateEP = endpoint{"POST", "/v1/datasets/mail/versions?task=classify&filename=mail.jsonl", oneRecord}
	adminEP   = endpoint{"POST", "/v1/tokens", `{"principal":"tmp","role":"viewer"}`}
)

// TestAuthorization is the authorization table: each role × each action
// class × own and other project, then expired, revoked, malformed,
// unknown and missing tokens, on a real server on loopback.
func TestAuthorization(t *testing.T) {
	w := newAuthWorld(t)
	type tc struct {
		name     string
		token    string
		project  string
		ep       endpoint
		status   int
		msg      string // in the error message
		nonsense string // must not be in the answer (the secret)
	}
	var cases []tc
	classes := []struct {
		name string
		ep   endpoint
		need int // 1 viewer, 2 operator, 3 admin
	}{{"read", readEP, 1}, {"operate", operateEP, 2}, {"admin", adminEP, 3}}
	roles := []struct {
		token, role string
		rank        int
	}{{"vera", "viewer", 1}, {"otto", "operator", 2}, {"ada", "admin", 3}}
	for _, r := range roles {
		for _, c := range classes {
			// Own project (the token's, default).
			want, msg := 200, ""
			if r.rank < c.need {
				want, msg = 403, `is `+r.role+` there`
			}
			cases = append(cases, tc{name: r.role + "/" + c.name + "/own", token: r.token, ep: c.ep, status: want, msg: msg})
			// Another project, named by the header: no role there.
			cases = append(cases, tc{name: r.role + "/" + c.name + "/other", token: r.token, project: "blue", ep: c.ep, status: 403,
				msg: `has no role in project "blue"`})
		}
	}
	for _, c := range classes {
		cases = append(cases,
			tc{name: "blue-admin/" + c.name + "/own", token: "blue-admin", ep: c.ep, status: 200},
			tc{name: "blue-admin/" + c.name + "/other", token: "blue-admin", project: "default", ep: c.ep, status: 403, msg: `has no role in project "default"`},
			tc{name: "expired/" + c.name, token: "expired", ep: c.ep, status: 401, msg: "expired at"},
			tc{name: "revoked/" + c.name, token: "revoked", ep: c.ep, status: 401, msg: "was revoked at"},
			tc{name: "missing/" + c.name, ep: c.ep, status: 401, msg: "no token"},
		)
	}
	unknown := "tlr_ffffffffffffffff_" + strings.Repeat("9", 64)
	forged := w.tokens["ada"][:len(w.tokens["ada"])-4] + "0000"
	cases = append(cases,
		tc{name: "malformed", token: "Bearer tlr_xyz", ep: readEP, status: 401, msg: "malformed token"},
		tc{name: "malformed secret", token: "Bearer " + w.tokens["ada"][:30], ep: readEP, status: 401, msg: "malformed token", nonsense: w.tokens["ada"][22:30]},
		tc{name: "not bearer", token: "Basic YWRhOnB3", ep: readEP, status: 401, msg: "want Bearer <token>"},
		tc{name: "unknown id", token: "Bearer " + unknown, ep: readEP, status: 401, msg: "tlr_ffffffffffffffff is not known", nonsense: strings.Repeat("9", 64)},
		tc{name: "forged secret", token: "Bearer " + forged, ep: adminEP, status: 401, msg: "is not known", nonsense: forged[22:]},
		tc{name: "health needs nothing", ep: endpoint{"GET", "/v1/health", ""}, status: 200},
		tc{name: "openai route without token", ep: endpoint{"GET", "/v1/models", ""}, status: 401, msg: "no token"},
		tc{name: "openai route with a viewer", token: "vera", ep: endpoint{"GET", "/v1/models", ""}, status: 200},
		tc{name: "metrics without token", ep: endpoint{"GET", "/metrics", ""}, status: 401},
		tc{name: "viewer promotes", token: "vera", ep: endpoint{"POST", "/v1/registry/models/spam/promote", `{"version":"v1","alias":"champion","reason":"x"}`}, status: 403, msg: "needs role admin"},
		tc{name: "operator approves", token: "otto", ep: endpoint{"POST", "/v1/registry/approvals/x", `{"approve":true,"reason":"x"}`}, status: 403, msg: "needs role admin"},
		tc{name: "operator exports", token: "otto", ep: endpoint{"GET", "/v1/registry/models/spam/versions/v1/export?format=peft", ""}, status: 500},
		tc{name: "viewer exports", token: "vera", ep: endpoint{"GET", "/v1/registry/models/spam/versions/v1/export?format=peft", ""}, status: 403, msg: "needs role operator"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := w.do(c.ep.method, c.ep.path, c.token, c.project, c.ep.body)
			if c.name == "operator exports" {
				// Allowed: past the guard, the export fails on the fixture's
				// missing adapter bytes, which is not an access error.
				if status == 401 || status == 403 {
					t.Fatalf("%s %s: %d %s", c.ep.method, c.ep.path, status, body)
				}
				return
			}
			if status != c.status || !strings.Contains(body, c.msg) {
				t.Fatalf("%s %s as %s in %q: %d %s; want %d with %q", c.ep.method, c.ep.path, c.token, c.project, status, body, c.status, c.msg)
			}
			for _, secret := range w.tokens {
				if strings.Contains(body, secret[len("tlr_")+17:]) {
					t.Fatalf("the answer repeats a token's secret: %s", body)
				}
			}
			if c.nonsense != "" && strings.Contains(body, c.nonsense) {
				t.Fatalf("the answer repeats what was sent: %s", body)
			}
		})
	}
	if len(cases) < 30 {
		t.Fatalf("%d cases; the table needs at least 30", len(cases))
	}
}

// TestTwoPersonApproval: the promotion's requester cannot approve it,
// whatever actor the body names; another admin can, and the history
// records both principals.
func TestTwoPersonApproval(t *testing.T) {
	w := newAuthWorld(t)
	status, body := w.do("POST", "/v1/registry/models/spam/promote", "ada", "",
		`{"version":"v1","alias":"champion","reason":"first","actor":"someone-else","override":true,"override_reason":"no report in this test"}`)
	var pr api.Promotion
	if status != 200 || json.Unmarshal([]byte(body), &pr) != nil || pr.Approval == nil {
		t.Fatalf("promote under approval: %d %s", status, body)
	}
	if pr.Approval.RequestedBy != "ada" {
		t.Fatalf("requested by %q, want the token's principal ada (the body's actor is ignored)", pr.Approval.RequestedBy)
	}
	id := pr.Approval.ID
	status, body = w.do("POST", "/v1/registry/approvals/"+id, "ada", "", `{"approve":true,"reason":"mine","actor":"adam"}`)
	if status != 403 || !strings.Contains(body, "ada requested it and cannot approve it") {
		t.Fatalf("self-approval: %d %s", status, body)
	}
	// The same principal through another token is the same person.
	c, err := api.NewClient(w.url, nil).WithToken(w.tokens["bootstrap"]).CreateToken(context.Background(), api.TokenCreate{Principal: "ada", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	w.tokens["ada2"] = c.Secret
	if status, body = w.do("POST", "/v1/registry/approvals/"+id, "ada2", "", `{"approve":true,"reason":"mine again"}`); status != 403 {
		t.Fatalf("self-approval with a second token: %d %s", status, body)
	}
	if status, body = w.do("POST", "/v1/registry/approvals/"+id, "otto", "", `{"approve":true,"reason":"op"}`); status != 403 {
		t.Fatalf("an operator approving: %d %s", status, body)
	}
	status, body = w.do("POST", "/v1/registry/approvals/"+id, "adam", "", `{"approve":true,"reason":"checked","actor":"ada"}`)
	var ap api.Approval
	if status != 200 || json.Unmarshal([]byte(body), &ap) != nil || ap.State != "approved" || ap.DecidedBy != "adam" {
		t.Fatalf("approval by a second admin: %d %s", status, body)
	}
	status, body = w.do("GET", "/v1/registry/models/spam/history?alias=champion", "vera", "", "")
	var moves []api.AliasMove
	if status != 200 || json.Unmarshal([]byte(body), &moves) != nil || len(moves) != 1 || moves[0].Actor != "adam" {
		t.Fatalf("alias history: %d %s", status, body)
	}
}

// TestOpenAIClientWithToken: the official openai npm client works with a
// Tailor token as its API key and is refused with anything else.
func TestOpenAIClientWithToken(t *testing.T) {
	dir := "../../scripts/openai"
	prefix := reference.OpenAI(t, dir)
	w := newAuthWorld(t)
	run := func(key string) (out struct {
		OK      bool
		Models  []string
		Status  int
		Message string
	}) {
		t.Helper()
		cmd := exec.Command("node", filepath.Join(dir, "auth.js"), prefix, w.url+"/v1", key)
		raw, err := cmd.Output()
		if err != nil {
			t.Fatalf("node auth.js: %v", err)
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return out
	}
	if got := run(w.tokens["vera"]); !got.OK {
		t.Fatalf("with a viewer token: %+v", got)
	}
	for name, key := range map[string]string{"not a token": "sk-unused", "revoked": w.tokens["revoked"]} {
		if got := run(key); got.OK || got.Status != 401 {
			t.Errorf("%s: %+v, want 401", name, got)
		}
	}
}

// TestRateLimit: a token over its rate gets 429 with Retry-After, through
// the one error mapping; another token is not held back by it.
func TestRateLimit(t *testing.T) {
	a, err := app.Open(app.Options{DataDir: t.TempDir(), EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	authority := a.Authority(auth.Options{Rate: 0.001, Burst: 3}) // no refill within the test
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: a, Auth: authority}))
	defer func() {
		srv.Close()
		a.Close()
	}()
	ctx := context.Background()
	var boot string
	if _, err := authority.Bootstrap(ctx, func(s string) error { boot = s; return nil }); err != nil {
		t.Fatal(err)
	}
	other, err := authority.CreateToken(ctx, auth.Local(), auth.NewToken{Principal: "bob", Project: "default", Roles: map[string]auth.Role{"default": auth.Viewer}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(token string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/runs", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 3 {
		if resp := get(boot); resp.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d", i+1, resp.StatusCode)
		}
	}
	resp := get(boot)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("past the burst: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := get(other.Secret.String()); resp.StatusCode != 200 {
		t.Fatalf("another token: %d", resp.StatusCode)
	}
	_, err = api.NewClient(srv.URL, nil).WithToken(boot).Runs(ctx, "")
	var se *api.StatusError
	if !errors.As(err, &se) || se.Err.Kind != "rate_limited" || !strings.Contains(se.Err.Message, "over its rate limit") {
		t.Fatalf("the client's error: %v", err)
	}
}
