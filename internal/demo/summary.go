package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/eval"
)

// trainWatts is the power assumed per busy core for the training energy
// estimate (the same default as the eval package's energy model).
const trainWatts = 10.0

func summary(w io.Writer, r api.Run, mv api.ModelVersion, rep api.EvalReportBody, reportPath string, took time.Duration) error {
	var m struct {
		Steps      int     `json:"steps"`
		TokensPerS float64 `json:"tokens_per_s"`
		ElapsedS   float64 `json:"elapsed_s"`
		Tokens     int64   `json:"tokens"`
	}
	if err := json.Unmarshal(r.Metrics, &m); err != nil {
		return fmt.Errorf("demo: run metrics: %w", err)
	}
	v, err := eval.ParseReport(rep.Report)
	if err != nil {
		return fmt.Errorf("demo: report: %w", err)
	}
	fmt.Fprintf(w, "\nSpamAssassin period 1, test split\n")
	fmt.Fprintf(w, "%-30s %9s %9s\n", "model", "macro-F1", "accuracy")
	for _, s := range v.Slices {
		if s.Slice == "all" && s.Classify != nil {
			fmt.Fprintf(w, "%-30s %9.4f %9.4f   (n=%d)\n", fmt.Sprintf("%s v%d (tailor-tiny + LoRA)", mv.Name, mv.Version), s.Classify.MacroF1, s.Classify.Accuracy, s.Classify.N)
		}
	}
	for _, b := range v.Baselines {
		fmt.Fprintf(w, "%-30s %9.4f %9.4f\n", "baseline "+b.Name, b.Metrics.MacroF1, b.Metrics.Accuracy)
	}
	verdict := "none"
	if v.Verdict != nil {
		verdict = "FAIL"
		if v.Verdict.Pass {
			verdict = "PASS"
		}
	}
	fmt.Fprintf(w, "\n%-28s %s\n", "gates", verdict)
	if v.Verdict != nil {
		for _, g := range v.Verdict.Gates {
			fmt.Fprintf(w, "%-28s %s\n", "", g.Reason)
		}
	}
	fmt.Fprintf(w, "%-28s %s v%d, aliases [%s]\n", "model version", mv.Name, mv.Version, strings.Join(mv.Aliases, ", "))
	fmt.Fprintf(w, "%-28s %d steps, %.1f s, %.0f tokens/s\n", "training", m.Steps, m.ElapsedS, m.TokensPerS)
	fmt.Fprintf(w, "%-28s %.2f Wh (%.0f W per core × 2 cores × %.0f s)\n", "training energy (estimate)", trainWatts*2*m.ElapsedS/3600, trainWatts, m.ElapsedS)
	if v.Cost != nil {
		fmt.Fprintf(w, "%-28s %.3f Wh, %.2g USD per 1k predictions\n", "inference energy", v.Cost.EnergyWhPer1k, v.Cost.CostPer1k)
	}
	fmt.Fprintf(w, "%-28s %s\n", "adapter", r.Result)
	fmt.Fprintf(w, "%-28s %s (tailor eval show %s@v%d)\n", "report", reportPath, mv.Name, mv.Version)
	fmt.Fprintf(w, "%-28s %.1f s\n", "demo wall time", took.Seconds())
	return nil
}
