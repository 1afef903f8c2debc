package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/reference"
)

// browserDir holds the browser test's script and its pinned npm packages
// (package.json and package-lock.json: playwright-core and axe-core).
const browserDir = "browser"

// browserDeps returns the install prefix of the browser test's npm
// packages, installed once per lock file into $TAILOR_CACHE (default
// ~/.cache/tailor) with `npm ci`, which checks every tarball against the
// lock's sha512 integrity, and the path of Debian's chromium. A missing
// node, npm or chromium skips the test, or fails it under
// TAILOR_REFERENCES=require (`make test`).
func browserDeps(t *testing.T) (prefix, chromium string) {
	t.Helper()
	reference.Node(t, "playwright-core")
	chromium = reference.Program(t, "chromium", "install the Debian package chromium (scripts/deps.sh does)")
	lock, err := os.ReadFile(filepath.Join(browserDir, "package-lock.json"))
	must(t, err)
	pkg, err := os.ReadFile(filepath.Join(browserDir, "package.json"))
	must(t, err)
	sum := sha256.Sum256(append(append([]byte{}, pkg...), lock...))
	cache := os.Getenv("TAILOR_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		must(t, err)
		cache = filepath.Join(home, ".cache", "tailor")
	}
	prefix = filepath.Join(cache, "browser-"+hex.EncodeToString(sum[:6]))
	done := filepath.Join(prefix, "installed")
	if _, err := os.Stat(done); err == nil {
		return prefix, chromium
	}
	must(t, os.MkdirAll(prefix, 0o755))
	must(t, os.WriteFile(filepath.Join(prefix, "package.json"), pkg, 0o644))
	must(t, os.WriteFile(filepath.Join(prefix, "package-lock.json"), lock, 0o644))
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = prefix
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s\n(needs the npm registry on first run)", prefix, err, out)
	}
	must(t, os.WriteFile(done, nil, 0o644))
	return prefix, chromium
}

// browserSummary is what check.js prints.
type browserSummary struct {
	Axe   string `json:"axe"`
	Pages []struct {
		Name       string `json:"name"`
		Title      string `json:"title"`
		Screenshot string `json:"screenshot"`
		Violations []struct {
			ID     string `json:"id"`
			Impact string `json:"impact"`
		} `json:"violations"`
	} `json:"pages"`
	Console      []string `json:"console"`
	ExpectedHTTP []string `json:"expectedHTTP"`
	// StreamsClosed counts the event streams a log-in, log-out or page
	// load closed on purpose (aborted requests of /v1/events).
	StreamsClosed int `json:"streamsClosed"`
	// ReadsAborted counts the API reads a page aborted when the walk moved
	// on before they answered (aborted GETs of /v1/*).
	ReadsAborted int            `json:"readsAborted"`
	Actions      map[string]any `json:"actions"`
	Problems     []string       `json:"problems"`
}

