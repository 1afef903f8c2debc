package eval

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/tailor-ml/tailor/internal/errs"
)

// GateKind says how a gate decides.
type GateKind string

// Gate kinds.
const (
	// GateThreshold: the slice metric compared with Value by Op.
	GateThreshold GateKind = "threshold"
	// GateNotWorse: the candidate is not worse than the champion on Metric
	// by more than Epsilon, by the paired bootstrap rule of PairedBootstrap.
	GateNotWorse GateKind = "not_worse"
	// GateLatency: a latency figure (p50_ms, p95_ms, p99_ms, mean_ms,
	// max_ms) is at most Value.
	GateLatency GateKind = "latency"
	// GateCost: a cost figure per 1k predictions (cost_per_1k,
	// energy_wh_per_1k, cpu_seconds_per_1k) is at most Value.
	GateCost GateKind = "cost"
)

// Gate is one promotion condition.
type Gate struct {
	Kind    GateKind `json:"kind"`
	Metric  string   `json:"metric"`
	Op      string   `json:"op,omitempty"`      // threshold: >=, <=, > or <
	Value   float64  `json:"value"`             // threshold or ceiling
	Epsilon float64  `json:"epsilon,omitempty"` // not_worse: allowed loss, ≥ 0
	// Confidence (not_worse) overrides the bootstrap's confidence for
	// this gate; 0 keeps the input's (default 0.95).
	Confidence float64 `json:"confidence,omitempty"`
	Slice      string  `json:"slice,omitempty"` // threshold, not_worse; default "all"
}

// GateResult is one gate's outcome. For not_worse, Observed is the
// bootstrap lower bound of the delta and Threshold is −Epsilon.
type GateResult struct {
	Gate      Gate             `json:"gate"`
	Observed  float64          `json:"observed"`
	Threshold float64          `json:"threshold"`
	Pass      bool             `json:"pass"`
	Reason    string           `json:"reason"`
	Bootstrap *BootstrapResult `json:"bootstrap,omitempty"`
}

// Verdict is the promotion decision: it passes only if every gate passes.
type Verdict struct {
	Pass  bool         `json:"pass"`
	Gates []GateResult `json:"gates"`
}

// GateInput is what the gates look at. Champion and SliceIndex are needed
// only by not_worse gates; SliceIndex maps a slice name to example indices
// (nil: only "all").
type GateInput struct {
	Report     *Report
	Candidate  *Scores
	Champion   *Scores
	SliceIndex map[string][]int
	Bootstrap  BootstrapOptions
}

var gateOps = []string{">=", "<=", ">", "<"}

// Decide evaluates every gate. A gate that cannot be evaluated (unknown
// metric or slice, no champion, no latencies) is an error naming the gate,
// not a failing gate: it is a configuration mistake.
func Decide(gates []Gate, in GateInput) (Verdict, error) {
	v := Verdict{Pass: true}
	for i, g := range gates {
		r, err := decide(g, in)
		if err != nil {
			return Verdict{}, errs.Invalid("gate %d (%s %s): %v", i, g.Kind, g.Metric, err)
		}
		v.Pass = v.Pass && r.Pass
		v.Gates = append(v.Gates, r)
	}
	return v, nil
}

func decide(g Gate, in GateInput) (GateResult, error) {
	if g.Slice == "" {
		g.Slice = SliceAll
	}
	if math.IsNaN(g.Value) || math.IsInf(g.Value, 0) {
		return GateResult{}, fmt.Errorf("value %v, want a finite number", g.Value)
	}
	switch g.Kind {
	case GateThreshold:
		return thresholdGate(g, in.Report)
	case GateNotWorse:
		return notWorseGate(g, in)
	case GateLatency, GateCost:
		return ceilingGate(g, in.Report)
	}
	return GateResult{}, fmt.Errorf("kind %q, want threshold, not_worse, latency or cost", g.Kind)
}

func thresholdGate(g Gate, rep *Report) (GateResult, error) {
	if !slices.Contains(gateOps, g.Op) {
		return GateResult{}, fmt.Errorf("op %q, want one of %v", g.Op, gateOps)
	}
	sm, ok := rep.Slice(g.Slice)
	if !ok {
		return GateResult{}, fmt.Errorf("no slice %q in the report", g.Slice)
	}
	obs, ok := sm.Value(g.Metric)
	if !ok {
		return GateResult{}, fmt.Errorf("metric %q not computed for this task and these predictions", g.Metric)
	}
	pass := compare(obs, g.Op, g.Value)
	name := g.Metric
	if g.Slice != SliceAll {
		name += " [" + g.Slice + "]"
	}
	return GateResult{
		Gate: g, Observed: obs, Threshold: g.Value, Pass: pass,
		Reason: fmt.Sprintf("%s %s %s %s: %s", name, fmtNum(obs), g.Op, fmtNum(g.Value), passWord(pass)),
	}, nil
}

func compare(a float64, op string, b float64) bool {
	switch op {
	case ">=":
		return a >= b
	case "<=":
		return a <= b
	case ">":
		return a > b
	}
	return a < b
}

