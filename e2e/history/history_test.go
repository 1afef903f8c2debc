package history

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

var (
	flagClients = flag.Int("clients", 0, "history: concurrent clients (0: the test's default)")
	flagOps     = flag.Int("ops", 0, "history: operations per client (0: the test's default)")
	flagSeed    = flag.Int64("seed", 1, "history: seed of the clients' and the killer's RNGs")
	flagKills   = flag.Int("kills", -1, "history: SIGKILLs in the kill -9 history (-1: the test's default)")
)

// orFlag returns the flag's value when set (>= min), else def.
func orFlag(v, min, def int) int {
	if v >= min {
		return v
	}
	return def
}

// TestHistory drives a real server with 16 clients × 200 operations, once
// undisturbed and once with the server killed (SIGKILL) and restarted at
// seeded points, and checks the history against the final state.
func TestHistory(t *testing.T) {
	for _, tc := range []struct {
		name     string
		kills    int
		readBack int // versions per dataset read back; 0: all
	}{
		// Without faults a sample suffices; after kills every version is
		// read back, to prove nothing was left half-written.
		{"no-faults", 0, 100},
		{"kill-9", orFlag(*flagKills, 0, 4), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runHistory(t, config{
				Clients: orFlag(*flagClients, 1, 16), Ops: orFlag(*flagOps, 1, 200), Seed: *flagSeed, Kills: tc.kills,
				Datasets: 4, Recipes: 2, ReadBack: tc.readBack,
			})
		})
	}
}

// runHistory runs one history and fails the test with its anomalies.
func runHistory(t *testing.T, cfg config) Result {
	dataDir, w := template(t)
	srv := startServer(t, dataDir)
	d := newDriver(cfg, srv, w)
	ctx := context.Background()
	start := time.Now()
	if err := d.run(ctx); err != nil {
		t.Fatalf("killer: %v", err)
	}
	elapsed := time.Since(start)
	f, err := d.final(ctx)
	if err != nil {
		t.Fatalf("read final state: %v", err)
	}
	r := Check(d.history, f)
	if cfg.Kills == 0 {
		// Without faults nothing may be indeterminate: a 5xx is a bug.
		for _, op := range d.history {
			if op.Outcome == Unknown {
				r.Anomalies = append(r.Anomalies, fmt.Sprintf("indeterminate without a fault: %s: %s", op, op.Err))
			}
		}
	}
	t.Logf("seed %d, %d clients × %d ops, %d kills, history in %s, check after %s", cfg.Seed, cfg.Clients, cfg.Ops, srv.Kills,
		elapsed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	t.Logf("Operations %d, Acknowledged %d, Conflicts %d, Rejected %d, Indeterminate %d, skipped (read failed) %d, Anomalies %d",
		r.Operations, r.Acknowledged, r.Conflicts, r.Rejected, r.Indeterminate, d.skipped.Load(), len(r.Anomalies))
	t.Logf("by kind: %v", r.ByKind)
	t.Logf("checked: %v", r.Checked)
	if r.Rejected > 0 && len(r.Anomalies) == 0 {
		// A 4xx other than 409 is a definite refusal the workload did not
		// expect; say which, so it can be told from a bug.
		logRefusals(t, d.history)
	}
	if len(r.Anomalies) > 0 {
		const show = 60
		list := r.Anomalies
		if len(list) > show {
			list = append(list[:show:show], fmt.Sprintf("… and %d more", len(r.Anomalies)-show))
		}
		t.Errorf("%d anomalies:\n%s", len(r.Anomalies), strings.Join(list, "\n"))
		t.Logf("anomalies by shape:\n%s", shapes(r.Anomalies))
		logRefusals(t, d.history)
	}
	return r
}

// logRefusals logs one example error per kind and status, to tell a
// refusal the model allows from one it does not.
func logRefusals(t *testing.T, h []Op) {
	seen := map[string]bool{}
	for _, op := range h {
		if op.Outcome == OK {
			continue
		}
		k := fmt.Sprintf("%s/%s/%d", op.Kind, op.Outcome, op.Status)
		if seen[k] {
			continue
		}
		seen[k] = true
		t.Logf("example %s: %s", k, op.Err)
	}
}

var (
	reOp     = regexp.MustCompile(`\(client .*\)$`)
	reID     = regexp.MustCompile(`[0-9a-f]{12,}|run-[0-9a-f]+|c\d+-o\d+(-r\d+)?`)
	reNumber = regexp.MustCompile(`\d+`)
)

// shapes counts anomalies by their text with ids and numbers blanked, so
// thousands of lost records read as one line.
func shapes(anomalies []string) string {
	n := map[string]int{}
	for _, a := range anomalies {
		a = reOp.ReplaceAllString(a, "(op)")
		a = reID.ReplaceAllString(a, "ID")
		n[reNumber.ReplaceAllString(a, "N")]++
	}
	var lines []string
	for s, k := range n {
		lines = append(lines, fmt.Sprintf("%6d × %s", k, s))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