// TestDashboard opens the dashboard of a real `tailor server` in Debian's
// chromium (driven by playwright-core) and walks what a reviewer would:
// a log-in with a wrong token (refused in place), then with an operator's
// token minted here (no admin forms on the model page, no audit entries;
// revoked, the kept token is refused on reload and forgotten), then with
// an admin's; the overview, the champion, its lineage graph to
// the dataset version, the run's loss curve and usage, the eval report; a
// promotion refused by a failed gate, the same promotion with an override,
// and a rollback, each with a reason; a promotion that needs approval,
// refused to its requester and approved by a second principal who logs in
// with their own token; a live run's growing curve and its cancellation;
// the audit log (verified, the admin's promotion among its entries) and
// usage by project, model and day; the Tokens page (a token created, its
// secret shown once and copied, logged in with, revoked with a reason,
// refused; a viewer refused the page); and the project switch of a token
// with roles in two projects. Every page is screenshotted into the
// test's artifact directory (`go test -artifacts` keeps them) and checked
// by axe-core. The script fails on serious or critical axe violations,
// console errors, failed requests and any HTTP error but the five
// refusals it provokes; this test then checks that the browser's moves
// reached the registry with their reasons and actors, that the audit
// entry the page showed for the promotion is the server's, and that the
// token the browser created and revoked is the server's, with the reason.
func TestDashboard(t *testing.T) {
	prefix, chromium := browserDeps(t)
	work := t.TempDir()
	srv := startServer(t, filepath.Join(work, "data"), "--require-approval", "challenger")
	st := dashboardState(t, srv, work)
	stateFile := filepath.Join(work, "state.json")
	raw, err := json.Marshal(st)
	must(t, err)
	must(t, os.WriteFile(stateFile, raw, 0o644))
	out := t.ArtifactDir()

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(browserDir, "check.js"), prefix, "http://"+srv.addr, stateFile, out, chromium)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var sum browserSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("check.js: %v; no summary (%v)\nstdout: %s\nstderr: %s", runErr, err, stdout.String(), stderr.String())
	}
	for _, p := range sum.Pages {
		var minor []string
		for _, v := range p.Violations {
			minor = append(minor, v.Impact+" "+v.ID)
		}
		t.Logf("page %-26s %-44q axe: %d violations %v", p.Name, p.Title, len(p.Violations), minor)
	}
	t.Logf("screenshots of %d pages in %s (axe-core %s); expected HTTP errors %v; event streams closed on purpose: %d; reads aborted by the page: %d", len(sum.Pages), out, sum.Axe, sum.ExpectedHTTP, sum.StreamsClosed, sum.ReadsAborted)
	if runErr != nil || len(sum.Problems) > 0 {
		t.Fatalf("check.js: %v:\n  %s\nstderr: %s", runErr, strings.Join(sum.Problems, "\n  "), stderr.String())
	}
	if len(sum.Pages) < 20 {
		t.Fatalf("check.js saw %d pages, want every page of the walk", len(sum.Pages))
	}

	// The browser's actions reached the registry, in order, with the
	// reasons typed into the forms, and the logged-in token's principal
	// as the actor.
	c := api.NewClient(srv.addr, nil)
	moves, err := c.AliasHistory(context.Background(), st.Model, "champion")
	must(t, err)
	if len(moves) != 3 {
		t.Fatalf("champion moves: %+v; want the first promotion, the browser's override promotion and its rollback", moves)
	}
	pr, rb := moves[1], moves[2]
	if pr.Reason != st.PromoteReason || !pr.Override || pr.OverrideReason != st.OverrideReason || pr.Actor != st.Admin {
		t.Errorf("the browser's promotion: %+v", pr)
	}
	if rb.Action != "rollback" || rb.Reason != st.RollbackReason || rb.Actor != st.Admin {
		t.Errorf("the browser's rollback: %+v", rb)
	}
	champ, err := c.Model(context.Background(), st.Model, "champion")
	must(t, err)
	if champ.Version != st.Champion {
		t.Errorf("champion is v%d after the rollback, want v%d", champ.Version, st.Champion)
	}
	chall, err := c.AliasHistory(context.Background(), st.Model, st.ApprovalAlias)
	must(t, err)
	aps, err := c.Approvals(context.Background(), st.Model, "")
	must(t, err)
	if len(chall) != 1 || chall[0].ApprovalID == "" || chall[0].Reason != st.ApprovalReason || len(aps) != 1 ||
		aps[0].State != "approved" || aps[0].DecidedBy != st.Approver || aps[0].DecisionReason != st.ApproveReason || aps[0].RequestedBy != st.Admin {
		t.Errorf("%s moves %+v, approvals %+v; want one move by the approval the browser requested as %s and approved as %s", st.ApprovalAlias, chall, aps, st.Admin, st.Approver)
	}
	checkAuditRow(t, c, st, sum.Actions["auditEntry"])
	// The run the browser resumed with a raised budget trains to its end.
	if id, _ := sum.Actions["resumedRun"].(string); id != st.BudgetRun {
		t.Errorf("the browser resumed %q, want %s", id, st.BudgetRun)
	}
	done := waitRunState(t, c, st.BudgetRun, "succeeded")
	u, err := c.RunUsage(context.Background(), st.BudgetRun)
	must(t, err)
	if done.Step != 12 || u.Budget.MaxSteps != 100 {
		t.Errorf("resumed run at step %d with budget %+v; want step 12 of 12 under max_steps 100", done.Step, u.Budget)
	}
	id, _ := sum.Actions["canceled"].(string)
	r, err := c.Run(context.Background(), id)
	must(t, err)
	if r.State != "canceled" {
		t.Errorf("the run cancelled from its page is %s", r.State)
	}
	checkBrowserToken(t, c, st, sum.Actions["newTokenID"])
}

