package eval

import (
	"fmt"
	"strings"
)

// Markdown renders the report for people: inputs, verdict with one line per
// gate, metrics per slice, per-class scores and the confusion matrix of
// "all", latency, cost and baselines. Numbers use three decimals (three
// significant digits below 0.01).
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Eval report: %s\n\n", mdCell(r.Inputs.ModelID))
	r.mdInputs(&b)
	if v := r.Verdict; v != nil {
		fmt.Fprintf(&b, "## Verdict: %s\n\n", strings.ToUpper(passWord(v.Pass)))
		mdRow(&b, "gate", "observed", "threshold", "result", "reason")
		mdRow(&b, "---", "---:", "---:", "---", "---")
		for _, g := range v.Gates {
			mdRow(&b, string(g.Gate.Kind)+" "+g.Gate.Metric, fmtNum(g.Observed), fmtNum(g.Threshold), passWord(g.Pass), g.Reason)
		}
		b.WriteString("\n")
	}
	if f := r.Forgetting; f != nil {
		fmt.Fprintf(&b, "## Forgetting (%s split %s, %d records)\n\n", mdCell(f.DatasetID), mdCell(f.Split), f.N)
		mdRow(&b, "metric", "candidate", "champion", "delta", "lower bound", "epsilon", "result")
		mdRow(&b, "---", "---:", "---:", "---:", "---:", "---:", "---")
		delta, lower := 0.0, f.Gate.Observed
		if bs := f.Gate.Bootstrap; bs != nil {
			delta = bs.Delta
		}
		mdRow(&b, f.Metric, fmtNum(f.Candidate), fmtNum(f.Champion), fmtSigned(delta), fmtSigned(lower), fmtNum(f.Gate.Gate.Epsilon), passWord(f.Gate.Pass))
		b.WriteString("\n")
	}
	switch r.Task {
	case TaskGenerate:
		r.mdGenerate(&b)
	default:
		r.mdClassify(&b)
	}
	if l := r.Latency; l != nil {
		b.WriteString("## Latency (ms)\n\n")
		mdRow(&b, "n", "mean", "p50", "p95", "p99", "max")
		mdRow(&b, "---:", "---:", "---:", "---:", "---:", "---:")
		mdRow(&b, fmt.Sprint(l.N), fmtNum(l.MeanMs), fmtNum(l.P50Ms), fmtNum(l.P95Ms), fmtNum(l.P99Ms), fmtNum(l.MaxMs))
		b.WriteString("\n")
	}
	if c := r.Cost; c != nil {
		fmt.Fprintf(&b, "## Cost per 1k predictions\n\n%d predictions; %s W per core, %s %s per kWh.\n\n",
			c.N, fmtNum(c.Model.WattsPerCore), fmtNum(c.Model.PricePerKWh), mdCell(c.Model.Currency))
		mdRow(&b, "CPU seconds", "energy (Wh)", "cost ("+c.Model.Currency+")")
		mdRow(&b, "---:", "---:", "---:")
		mdRow(&b, fmtNum(c.CPUSecondsPer1k), fmtNum(c.EnergyWhPer1k), fmtNum(c.CostPer1k))
		b.WriteString("\n")
	}
	if len(r.Baselines) > 0 {
		b.WriteString("## Baselines (same training split)\n\n")
		mdRow(&b, "baseline", "n", "accuracy", "macro_f1")
		mdRow(&b, "---", "---:", "---:", "---:")
		for _, bl := range r.Baselines {
			mdRow(&b, bl.Name, fmt.Sprint(bl.Metrics.N), fmtNum(bl.Metrics.Accuracy), fmtNum(bl.Metrics.MacroF1))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (r *Report) mdInputs(b *strings.Builder) {
	mdRow(b, "input", "value")
	mdRow(b, "---", "---")
	mdRow(b, "model", r.Inputs.ModelID)
	mdRow(b, "dataset", r.Inputs.DatasetID)
	mdRow(b, "split", r.Inputs.Split)
	if r.Inputs.ChampionID != "" {
		mdRow(b, "champion", r.Inputs.ChampionID)
	}
	mdRow(b, "task", string(r.Task))
	for _, k := range sortedKeys(r.Inputs.Hashes) {
		mdRow(b, "hash "+k, "`"+r.Inputs.Hashes[k]+"`")
	}
	b.WriteString("\n")
}

func (r *Report) mdClassify(b *strings.Builder) {
	b.WriteString("## Metrics per slice\n\n")
	mdRow(b, "slice", "n", "accuracy", "macro_f1", "ece", "log_loss")
	mdRow(b, "---", "---:", "---:", "---:", "---:", "---:")
	var all *ClassMetrics
	oneClass := false
	for _, s := range r.Slices {
		c := s.Classify
		if c == nil {
			continue
		}
		if s.Slice == SliceAll {
			all = c
		}
		f1 := fmtNum(c.MacroF1)
		if c.goldClasses() == 1 {
			f1, oneClass = "— (one class)", true
		}
		mdRow(b, s.Slice, fmt.Sprint(s.N), fmtNum(c.Accuracy), f1, fmtOpt(c.ECE), fmtOpt(c.LogLoss))
	}
	b.WriteString("\n")
	if oneClass {
		// Macro-F1 averages over every label, so a slice whose records all
		// have one gold label scores about 1/labels however well it does.
		b.WriteString("A slice whose records all have one gold label has no meaningful macro-F1; its accuracy is the recall of that label.\n\n")
	}
	if all == nil {
		return
	}
	b.WriteString("## Per class (all)\n\n")
	mdRow(b, "label", "precision", "recall", "f1", "support", "predicted")
	mdRow(b, "---", "---:", "---:", "---:", "---:", "---:")
	for _, c := range all.Classes {
		mdRow(b, c.Label, fmtNum(c.Precision), fmtNum(c.Recall), fmtNum(c.F1), fmt.Sprint(c.Support), fmt.Sprint(c.Predicted))
	}
	b.WriteString("\n## Confusion matrix (all; rows gold, columns predicted)\n\n")
	mdRow(b, append([]string{"gold \\ predicted"}, all.Labels...)...)
	mdRow(b, append([]string{"---"}, repeat("---:", len(all.Labels))...)...)
	for i, row := range all.Confusion {
		cells := []string{all.Labels[i]}
		for _, n := range row {
			cells = append(cells, fmt.Sprint(n))
		}
		mdRow(b, cells...)
	}
	b.WriteString("\n")
}

func (r *Report) mdGenerate(b *strings.Builder) {
	b.WriteString("## Metrics per slice\n\n")
	mdRow(b, "slice", "n", "exact_match", "contains", "token_f1", "json_valid", "regex_match", "schema_valid")
	mdRow(b, "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:")
	for _, s := range r.Slices {
		if g := s.Generate; g != nil {
			mdRow(b, s.Slice, fmt.Sprint(s.N), fmtNum(g.ExactMatch), fmtNum(g.Contains), fmtNum(g.TokenF1),
				fmtNum(g.JSONValid), fmtOpt(g.RegexMatch), fmtOpt(g.SchemaValid))
		}
	}
	b.WriteString("\n")
}

func fmtOpt(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmtNum(*p)
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func mdRow(b *strings.Builder, cells ...string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" " + mdCell(c) + " |")
	}
	b.WriteString("\n")
}

// mdCell keeps a value inside its table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\n", " ")
}
