package eval

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/reference"
)

func forgettingFixture(t *testing.T) ForgettingInput {
	return ForgettingInput{
		DatasetID: "spam-0123456789abcdef", Split: "test", ChampionID: "mv-champ",
		Candidate: loadPredictions(t, "testdata/forgetting/candidate.jsonl"),
		Champion:  loadPredictions(t, "testdata/forgetting/champion.jsonl"),
		Metric:    "macro_f1", Epsilon: 0.01, Bootstrap: BootstrapOptions{Seed: 20021010},
	}
}

func TestForgettingGate(t *testing.T) {
	base := forgettingFixture(t)
	tests := []struct {
		name    string
		edit    func(in *ForgettingInput)
		pass    bool
		wantErr string
	}{
		// The fixture's candidate is a little worse than the champion.
		{name: "worse beyond a tight epsilon", edit: func(in *ForgettingInput) {}, pass: false},
		{name: "within a generous epsilon", edit: func(in *ForgettingInput) { in.Epsilon = 0.5 }, pass: true},
		{name: "accuracy, generous epsilon", edit: func(in *ForgettingInput) { in.Metric, in.Epsilon = "accuracy", 0.5 }, pass: true},
		{name: "same model passes at epsilon 0", edit: func(in *ForgettingInput) {
			in.Champion, in.Epsilon = in.Candidate, 0
		}, pass: true},
		{name: "unknown metric", edit: func(in *ForgettingInput) { in.Metric = "ece" }, wantErr: "metric"},
		{name: "negative epsilon", edit: func(in *ForgettingInput) { in.Epsilon = -0.1 }, wantErr: "epsilon"},
		{name: "no records", edit: func(in *ForgettingInput) { in.Candidate, in.Champion = nil, nil }, wantErr: "no records"},
		{name: "champion misses a record", edit: func(in *ForgettingInput) { in.Champion = in.Champion[1:] }, wantErr: "champion"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.edit(&in)
			f, err := ForgettingGate(in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Gate.Pass != tc.pass {
				t.Errorf("pass %v, want %v: %s", f.Gate.Pass, tc.pass, f.Gate.Reason)
			}
			b := f.Gate.Bootstrap
			if b == nil || f.Gate.Observed != b.Lower || f.Gate.Threshold != -in.Epsilon || f.N != 40 {
				t.Fatalf("gate %+v", f.Gate)
			}
			if math.Abs(b.Delta-(f.Candidate-f.Champion)) > 1e-15 {
				t.Errorf("delta %v, want candidate %v − champion %v", b.Delta, f.Candidate, f.Champion)
			}
			if f.Gate.Pass != (b.Lower >= -in.Epsilon) {
				t.Errorf("pass %v but lower bound %v and epsilon %v", f.Gate.Pass, b.Lower, in.Epsilon)
			}
		})
	}
}

