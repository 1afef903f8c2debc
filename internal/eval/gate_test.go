package eval

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// gatePreds: accuracy 0.6, macro-F1 (0.5+0.8+0)/3, latencies 10..50 ms,
// 0.5 CPU-s each.
func gatePreds() []Prediction {
	gold := []string{"a", "a", "b", "b", "c"}
	pred := []string{"a", "b", "b", "b", "a"}
	out := labelled(gold, pred)
	for i := range out {
		out[i].ID = string(rune('p' + i))
		out[i].Latency = time.Duration(10*(i+1)) * time.Millisecond
		out[i].CPUSeconds = 0.5
		out[i].Fields = map[string]string{"src": []string{"web", "app"}[i%2]}
	}
	return out
}

func TestGatesVerdict(t *testing.T) {
	tests := []struct {
		name   string
		gates  []Gate
		pass   bool
		reason []string
	}{
		{
			name:   "threshold fails",
			gates:  []Gate{{Kind: GateThreshold, Metric: "macro_f1", Op: ">=", Value: 0.9}},
			reason: []string{"macro_f1 0.433 >= 0.900: fail"},
		},
		{
			name: "all pass",
			gates: []Gate{
				{Kind: GateThreshold, Metric: "accuracy", Op: ">", Value: 0.5},
				{Kind: GateThreshold, Metric: "accuracy", Op: "<", Value: 0.7},
				{Kind: GateThreshold, Metric: "accuracy", Op: ">=", Value: 0.5, Slice: "src=app"},
				{Kind: GateLatency, Metric: "p95_ms", Value: 50},
				{Kind: GateCost, Metric: "energy_wh_per_1k", Value: 2},
			},
			pass: true,
			reason: []string{
				"accuracy 0.600 > 0.500: pass", "accuracy 0.600 < 0.700: pass",
				"accuracy [src=app] 0.500 >= 0.500: pass",
				"p95_ms 48.000 ms <= 50.000 ms: pass", "energy_wh_per_1k 1.389 Wh <= 2.000 Wh: pass",
			},
		},
		{
			name: "one ceiling fails the verdict",
			gates: []Gate{
				{Kind: GateThreshold, Metric: "accuracy", Op: ">=", Value: 0.5},
				{Kind: GateLatency, Metric: "p50_ms", Value: 20},
				{Kind: GateCost, Metric: "cost_per_1k", Value: 0.0001},
			},
			reason: []string{"accuracy 0.600 >= 0.500: pass", "p50_ms 30.000 ms <= 20.000 ms: fail", "cost_per_1k 0.000208 USD <= 0.0001 USD: fail"},
		},
		{
			name:   "not worse than itself",
			gates:  []Gate{{Kind: GateNotWorse, Metric: "macro_f1", Epsilon: 0}},
			pass:   true,
			reason: []string{"macro_f1 vs champion: delta +0.000, 95% lower bound +0.000 >= +0.000: pass"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			preds := gatePreds()
			rep, err := Evaluate(Input{Candidate: preds, Champion: gatePreds()}, Options{Slicers: []Slicer{ByField("src")}, Gates: tc.gates})
			if err != nil {
				t.Fatal(err)
			}
			v := rep.Verdict
			if v.Pass != tc.pass {
				t.Errorf("verdict pass %v, want %v: %+v", v.Pass, tc.pass, v.Gates)
			}
			for i, g := range v.Gates {
				if g.Reason != tc.reason[i] {
					t.Errorf("gate %d reason %q, want %q", i, g.Reason, tc.reason[i])
				}
				if g.Pass != strings.HasSuffix(g.Reason, ": pass") {
					t.Errorf("gate %d: pass %v disagrees with reason %q", i, g.Pass, g.Reason)
				}
			}
		})
	}
}

