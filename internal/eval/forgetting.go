package eval

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/tailor-ml/tailor/internal/errs"
)

// GateForgetting is the gate of an incremental run: the candidate is not
// worse than the model it started from on that model's own test split by
// more than Epsilon, by the paired bootstrap rule of PairedBootstrap. It is
// not written in Options.Gates: Evaluate adds it when Input.Forgetting is
// set.
const GateForgetting GateKind = "forgetting"

// ForgettingMetrics are the metrics a forgetting gate may compare.
var ForgettingMetrics = []string{"accuracy", "macro_f1"}

// ForgettingInput is what a forgetting gate looks at: the candidate and the
// champion (the model the candidate was trained from) on the same records
// of the champion's earlier test split, paired by ID (or by position when
// the candidate has no IDs).
type ForgettingInput struct {
	DatasetID  string
	Split      string
	Candidate  []Prediction
	Champion   []Prediction
	ChampionID string
	Metric     string  // accuracy or macro_f1
	Epsilon    float64 // allowed loss, ≥ 0
	Bootstrap  BootstrapOptions
}

// Forgetting is the forgetting section of a report: both models' metric on
// the earlier split and the gate's outcome (its Bootstrap holds the delta
// and the lower bound).
type Forgetting struct {
	DatasetID  string     `json:"dataset_id"`
	Split      string     `json:"split"`
	ChampionID string     `json:"champion_id,omitempty"`
	N          int        `json:"n"`
	Metric     string     `json:"metric"`
	Candidate  float64    `json:"candidate"`
	Champion   float64    `json:"champion"`
	Gate       GateResult `json:"gate"`
}

// ForgettingGate decides the forgetting gate: draw Bootstrap.Resamples
// resamples of the paired records (BootstrapIndices), compute the metric
// difference candidate − champion on each, and pass when the lower
// (1 − Confidence) quantile of the differences is ≥ −Epsilon.
func ForgettingGate(in ForgettingInput) (Forgetting, error) {
	switch {
	case !slices.Contains(ForgettingMetrics, in.Metric):
		return Forgetting{}, errs.Invalid("forgetting gate: metric %q, want one of %v", in.Metric, ForgettingMetrics)
	case !(in.Epsilon >= 0) || math.IsInf(in.Epsilon, 0):
		return Forgetting{}, errs.Invalid("forgetting gate: epsilon %v, want a finite number ≥ 0", in.Epsilon)
	case len(in.Candidate) == 0:
		return Forgetting{}, errs.Invalid("forgetting gate: dataset %s split %q has no records to compare on", in.DatasetID, in.Split)
	}
	champ, err := alignChampion(in.Candidate, in.Champion)
	if err != nil {
		return Forgetting{}, fmt.Errorf("forgetting gate: %w", err)
	}
	cs, err := Score(TaskClassify, in.Candidate, GenOptions{})
	if err != nil {
		return Forgetting{}, fmt.Errorf("forgetting gate: candidate: %w", err)
	}
	ps, err := Score(TaskClassify, champ, GenOptions{})
	if err != nil {
		return Forgetting{}, fmt.Errorf("forgetting gate: champion: %w", err)
	}
	all := identity(cs.N())
	out := Forgetting{DatasetID: in.DatasetID, Split: in.Split, ChampionID: in.ChampionID, N: cs.N(), Metric: in.Metric}
	if out.Candidate, err = cs.Metric(in.Metric, all); err != nil {
		return Forgetting{}, err
	}
	if out.Champion, err = ps.Metric(in.Metric, all); err != nil {
		return Forgetting{}, err
	}
	b, err := PairedBootstrap(in.Metric, cs, ps, in.Bootstrap)
	if err != nil {
		return Forgetting{}, fmt.Errorf("forgetting gate: %w", err)
	}
	pass := b.Lower >= -in.Epsilon
	g := Gate{Kind: GateForgetting, Metric: in.Metric, Epsilon: in.Epsilon}
	out.Gate = GateResult{Gate: g, Observed: b.Lower, Threshold: -in.Epsilon, Pass: pass, Bootstrap: &b,
		Reason: fmt.Sprintf("forgetting: %s on %s@%s (%d records) %s vs champion %s: delta %s, %s%% lower bound %s >= %s: %s",
			in.Metric, short(in.DatasetID), in.Split, out.N, fmtNum(out.Candidate), fmtNum(out.Champion), fmtSigned(b.Delta),
			strconv.FormatFloat(100*b.Confidence, 'g', -1, 64), fmtSigned(b.Lower), fmtSigned(-in.Epsilon), passWord(pass))}
	return out, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
