package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/store"
)

// The usage and run resume commands against a real server over a store
// holding metered usage: the table, JSON, the exit codes of bad input, and
// usage read only in the project the request acts in.
func TestUsageCommands(t *testing.T) {
	a, err := app.Open(app.Options{DataDir: t.TempDir(), EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Auth: a.Authority(auth.Options{InsecureLocal: true}), Service: a}))
	defer func() {
		srv.Close()
		a.Close()
	}()
	ctx := context.Background()
	if _, err := a.Store().SaveRunUsage(ctx, store.RunUsage{RunID: "run-1", Project: "default", Model: "spam", Day: "2026-12-06", CPUSeconds: 90,
		WallSeconds: 45, FLOPs: 6e12, PeakRSSBytes: 512 << 20, EnergyKWh: 0.00025, EnergySource: "estimated", CostUSD: 0.0011}); err != nil {
		t.Fatal(err)
	}
	if err := a.Store().AddRequestUsage(ctx, []store.RequestUsage{{Project: "default", Model: "chat", Day: "2026-12-07", Requests: 3,
		TokensIn: 30, TokensOut: 60, LatencyMSSum: 300, LatencyMSMax: 150, EnergyKWh: 1e-5, EnergySource: "estimated", CostUSD: 1e-5}}); err != nil {
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
		{[]string{"usage", "--by", "model"}, ExitOK, "MODEL", ""},
		{[]string{"usage", "--by", "project"}, ExitOK, "default", ""},
		{[]string{"usage", "--by", "project", "--project", "team-b"}, ExitForbidden, "", `no role in project "team-b"`},
		{[]string{"usage", "--by", "day", "--from", "2026-12-07"}, ExitOK, "2026-12-07", ""},
		{[]string{"usage", "--by", "week"}, ExitInvalid, "", `by="week": want project, model or day`},
		{[]string{"usage", "--by", "day", "--from", "yesterday"}, ExitInvalid, "", "from="},
		{[]string{"usage"}, ExitUsage, "", "--by"},
		{[]string{"run", "resume", "run-1"}, ExitUsage, "", "raise at least one"},
		{[]string{"run", "resume", "run-nope", "--max-steps", "5"}, ExitNotFound, "", "run-nope"},
		{[]string{"run", "resume", "run-nope", "--max-duration", "soon"}, ExitInvalid, "", "max_duration"},
	}
	for _, tc := range tests {
		code, out, errOut := run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.err) {
			t.Errorf("tailor %s = %d\nstdout %q\nstderr %q\nwant %d, %q, %q", strings.Join(tc.args, " "), code, out, errOut, tc.code, tc.out, tc.err)
		}
	}
	// The table has a row per model and a total; --json is --output json.
	_, out, _ := run("usage", "--by", "model")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(strings.TrimSpace(lines[1]), "chat") || !strings.HasPrefix(strings.TrimSpace(lines[2]), "spam") ||
		!strings.HasPrefix(strings.TrimSpace(lines[3]), "total") || !strings.Contains(lines[2], "estimated") {
		t.Errorf("table:\n%s", out)
	}
	// Another project's usage is not counted in this one's.
	if err := a.Store().AddRequestUsage(ctx, []store.RequestUsage{{Project: "team-b", Model: "spam", Day: "2026-12-07", Requests: 5,
		TokensIn: 50, TokensOut: 50, EnergySource: "estimated"}}); err != nil {
		t.Fatal(err)
	}
	if _, out, _ := run("usage", "--by", "project"); strings.Contains(out, "team-b") {
		t.Errorf("usage in project default shows team-b:\n%s", out)
	}
	for _, flag := range []string{"--json", "--output=json"} {
		_, out, _ = run("usage", "--by", "model", flag)
		var rep api.UsageReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Rows) != 2 || rep.Total.Runs != 1 || rep.Total.Requests != 3 ||
			rep.Rows[1].FLOPs != 6e12 || rep.Rows[0].TokensOut != 60 {
			t.Errorf("usage %s = %s (%v)", flag, out, err)
		}
	}
}
