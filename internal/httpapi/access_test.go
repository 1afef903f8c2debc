package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlite"
)

// storeAudit serves the audit routes from a real SQLite store, as
// internal/app does (the dashboard's browser test reads the app's pages):
// the request's project's entries, oldest first after a seq or
// newest first before one, at most limit (0: 100, past 1000 refused),
// with the project's count.
type storeAudit struct {
	Service
	st *sqlite.Store
}

func (s storeAudit) page(ctx context.Context, es []store.AuditEntry, err error) (api.AuditPage, error) {
	if err != nil {
		return api.AuditPage{}, err
	}
	page := api.AuditPage{Entries: []api.AuditEntry{}}
	for _, e := range es {
		page.Entries = append(page.Entries, api.AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Project: e.Project, Action: e.Action,
			ObjectKind: e.ObjectKind, ObjectID: e.ObjectID, EventSeq: e.EventSeq, Hash: e.Hash})
	}
	page.Total, err = s.st.AuditCount(ctx)
	return page, err
}

func auditLimit(limit int) (int, error) {
	switch {
	case limit < 0 || limit > 1000:
		return 0, errs.Invalid("limit=%d: want 1 to 1000", limit)
	case limit == 0:
		return 100, nil
	}
	return limit, nil
}

func (s storeAudit) AuditEntries(ctx context.Context, after int64, limit int) (api.AuditPage, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return api.AuditPage{}, err
	}
	es, err := s.st.AuditEntries(ctx, after, limit)
	page, err := s.page(ctx, es, err)
	page.Next = after
	if n := len(es); n > 0 {
		page.Next = es[n-1].Seq
	}
	return page, err
}

func (s storeAudit) AuditNewest(ctx context.Context, before int64, limit int) (api.AuditPage, error) {
	limit, err := auditLimit(limit)
	if err != nil {
		return api.AuditPage{}, err
	}
	es, err := s.st.AuditEntriesBefore(ctx, before, limit+1)
	more := len(es) > limit
	if more {
		es = es[:limit]
	}
	page, err := s.page(ctx, es, err)
	if more {
		page.Next = es[len(es)-1].Seq
	}
	return page, err
}

// accessWorld is a loopback server over a real SQLite store and a real
// authority: the bootstrap admin's client, and the store to read events
// and the audit log from.
type accessWorld struct {
	st    *sqlite.Store
	a     *auth.Authority
	addr  string
	boot  string // the bootstrap admin's token
	admin *api.Client
}

func newAccessWorld(t *testing.T) *accessWorld {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "tailor.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a := auth.New(auth.Options{Store: st, Rand: rand.NewChaCha8([32]byte{7}), Rate: -1})
	var boot string
	if _, err := a.Bootstrap(context.Background(), func(s string) error { boot = s; return nil }); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Options{Service: storeAudit{st: st}, Auth: a}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	return &accessWorld{st: st, a: a, addr: addr, boot: boot, admin: api.NewClient(addr, nil).WithToken(boot)}
}