func TestClearlyWorseCandidateFailsNotWorse(t *testing.T) {
	cand, champ := accuracyPreds(300, 0.6, 7), accuracyPreds(300, 0.8, 13)
	gates := []Gate{{Kind: GateNotWorse, Metric: "accuracy", Epsilon: 0.02}}
	rep, err := Evaluate(Input{Candidate: cand, Champion: champ}, Options{Gates: gates, Bootstrap: BootstrapOptions{Seed: 3}})
	if err != nil {
		t.Fatal(err)
	}
	g := rep.Verdict.Gates[0]
	if rep.Verdict.Pass || g.Pass || g.Bootstrap == nil || g.Bootstrap.Delta > -0.1 {
		t.Errorf("worse candidate: %+v", g)
	}
	rep, err = Evaluate(Input{Candidate: champ, Champion: cand}, Options{Gates: gates, Bootstrap: BootstrapOptions{Seed: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Verdict.Pass {
		t.Errorf("better candidate failed: %+v", rep.Verdict.Gates[0])
	}
}

// A gate's own confidence overrides the bootstrap's for that gate only:
// the same resamples give a higher lower bound at 80 % than at 95 %.
func TestNotWorseGateConfidence(t *testing.T) {
	cand, champ := accuracyPreds(70, 0.8, 7), accuracyPreds(70, 0.8, 13)
	gates := []Gate{{Kind: GateNotWorse, Metric: "accuracy", Epsilon: 0.05}, {Kind: GateNotWorse, Metric: "accuracy", Epsilon: 0.05, Confidence: 0.8}}
	rep, err := Evaluate(Input{Candidate: cand, Champion: champ}, Options{Gates: gates, Bootstrap: BootstrapOptions{Seed: 3}})
	if err != nil {
		t.Fatal(err)
	}
	at95, at80 := rep.Verdict.Gates[0], rep.Verdict.Gates[1]
	if at95.Bootstrap.Confidence != 0.95 || at80.Bootstrap.Confidence != 0.8 || at80.Bootstrap.Delta != at95.Bootstrap.Delta ||
		!(at80.Observed > at95.Observed) || !strings.Contains(at80.Reason, "80% lower bound") {
		t.Fatalf("95 %%: %+v\n80 %%: %+v", at95, at80)
	}
}

func TestGateErrors(t *testing.T) {
	noLatency := labelled([]string{"a", "b"}, []string{"a", "a"})
	tests := []struct {
		name string
		in   Input
		gate Gate
		want string
	}{
		{"bad op", Input{Candidate: gatePreds()}, Gate{Kind: GateThreshold, Metric: "accuracy", Op: "=>", Value: 1}, `op "=>"`},
		{"unknown metric", Input{Candidate: gatePreds()}, Gate{Kind: GateThreshold, Metric: "bleu", Op: ">=", Value: 1}, `metric "bleu"`},
		{"unknown slice", Input{Candidate: gatePreds()}, Gate{Kind: GateThreshold, Metric: "accuracy", Op: ">=", Slice: "src=tv"}, `no slice "src=tv"`},
		{"unknown kind", Input{Candidate: gatePreds()}, Gate{Kind: "vibes", Metric: "accuracy"}, `kind "vibes"`},
		{"no champion", Input{Candidate: gatePreds()}, Gate{Kind: GateNotWorse, Metric: "accuracy"}, "no champion"},
		{"negative epsilon", Input{Candidate: gatePreds(), Champion: gatePreds()}, Gate{Kind: GateNotWorse, Metric: "accuracy", Epsilon: -1}, "epsilon -1"},
		{"no latencies", Input{Candidate: noLatency}, Gate{Kind: GateLatency, Metric: "p95_ms", Value: 1}, "no latencies"},
		{"latency metric", Input{Candidate: gatePreds()}, Gate{Kind: GateLatency, Metric: "p90_ms", Value: 1}, `metric "p90_ms"`},
		{"ceiling op", Input{Candidate: gatePreds()}, Gate{Kind: GateCost, Metric: "cost_per_1k", Op: ">=", Value: 1}, "ceiling"},
		{"no cpu", Input{Candidate: noLatency}, Gate{Kind: GateCost, Metric: "cost_per_1k", Value: 1}, "no CPU seconds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Evaluate(tc.in, Options{Slicers: []Slicer{ByField("src")}, Gates: []Gate{{Kind: GateThreshold, Metric: "accuracy", Op: ">=", Value: 0}, tc.gate}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "gate 1 (") {
				t.Fatalf("error %v, want one naming gate 1 and containing %q", err, tc.want)
			}
			if !errors.Is(err, errs.ErrInvalid) {
				t.Errorf("error kind %s, want invalid", errs.Kind(err))
			}
		})
	}
}

func TestEvaluateInputErrors(t *testing.T) {
	champMissing := gatePreds()
	champMissing[2].ID = "zz"
	champGold := gatePreds()
	champGold[0].Gold = "c"
	partialLatency := gatePreds()
	partialLatency[3].Latency = 0
	tests := []struct {
		name string
		in   Input
		opts Options
		want string
	}{
		{"no predictions", Input{}, Options{}, "candidate: classification metrics: no predictions"},
		{"champion length", Input{Candidate: gatePreds(), Champion: gatePreds()[:2]}, Options{Gates: []Gate{{Kind: GateNotWorse, Metric: "accuracy"}}}, "champion: 2 predictions, candidate has 5"},
		{"champion id", Input{Candidate: gatePreds(), Champion: champMissing}, Options{Gates: []Gate{{Kind: GateNotWorse, Metric: "accuracy"}}}, `id "r" has no champion prediction`},
		{"champion gold", Input{Candidate: gatePreds(), Champion: champGold}, Options{Gates: []Gate{{Kind: GateNotWorse, Metric: "accuracy"}}}, `example "p": candidate gold "a" differs from champion gold "c"`},
		{"partial latency", Input{Candidate: partialLatency}, Options{}, `prediction 3 (id "s"): latency 0s`},
		{"bad task", Input{Candidate: gatePreds()}, Options{Task: "rank"}, `task "rank"`},
		{"reserved slicer", Input{Candidate: gatePreds()}, Options{Slicers: []Slicer{ByField("all")}}, "reserved"},
		{"baselines on generate", Input{Candidate: gatePreds(), Train: synthText(1, 5), Test: synthText(2, 5)}, Options{Task: TaskGenerate}, "only the classify task"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Evaluate(tc.in, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error %v, want an invalid error containing %q", err, tc.want)
			}
		})
	}
}

func TestEvaluateGenerateSlices(t *testing.T) {
	preds := []Prediction{
		{Gold: "yes", Output: "yes", Fields: map[string]string{"kind": "bool"}},
		{Gold: "no", Output: "No.", Fields: map[string]string{"kind": "bool"}},
		{Gold: `{"n":1}`, Output: `{"n":1}`, Fields: map[string]string{"kind": "json"}},
		{Gold: "x", Output: "y"}, // no kind: only in "all"
	}
	rep, err := Evaluate(Input{Candidate: preds}, Options{
		Task: TaskGenerate, Slicers: []Slicer{ByField("kind")},
		Gates: []Gate{{Kind: GateThreshold, Metric: "exact_match", Op: ">=", Value: 1, Slice: "kind=json"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rep.Slices {
		names = append(names, s.Slice)
	}
	if strings.Join(names, ",") != "all,kind=bool,kind=json" {
		t.Errorf("slices %v", names)
	}
	if all, _ := rep.Slice("all"); all.N != 4 || all.Generate.ExactMatch != 0.5 {
		t.Errorf("all: %+v", all.Generate)
	}
	if b, _ := rep.Slice("kind=bool"); b.N != 2 || b.Generate.TokenF1 != 1 || b.Generate.ExactMatch != 0.5 {
		t.Errorf("kind=bool: %+v", b.Generate)
	}
	if !rep.Verdict.Pass {
		t.Errorf("verdict: %+v", rep.Verdict)
	}
}