// TestForgettingInReport: Evaluate puts the forgetting gate in the verdict
// (failing it fails the report) and the section in the JSON and Markdown,
// which survive a round trip.
func TestForgettingInReport(t *testing.T) {
	in, opts := goldenInput(t)
	f := forgettingFixture(t)
	in.Forgetting = &f
	rep, err := Evaluate(in, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Forgetting == nil || rep.Verdict == nil {
		t.Fatal("no forgetting section or verdict")
	}
	last := rep.Verdict.Gates[len(rep.Verdict.Gates)-1]
	if last.Gate.Kind != GateForgetting || last.Pass || rep.Verdict.Pass {
		t.Fatalf("verdict %+v", rep.Verdict)
	}
	raw, err := rep.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	if back.Markdown() != rep.Markdown() || !strings.Contains(rep.Markdown(), "## Forgetting (spam-0123456789abcdef split test, 40 records)") {
		t.Errorf("markdown:\n%s", rep.Markdown())
	}
	// No other gates: the forgetting gate alone makes the verdict.
	opts.Gates = nil
	f.Epsilon = 0.5
	rep, err = Evaluate(in, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict == nil || !rep.Verdict.Pass || len(rep.Verdict.Gates) != 1 {
		t.Fatalf("verdict %+v", rep.Verdict)
	}
	golden := filepath.Join("testdata", "forgetting", "report.golden.md")
	if *update {
		if err := os.WriteFile(golden, []byte(rep.Markdown()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestForgettingInReport -update to create it)", err)
	}
	if !bytes.Equal(want, []byte(rep.Markdown())) {
		t.Errorf("%s differs; rerun with -update if intended:\n%s", golden, rep.Markdown())
	}
}

func TestBootstrapIndicesArePairedBootstrapDraws(t *testing.T) {
	f := forgettingFixture(t)
	champ, _ := alignChampion(f.Candidate, f.Champion)
	cs, ps := mustScore(t, f.Candidate), mustScore(t, champ)
	opts := BootstrapOptions{Seed: 3, Resamples: 200, Confidence: 0.9}
	var ds []float64
	for _, idx := range BootstrapIndices(cs.N(), opts) {
		a, _ := cs.Metric("accuracy", idx)
		b, _ := ps.Metric("accuracy", idx)
		ds = append(ds, a-b)
	}
	r, err := PairedBootstrap("accuracy", cs, ps, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := lowerQuantile(ds, opts.Confidence); got != r.Lower {
		t.Fatalf("lower bound from BootstrapIndices %v, PairedBootstrap %v", got, r.Lower)
	}
}

// TestForgettingBootstrapNumpy checks the forgetting gate's numbers against
// numpy on the same resample indices (drawn here, in Go): every resample's
// metric difference and the lower (1 − confidence) quantile agree to 1e-12.
func TestForgettingBootstrapNumpy(t *testing.T) {
	py := reference.Python(t, "numpy")
	// 3 classes, 120 records, candidate and champion with different errors.
	var cand, champ []Prediction
	labels := []string{"a", "b", "c"}
	x := uint64(99)
	next := func(n int) int { x = x*6364136223846793005 + 1442695040888963407; return int((x >> 33) % uint64(n)) }
	for i := range 120 {
		gold := labels[next(3)]
		out := func(p int) string {
			if next(10) < p {
				return labels[next(3)]
			}
			return gold
		}
		id := "r" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		cand = append(cand, Prediction{ID: id, Gold: gold, Output: out(4)})
		champ = append(champ, Prediction{ID: id, Gold: gold, Output: out(3)})
	}
	opts := BootstrapOptions{Seed: 20021010, Resamples: 400, Confidence: 0.95}
	idx := BootstrapIndices(len(cand), opts)
	code := func(ps []Prediction, col func(Prediction) string) []int {
		out := make([]int, len(ps))
		for i, p := range ps {
			out[i] = slices.Index(labels, col(p))
		}
		return out
	}
	gold := func(p Prediction) string { return p.Gold }
	output := func(p Prediction) string { return p.Output }
	payload, _ := json.Marshal(map[string]any{
		"gold": code(cand, gold), "cand": code(cand, output), "champ": code(champ, output),
		"idx": idx, "confidence": opts.Confidence,
	})
	dir := t.TempDir()
	in := filepath.Join(dir, "in.json")
	if err := os.WriteFile(in, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys, math
import numpy as np
d = json.load(open(sys.argv[1]))
gold, cand, champ = (np.array(d[k]) for k in ("gold", "cand", "champ"))
idx = np.array(d["idx"])
def acc(g, p): return float(np.mean(g == p))
def macro_f1(g, p):
    s, n = 0.0, 0
    for k in np.union1d(g, p):
        tp = np.sum((g == k) & (p == k)); gk = np.sum(g == k); pk = np.sum(p == k)
        if gk + pk == 0: continue
        s += 2.0 * tp / (gk + pk); n += 1
    return s / n if n else 0.0
out = {}
for name, f in (("accuracy", acc), ("macro_f1", macro_f1)):
    ds = np.array([f(gold[i], cand[i]) - f(gold[i], champ[i]) for i in idx])
    k = int(math.floor((1 - d["confidence"]) * len(ds) + 1e-9))
    out[name] = {"deltas": ds.tolist(), "lower": float(np.sort(ds)[k]), "delta": f(gold, cand) - f(gold, champ)}
json.dump(out, sys.stdout)
`
	cmd := exec.Command(py, "-c", script, in)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("numpy: %v", err)
	}
	var ref map[string]struct {
		Deltas []float64 `json:"deltas"`
		Lower  float64   `json:"lower"`
		Delta  float64   `json:"delta"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	cs, ps := mustScore(t, cand), mustScore(t, champ)
	for _, metric := range ForgettingMetrics {
		t.Run(metric, func(t *testing.T) {
			want := ref[metric]
			if len(want.Deltas) != len(idx) {
				t.Fatalf("numpy returned %d deltas, want %d", len(want.Deltas), len(idx))
			}
			for b, ix := range idx {
				a, _ := cs.Metric(metric, ix)
				c, _ := ps.Metric(metric, ix)
				if math.Abs((a-c)-want.Deltas[b]) > 1e-12 {
					t.Fatalf("resample %d: go delta %v, numpy %v", b, a-c, want.Deltas[b])
				}
			}
			f, err := ForgettingGate(ForgettingInput{DatasetID: "d", Split: "test", Candidate: cand, Champion: champ, Metric: metric,
				Epsilon: 0.01, Bootstrap: opts})
			if err != nil {
				t.Fatal(err)
			}
			b := f.Gate.Bootstrap
			if math.Abs(b.Lower-want.Lower) > 1e-12 || math.Abs(b.Delta-want.Delta) > 1e-12 {
				t.Errorf("go delta %v lower %v; numpy delta %v lower %v", b.Delta, b.Lower, want.Delta, want.Lower)
			}
			t.Logf("%s: delta %+.4f, 95%% lower bound %+.4f (numpy %+.4f)", metric, b.Delta, b.Lower, want.Lower)
		})
	}
}