func notWorseGate(g Gate, in GateInput) (GateResult, error) {
	if in.Champion == nil {
		return GateResult{}, fmt.Errorf("no champion predictions to compare with")
	}
	if !(g.Epsilon >= 0) || math.IsInf(g.Epsilon, 0) {
		return GateResult{}, fmt.Errorf("epsilon %v, want a finite number ≥ 0", g.Epsilon)
	}
	cand, champ := in.Candidate, in.Champion
	if g.Slice != SliceAll {
		idx, ok := in.SliceIndex[g.Slice]
		if !ok {
			return GateResult{}, fmt.Errorf("no slice %q", g.Slice)
		}
		cand, champ = cand.subset(idx), champ.subset(idx)
	}
	opts := in.Bootstrap
	if g.Confidence != 0 {
		opts.Confidence = g.Confidence
	}
	b, err := PairedBootstrap(g.Metric, cand, champ, opts)
	if err != nil {
		return GateResult{}, err
	}
	pass := b.Lower >= -g.Epsilon
	name := g.Metric
	if g.Slice != SliceAll {
		name += " [" + g.Slice + "]"
	}
	return GateResult{
		Gate: g, Observed: b.Lower, Threshold: -g.Epsilon, Pass: pass, Bootstrap: &b,
		Reason: fmt.Sprintf("%s vs champion: delta %s, %s%% lower bound %s >= %s: %s",
			name, fmtSigned(b.Delta), strconv.FormatFloat(100*b.Confidence, 'g', -1, 64), fmtSigned(b.Lower), fmtSigned(-g.Epsilon), passWord(pass)),
	}, nil
}

func ceilingGate(g Gate, rep *Report) (GateResult, error) {
	if g.Op != "" && g.Op != "<=" {
		return GateResult{}, fmt.Errorf("op %q: a %s gate is a ceiling (<=)", g.Op, g.Kind)
	}
	g.Op = "<="
	var obs float64
	var unit string
	switch g.Kind {
	case GateLatency:
		l := rep.Latency
		if l == nil {
			return GateResult{}, fmt.Errorf("the predictions carry no latencies")
		}
		m := map[string]float64{"p50_ms": l.P50Ms, "p95_ms": l.P95Ms, "p99_ms": l.P99Ms, "mean_ms": l.MeanMs, "max_ms": l.MaxMs}
		v, ok := m[g.Metric]
		if !ok {
			return GateResult{}, fmt.Errorf("metric %q, want one of %v", g.Metric, sortedKeys(m))
		}
		obs, unit = v, " ms"
	default:
		c := rep.Cost
		if c == nil {
			return GateResult{}, fmt.Errorf("the predictions carry no CPU seconds")
		}
		m := map[string]float64{"cost_per_1k": c.CostPer1k, "energy_wh_per_1k": c.EnergyWhPer1k, "cpu_seconds_per_1k": c.CPUSecondsPer1k}
		v, ok := m[g.Metric]
		if !ok {
			return GateResult{}, fmt.Errorf("metric %q, want one of %v", g.Metric, sortedKeys(m))
		}
		obs = v
		unit = map[string]string{"cost_per_1k": " " + c.Model.Currency, "energy_wh_per_1k": " Wh", "cpu_seconds_per_1k": " s"}[g.Metric]
	}
	pass := obs <= g.Value
	return GateResult{
		Gate: g, Observed: obs, Threshold: g.Value, Pass: pass,
		Reason: fmt.Sprintf("%s %s%s <= %s%s: %s", g.Metric, fmtNum(obs), unit, fmtNum(g.Value), unit, passWord(pass)),
	}, nil
}

// subset returns the scores of the examples idx, in that order.
func (s *Scores) subset(idx []int) *Scores {
	out := &Scores{task: s.task, n: len(idx)}
	if c := s.cls; c != nil {
		d := &classData{labels: c.labels, hasProbs: c.hasProbs}
		for _, i := range idx {
			d.gold, d.pred = append(d.gold, c.gold[i]), append(d.pred, c.pred[i])
			if c.hasProbs {
				d.conf, d.topOK, d.pGold = append(d.conf, c.conf[i]), append(d.topOK, c.topOK[i]), append(d.pGold, c.pGold[i])
			}
		}
		out.cls = d
		return out
	}
	d := &genData{n: len(idx), scores: map[string][]float64{}}
	for name, v := range s.gen.scores {
		for _, i := range idx {
			d.scores[name] = append(d.scores[name], v[i])
		}
	}
	out.gen = d
	return out
}

func passWord(ok bool) string {
	if ok {
		return "pass"
	}
	return "fail"
}

// fmtNum formats a number for reasons and Markdown: three decimals, or
// three significant digits for magnitudes below 0.01. It first rounds to
// JSONDigits significant digits, as the report's JSON does, so a report
// renders the same before and after a JSON round trip.
func fmtNum(v float64) string {
	v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', JSONDigits, 64), 64)
	if v == 0 {
		v = 0 // no "-0.000"
	}
	if v != 0 && math.Abs(v) < 0.01 {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func fmtSigned(v float64) string {
	if v >= 0 {
		return "+" + fmtNum(v)
	}
	return fmtNum(v)
}
