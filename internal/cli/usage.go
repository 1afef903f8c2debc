package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/tailor-ml/tailor/api"
)

func usageCommand() *command {
	return &command{name: "usage", usage: "usage --by project|model|day [--from DAY] [--to DAY]: metered usage of runs and served requests in the project acted in (--project)",
		run: usageReport}
}

func usageReport(e *env, args []string) error {
	cc := newClientCmd(e, "usage")
	by := cc.fs.String("by", "", "group by project, model or day (required)")
	from := cc.fs.String("from", "", "first day included, YYYY-MM-DD (UTC)")
	to := cc.fs.String("to", "", "last day included, YYYY-MM-DD (UTC)")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	if *by == "" {
		return usagef("usage: --by project, model or day is required")
	}
	rep, err := c.Usage(e.ctx, api.UsageQuery{By: *by, From: *from, To: *to})
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, rep)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\tRUNS\tCPU-S\tWALL-S\tFLOPS\tPEAK-RSS\tREQUESTS\tTOKENS-IN\tTOKENS-OUT\tLAT-AVG-MS\tLAT-MAX-MS\tENERGY-KWH\tENERGY\tCOST-USD\t\n",
		upper(rep.By))
	for _, r := range append(rep.Rows, rep.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.3g\t%s\t%d\t%d\t%d\t%.1f\t%.1f\t%.6f\t%s\t%.6f\t\n", r.Key, r.Runs, r.CPUSeconds, r.WallSeconds,
			r.FLOPs, bytesText(r.PeakRSSBytes), r.Requests, r.TokensIn, r.TokensOut, r.LatencyMSAvg, r.LatencyMSMax, r.EnergyKWh,
			orNone(r.EnergySource), r.CostUSD)
	}
	return tw.Flush()
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// bytesText writes n bytes in MiB (or "-" for none).
func bytesText(n int64) string {
	if n <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
}

func runResume(e *env, args []string) error {
	cc := newClientCmd(e, "run resume")
	steps := cc.fs.Int64("max-steps", 0, "raise budget.max_steps to this")
	dur := cc.fs.String("max-duration", "", "raise budget.max_duration to this Go duration, e.g. 10m")
	cost := cc.fs.Float64("max-cost-usd", 0, "raise budget.max_cost_usd to this")
	energy := cc.fs.Float64("max-energy-kwh", 0, "raise budget.max_energy_kwh to this")
	wait := cc.fs.Bool("wait", false, "follow progress until the run ends")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	b := api.Budget{MaxSteps: *steps, MaxDuration: *dur, MaxCostUSD: *cost, MaxEnergyKWh: *energy}
	if b == (api.Budget{}) {
		return usagef("run resume: raise at least one of --max-steps, --max-duration, --max-cost-usd, --max-energy-kwh")
	}
	r, err := c.ResumeRun(e.ctx, pos[0], b)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "run %s queued to resume from step %d\n", r.ID, r.Step)
	if *wait {
		if err := followRun(e, c, r.ID, cc.json()); err != nil {
			return err
		}
		if r, err = c.Run(e.ctx, r.ID); err != nil {
			return err
		}
	}
	if cc.json() {
		return printJSON(e.stdout, r)
	}
	fmt.Fprintln(e.stdout, r.ID)
	if *wait && r.State != "succeeded" {
		return fmt.Errorf("run %s %s: %s", r.ID, r.State, r.Error)
	}
	return nil
}

func runUsage(e *env, args []string) error {
	cc := newClientCmd(e, "run usage")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	u, err := c.RunUsage(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, u)
	}
	fmt.Fprintf(e.stdout, "run          %s\nproject      %s\nmodel        %s\ncpu          %.2f s\nwall         %.2f s\nflops        %.4g\npeak rss     %s\nenergy       %.6g kWh (%s)\ncost         %.6g USD\n",
		u.RunID, u.Project, u.Model, u.CPUSeconds, u.WallSeconds, u.FLOPs, bytesText(u.PeakRSSBytes), u.EnergyKWh, orNone(u.EnergySource), u.CostUSD)
	b := u.Budget
	fmt.Fprintf(e.stdout, "budget       max_steps=%d max_duration=%s max_cost_usd=%g max_energy_kwh=%g (0: no cap)\n", b.MaxSteps, orNone(b.MaxDuration),
		b.MaxCostUSD, b.MaxEnergyKWh)
	if u.Exceeded != nil {
		fmt.Fprintf(e.stdout, "stopped at   %s %s (measured %s)\n", u.Exceeded.Limit, u.Exceeded.Value, u.Exceeded.Measured)
	}
	return nil
}
