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
	Console      []string       `json:"console"`
	ExpectedHTTP []string       `json:"expectedHTTP"`
	Actions      map[string]any `json:"actions"`
	Problems     []string       `json:"problems"`
}

// TestDashboard opens the dashboard of a real `tailor server` in Debian's
// chromium (driven by playwright-core) and walks what a reviewer would:
// the overview, the champion, its lineage graph to the dataset version,
// the run's loss curve, the eval report; a promotion refused by a failed
// gate, the same promotion with an override, and a rollback, each with a
// reason; a promotion that needs approval, refused to its requester and
// approved by a second principal (its own token, sent by the page); a live run's growing curve and its
// cancellation. Every page is
// screenshotted into the test's artifact directory (`go test -artifacts`
// keeps them) and checked by axe-core. The script fails on serious or
// critical axe violations, console errors, failed requests and any HTTP
// error but the three refusals it provokes; this test then checks that the
// browser's moves reached the registry with their reasons.
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
	t.Logf("screenshots of %d pages in %s (axe-core %s)", len(sum.Pages), out, sum.Axe)
	if runErr != nil || len(sum.Problems) > 0 {
		t.Fatalf("check.js: %v:\n  %s\nstderr: %s", runErr, strings.Join(sum.Problems, "\n  "), stderr.String())
	}
	if len(sum.Pages) < 14 {
		t.Fatalf("check.js saw %d pages, want every page of the walk", len(sum.Pages))
	}

	// The browser's actions reached the registry, in order, with the
	// reasons typed into the forms. The actor is the request's principal,
	// "local" under --insecure-local: the name typed into the form is
	// ignored (issue 10).
	c := api.NewClient(srv.addr, nil)
	moves, err := c.AliasHistory(context.Background(), st.Model, "champion")
	must(t, err)
	if len(moves) != 3 {
		t.Fatalf("champion moves: %+v; want the first promotion, the browser's override promotion and its rollback", moves)
	}
	pr, rb := moves[1], moves[2]
	if pr.Reason != st.PromoteReason || !pr.Override || pr.OverrideReason != st.OverrideReason || pr.Actor != "local" {
		t.Errorf("the browser's promotion: %+v", pr)
	}
	if rb.Action != "rollback" || rb.Reason != st.RollbackReason || rb.Actor != "local" {
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
		aps[0].State != "approved" || aps[0].DecidedBy != st.Approver || aps[0].DecisionReason != st.ApproveReason || aps[0].RequestedBy != "local" {
		t.Errorf("%s moves %+v, approvals %+v; want one move by the approval the browser requested as local and approved as %s", st.ApprovalAlias, chall, aps, st.Approver)
	}
	id, _ := sum.Actions["canceled"].(string)
	r, err := c.Run(context.Background(), id)
	must(t, err)
	if r.State != "canceled" {
		t.Errorf("the run cancelled from its page is %s", r.State)
	}
}