// get asks path with the token and project given and returns the status
// and body.
func (w *accessWorld) get(t *testing.T, token, project, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+w.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if project != "" {
		req.Header.Set(ProjectHeader, project)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// errorMessage is the message of an API error body, or the body itself.
func errorMessage(body []byte) string {
	var e api.ErrorBody
	if json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
		return string(body)
	}
	return e.Error.Message
}

// TestWhoAmIExpiryAndProjects: whoami names the token's expiry (none for
// a token without one), and the project a request acts in follows
// X-Tailor-Project among the token's roles, whose projects GET
// /v1/projects lists with the role in each: what the dashboard's
// project switch reads.
func TestWhoAmIExpiryAndProjects(t *testing.T) {
	w := newAccessWorld(t)
	ctx := context.Background()
	// Nobody holds admin in two projects through the API (a project's
	// creator gets a token for the new one only), so the two-project
	// token is minted by a principal made here, as the CLI's tests do.
	root := auth.Principal{Name: "root", Project: store.DefaultProject, Roles: map[string]auth.Role{store.DefaultProject: auth.Admin}}
	if _, _, err := w.a.CreateProject(ctx, root, "blue"); err != nil {
		t.Fatal(err)
	}
	root.Roles["blue"] = auth.Admin
	two, err := w.a.CreateToken(ctx, root, auth.NewToken{Principal: "dana", Project: store.DefaultProject,
		Roles: map[string]auth.Role{store.DefaultProject: auth.Admin, "blue": auth.Viewer}, TTL: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	forever, err := w.admin.CreateToken(ctx, api.TokenCreate{Principal: "ed", Role: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, project string
		status               int
		principal, acts      string
		expires              time.Time // zero: the field is absent
		projects             string    // GET /v1/projects: "name=role …"
	}{
		{"two projects, home", two.Secret.String(), "", 200, "dana", "default", two.Token.ExpiresAt, "blue=viewer default=admin"},
		{"two projects, the other", two.Secret.String(), "blue", 200, "dana", "blue", two.Token.ExpiresAt, "blue=viewer default=admin"},
		{"a project without a role", two.Secret.String(), "green", 403, "", "", time.Time{}, ""},
		{"no expiry", forever.Secret, "", 200, "ed", "default", time.Time{}, "default=operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := w.get(t, tt.token, tt.project, "/v1/whoami")
			if status != tt.status {
				t.Fatalf("whoami: %d %s, want %d", status, body, tt.status)
			}
			if status != 200 {
				return
			}
			var me api.WhoAmI
			if err := json.Unmarshal(body, &me); err != nil {
				t.Fatal(err)
			}
			if me.Principal != tt.principal || me.Project != tt.acts || !me.ExpiresAt.Equal(tt.expires) {
				t.Errorf("whoami %+v; want %s acting in %s, expiring %v", me, tt.principal, tt.acts, tt.expires)
			}
			if absent := !strings.Contains(string(body), `"expires_at"`); absent != tt.expires.IsZero() {
				t.Errorf("whoami body %s: expires_at present %v, want %v", body, !absent, !tt.expires.IsZero())
			}
			status, body = w.get(t, tt.token, tt.project, "/v1/projects")
			var ps []api.Project
			if err := json.Unmarshal(body, &ps); status != 200 || err != nil {
				t.Fatalf("projects: %d %s", status, body)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Name+"="+p.Role)
			}
			slices.Sort(got)
			if strings.Join(got, " ") != tt.projects {
				t.Errorf("projects %v, want %s", got, tt.projects)
			}
		})
	}
}

// TestRevokeWithReason: a revocation's reason reaches the token.revoked
// event; a revocation without a body (a client from before the reason)
// still works; a bad reason or an unknown field is a 400 that revokes
// nothing; a revoked token is refused; no secret reaches a list or an
// event.
func TestRevokeWithReason(t *testing.T) {
	w := newAccessWorld(t)
	ctx := context.Background()
	mint := func(principal string) api.TokenCreated {
		t.Helper()
		c, err := w.admin.CreateToken(ctx, api.TokenCreate{Principal: principal, Role: "viewer", ExpiresIn: "720h"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := mint("vera"), mint("walt")
	revoke := func(id, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", "http://"+w.addr+"/v1/tokens/"+id+"/revoke", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+w.boot)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, errorMessage(out)
	}
	for _, tt := range []struct{ name, body, want string }{
		{"unknown field", `{"why": "x"}`, `unknown field "why"`},
		{"control character", `{"reason": "a\u001b[2Jb"}`, "control or formatting character"},
		{"not JSON", `reason=x`, "request body"},
	} {
		if status, out := revoke(a.Token.ID, tt.body); status != 400 || !strings.Contains(out, tt.want) {
			t.Errorf("%s: %d %s; want 400 with %q", tt.name, status, out, tt.want)
		}
	}
	if status, _ := w.get(t, a.Secret, "", "/v1/whoami"); status != 200 {
		t.Fatalf("a refused revocation revoked the token: whoami %d", status)
	}
	got, err := w.admin.RevokeTokenWithReason(ctx, a.Token.ID, "laptop lost")
	if err != nil || got.State != "revoked" {
		t.Fatalf("revoke with a reason: %+v, %v", got, err)
	}
	if got, err := w.admin.RevokeToken(ctx, b.Token.ID); err != nil || got.State != "revoked" {
		t.Fatalf("revoke without a body: %+v, %v", got, err)
	}
	for _, c := range []api.TokenCreated{a, b} {
		if status, body := w.get(t, c.Secret, "", "/v1/whoami"); status != 401 || !strings.Contains(string(body), "was revoked") {
			t.Errorf("whoami with revoked %s: %d %s", c.Token.ID, status, body)
		}
	}
	evs, err := w.st.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, ev := range evs {
		for _, c := range []api.TokenCreated{a, b} {
			if strings.Contains(string(ev.Data), strings.TrimPrefix(c.Secret, c.Token.ID+"_")) {
				t.Errorf("event %s %s holds a secret", ev.Type, ev.Subject)
			}
		}
		if ev.Type == "token.revoked" {
			var d struct{ Reason string }
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			reasons[ev.Subject] = d.Reason
		}
	}
	if len(reasons) != 2 || reasons[a.Token.ID] != "laptop lost" || reasons[b.Token.ID] != "" {
		t.Errorf("token.revoked reasons %v; want %s: laptop lost, %s: none", reasons, a.Token.ID, b.Token.ID)
	}
	ts, err := w.admin.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(ts)
	for _, c := range []api.TokenCreated{a, b} {
		if strings.Contains(string(raw), strings.TrimPrefix(c.Secret, c.Token.ID+"_")) {
			t.Errorf("the token list holds %s's secret", c.Token.ID)
		}
	}
}

// TestAuditNewestFirst: for logs of every length from 1 to 40 entries,
// the total is the number of entries, and walking newest-first pages of
// several sizes by next yields every entry exactly once, newest first,
// the same entries oldest-first pages do; so it does over a view of the
// log with gaps; bad parameters are 400s.
func TestAuditNewestFirst(t *testing.T) {
	w := newAccessWorld(t)
	ctx := context.Background()
	n := 1 // the bootstrap token's entry
	for ; n <= 40; n++ {
		if n > 1 {
			if _, err := w.admin.CreateToken(ctx, api.TokenCreate{Principal: fmt.Sprintf("p%d", n), Role: "viewer"}); err != nil {
				t.Fatal(err)
			}
		}
		old, err := w.admin.AuditEntries(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if old.Total != int64(n) || len(old.Entries) != n {
			t.Fatalf("%d entries: oldest first total %d, %d entries", n, old.Total, len(old.Entries))
		}
		var want []int64
		for i := len(old.Entries) - 1; i >= 0; i-- {
			want = append(want, old.Entries[i].Seq)
		}
		for _, limit := range []int{1, 3, 7, 50} {
			var got []int64
			var before int64
			for pages := 0; ; pages++ {
				p, err := w.admin.AuditNewest(ctx, before, limit)
				if err != nil {
					t.Fatal(err)
				}
				if p.Total != int64(n) || len(p.Entries) > limit || pages > n {
					t.Fatalf("%d entries, limit %d, before %d: total %d, %d entries after %d pages", n, limit, before, p.Total, len(p.Entries), pages)
				}
				for _, e := range p.Entries {
					got = append(got, e.Seq)
				}
				if p.Next == 0 {
					break
				}
				before = p.Next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%d entries, newest first by %d: %v, want %v", n, limit, got, want)
			}
		}
	}
	// One page in the middle: the 5 before entry 20.
	p, err := w.admin.AuditNewest(ctx, 20, 5)
	if err != nil || p.Next != 15 || len(p.Entries) != 5 || p.Entries[0].Seq != 19 || p.Entries[4].Seq != 15 {
		t.Errorf("5 before 20: %+v, %v", p, err)
	}
	for _, tt := range []struct{ query, want string }{
		{"order=newest&after=3", "only oldest first"},
		{"before=3", "only with order=newest"},
		{"order=sideways", "want oldest (the default) or newest"},
		{"order=newest&before=-1", "before=\"-1\""},
		{"order=newest&limit=1001", "want 1 to 1000"},
		{"order=newest&limit=0", "want a positive number"},
	} {
		status, body := w.get(t, w.boot, "", "/v1/audit?"+tt.query)
		if status != 400 || !strings.Contains(string(body), `"kind": "invalid"`) || !strings.Contains(errorMessage(body), tt.want) {
			t.Errorf("GET /v1/audit?%s: %d %s; want 400 invalid with %q", tt.query, status, body, tt.want)
		}
	}
}

// BenchmarkAuditNewest reads the newest page of 50 entries of a log of
// 20,000 over loopback, with the count.
func BenchmarkAuditNewest(b *testing.B) {
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "tailor.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for i := 0; i < 20000; i += 500 {
		evs := make([]store.Event, 500)
		for j := range evs {
			evs[j] = store.Event{Type: "run.state.changed", Subject: fmt.Sprint("run-", (i+j)%100), Time: time.Unix(int64(i+j), 0).UTC()}
		}
		if _, err := st.AppendEvents(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(New(Options{Service: storeAudit{st: st}, Auth: local}))
	defer srv.Close()
	c := api.NewClient(srv.URL, nil)
	b.ResetTimer()
	for b.Loop() {
		p, err := c.AuditNewest(ctx, 0, 50)
		if err != nil || p.Total != 20000 || len(p.Entries) != 50 || p.Entries[0].Seq != 20000 {
			b.Fatalf("%d entries, total %d, %v", len(p.Entries), p.Total, err)
		}
	}
}

// TestTokenRoleInRequestProject: the role in the request's project may be
// given as role or in roles, the same either way; given differently it is
// refused, never silently one of them.
func TestTokenRoleInRequestProject(t *testing.T) {
	w := newAccessWorld(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		req  api.TokenCreate
		want string // the role in default; "" refused
	}{
		{"role", api.TokenCreate{Principal: "a", Role: "operator"}, "operator"},
		{"roles", api.TokenCreate{Principal: "b", Roles: map[string]string{store.DefaultProject: "admin"}}, "admin"},
		{"both, the same", api.TokenCreate{Principal: "c", Role: "admin", Roles: map[string]string{store.DefaultProject: "admin"}}, "admin"},
		{"neither", api.TokenCreate{Principal: "d"}, "viewer"},
		{"both, different", api.TokenCreate{Principal: "e", Role: "viewer", Roles: map[string]string{store.DefaultProject: "admin"}}, ""},
	} {
		c, err := w.admin.CreateToken(ctx, tt.req)
		switch {
		case tt.want == "":
			if err == nil || !strings.Contains(err.Error(), "differ") {
				t.Errorf("%s: %+v, %v; want refused", tt.name, c.Token, err)
			}
		case err != nil || c.Token.Roles[store.DefaultProject] != tt.want:
			t.Errorf("%s: %+v, %v; want %s in default", tt.name, c.Token, err, tt.want)
		}
	}
}