// checkBrowserToken holds the token the browser created as the admin,
// logged in with, and revoked, to the server's record: the principal and
// role typed in, made by the admin, a day's expiry, revoked, and its
// token.revoked event carrying the reason typed in.
func checkBrowserToken(t *testing.T, c *api.Client, st dashState, id any) {
	t.Helper()
	ctx := context.Background()
	ts, err := c.Tokens(ctx)
	must(t, err)
	var got *api.Token
	for i := range ts {
		if ts[i].ID == id {
			got = &ts[i]
		}
	}
	if got == nil {
		t.Fatalf("the token the browser created (%v) is not among the server's", id)
	}
	if got.Principal != st.NewPrincipal || got.Roles["default"] != "viewer" || got.CreatedBy != st.Admin || got.State != "revoked" ||
		got.ExpiresAt.Sub(got.CreatedAt) != 24*time.Hour {
		t.Errorf("the browser's token: %+v; want %s, viewer, created by %s for a day, revoked", got, st.NewPrincipal, st.Admin)
	}
	var reason string
	must(t, c.Events(ctx, 0, false, func(ev api.Event) error {
		if ev.Type == "token.revoked" && ev.Subject == got.ID {
			var d struct{ Reason string }
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				return err
			}
			reason = d.Reason
		}
		return nil
	}))
	if reason != st.TokenRevokeReason {
		t.Errorf("the revocation of %s gave reason %q, want %q", got.ID, reason, st.TokenRevokeReason)
	}
}

// checkAuditRow holds the audit row the browser read for the admin's
// promotion of the candidate to the server's entry of that seq: the same
// actor, project, action, object and hash, and the move it records is the
// promotion (the first move of the candidate by the admin).
func checkAuditRow(t *testing.T, c *api.Client, st dashState, row any) {
	t.Helper()
	raw, err := json.Marshal(row)
	must(t, err)
	var seen struct {
		Seq                                  int64
		Actor, Project, Action, Object, Hash string
	}
	if err := json.Unmarshal(raw, &seen); err != nil || seen.Seq == 0 {
		t.Fatalf("the browser read no audit entry for the promotion: %s (%v)", raw, err)
	}
	page, err := c.AuditEntries(context.Background(), seen.Seq-1, 1)
	must(t, err)
	if len(page.Entries) != 1 || page.Entries[0].Seq != seen.Seq {
		t.Fatalf("audit entry %d: %+v", seen.Seq, page.Entries)
	}
	e := page.Entries[0]
	if e.Actor != st.Admin || seen.Actor != e.Actor || e.Project != "default" || seen.Project != e.Project ||
		e.Action != "model.alias.moved" || seen.Action != e.Action || e.ObjectID != st.CandidateID ||
		seen.Object != "model "+shortID(e.ObjectID) || seen.Hash != e.Hash[:12] {
		t.Errorf("the page showed audit entry %+v; the server has %+v; want the promotion of %s by %s", seen, e, st.CandidateID, st.Admin)
	}
	// No earlier entry moves the candidate as the admin: this one is the
	// promotion, not the later approval's move.
	all, err := c.AuditEntries(context.Background(), 0, 1000)
	must(t, err)
	for _, x := range all.Entries {
		if x.Seq < e.Seq && x.Action == e.Action && x.ObjectID == e.ObjectID && x.Actor == st.Admin {
			t.Errorf("audit entry %d moved the candidate as %s before the one the page showed (%d)", x.Seq, st.Admin, e.Seq)
		}
	}
}

// shortID is the dashboard's short form of an id (dom.js short): "sha256:"
// dropped, and a hex digest of 16 or more digits cut to its first 12.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) >= 16 && strings.Trim(id, "0123456789abcdef") == "" {
		return id[:12]
	}
	return id
}
