package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tailor-ml/tailor/api"
)

func runCommand() *command {
	return &command{name: "run", usage: "start, list, show, follow, cancel and resume runs", subs: []*command{
		{name: "start", usage: "start RECIPE[@VERSION] [--wait] [--force]", run: runStart},
		{name: "list", usage: "list runs", run: runList},
		{name: "show", usage: "show RUN", run: runShow},
		{name: "logs", usage: "logs RUN [--follow]", run: runLogs},
		{name: "cancel", usage: "cancel RUN", run: runCancel},
		{name: "resume", usage: "resume RUN [--max-steps N] [--max-duration D] [--max-cost-usd X] [--max-energy-kwh Y]: raise the budget of a run stopped at it", run: runResume},
		{name: "usage", usage: "usage RUN: what a run used, its budget and the limit it was stopped at", run: runUsage},
	}}
}

func runStart(e *env, args []string) error {
	cc := newClientCmd(e, "run start")
	force := cc.fs.Bool("force", false, "run again even if a run with the same key succeeded")
	wait := cc.fs.Bool("wait", false, "follow progress until the run ends")
	base := cc.fs.String("base", "", "run on this base version instead of the recipe's base selector (name or name@ref): a rebase")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	r, err := c.StartRun(e.ctx, api.RunStart{Recipe: pos[0], Base: *base, Force: *force})
	if err != nil {
		return err
	}
	return reportStart(e, c, r, *wait, cc.json())
}

// reportStart says whether a start queued a run or found one with the same
// key, optionally follows it to its end, and prints it.
func reportStart(e *env, c *api.Client, r api.Run, wait, asJSON bool) error {
	var err error
	if r.Reused {
		fmt.Fprintf(e.stderr, "run %s with the same key is %s; use --force to run again\n", r.ID, r.State)
	} else {
		fmt.Fprintf(e.stderr, "run %s queued (key %s)\n", r.ID, short(r.Key))
	}
	if wait && r.State != "succeeded" {
		if err := followRun(e, c, r.ID, asJSON); err != nil {
			return err
		}
		if r, err = c.Run(e.ctx, r.ID); err != nil {
			return err
		}
	}
	if asJSON {
		return printJSON(e.stdout, r)
	}
	fmt.Fprintln(e.stdout, r.ID)
	if wait && r.State != "succeeded" {
		return fmt.Errorf("run %s %s: %s", r.ID, r.State, r.Error)
	}
	return nil
}

// followRun streams a run's log; on a terminal it draws a progress bar,
// otherwise it prints one line per log entry.
func followRun(e *env, c *api.Client, id string, quiet bool) error {
	bar := newProgressBar(e.stderr)
	err := c.RunLogs(e.ctx, id, 0, true, func(l api.RunLog) error {
		var p api.Progress
		_ = json.Unmarshal(l.Data, &p)
		if quiet {
			return nil
		}
		bar.update(p)
		return nil
	})
	bar.done()
	return err
}

type progressBar struct {
	w     io.Writer
	tty   bool
	drawn bool
}

func newProgressBar(w io.Writer) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressBar{w: w, tty: tty}
}

func (b *progressBar) update(p api.Progress) {
	if p.Message != "" && p.Step == 0 || p.Checkpoint != "" || p.State != "" {
		b.clear()
		fmt.Fprintf(b.w, "%s\n", p.Message)
		return
	}
	if p.TotalSteps == 0 {
		return
	}
	line := fmt.Sprintf("%s %d/%d loss %.4f  %.0f tok/s  eta %s", bar(p.Step, p.TotalSteps, 30), p.Step, p.TotalSteps, p.Loss, p.TokensPerS,
		(time.Duration(p.ETASeconds) * time.Second).String())
	if b.tty {
		fmt.Fprintf(b.w, "\r\033[K%s", line)
		b.drawn = true
		return
	}
	fmt.Fprintln(b.w, line)
}

func (b *progressBar) clear() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

func bar(step, total int64, width int) string {
	if total <= 0 {
		return ""
	}
	n := int(int64(width) * min(step, total) / total)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func runList(e *env, args []string) error {
	cc := newClientCmd(e, "run list")
	state := cc.fs.String("state", "", "only runs in this state")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	rs, err := c.Runs(e.ctx, *state)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, rs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTATE\tSTEP\tKEY\tRECIPE\tCREATED")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\n", r.ID, r.State, r.Step, r.TotalSteps, short(r.Key), short(r.RecipeID), r.CreatedAt.Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

func runShow(e *env, args []string) error {
	cc := newClientCmd(e, "run show")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	r, err := c.Run(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, r)
	}
	fmt.Fprintf(e.stdout, "run        %s\nstate      %s\nkey        %s\nstep       %d/%d\nattempt    %d\nrecipe     %s\ndataset    %s\nbase       %s\nengine     %s\ncheckpoint %s\nresult     %s\n",
		r.ID, r.State, r.Key, r.Step, r.TotalSteps, r.Attempt, r.RecipeID, r.DatasetID, orNone(r.BaseID), r.EngineVersion, orNone(r.Checkpoint), orNone(r.Result))
	if r.Error != "" {
		fmt.Fprintf(e.stdout, "error      %s\n", r.Error)
	}
	if len(r.Metrics) > 0 {
		fmt.Fprintln(e.stdout, "metrics:")
		printIndentedJSON(e, r.Metrics)
	}
	return nil
}

func runLogs(e *env, args []string) error {
	cc := newClientCmd(e, "run logs")
	follow := cc.fs.Bool("follow", false, "keep streaming until the run ends")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	return c.RunLogs(e.ctx, pos[0], 0, *follow, func(l api.RunLog) error {
		if cc.json() {
			return printJSON(e.stdout, l)
		}
		var p api.Progress
		_ = json.Unmarshal(l.Data, &p)
		ts := l.Time.Format("15:04:05.000")
		switch {
		case p.TotalSteps > 0:
			fmt.Fprintf(e.stdout, "%s step %d/%d loss %.4f lr %.2e %.0f tok/s eta %.0fs\n", ts, p.Step, p.TotalSteps, p.Loss, p.LR, p.TokensPerS, p.ETASeconds)
		default:
			fmt.Fprintf(e.stdout, "%s %s\n", ts, p.Message)
		}
		return nil
	})
}

func runCancel(e *env, args []string) error {
	cc := newClientCmd(e, "run cancel")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	r, err := c.CancelRun(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, r)
	}
	fmt.Fprintf(e.stdout, "%s %s\n", r.ID, r.State)
	return nil
}
