package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/tailor-ml/tailor/api"
)

func triggerCommand() *command {
	return &command{name: "trigger", usage: "apply, list and inspect triggers (events → retrain, evaluate, promote, rollback, webhook)", subs: []*command{
		{name: "apply", usage: "apply FILE (stores a new version only if it changed; docs/triggers.md)", run: triggerApply},
		{name: "list", usage: "list triggers with their firings", run: triggerList},
		{name: "show", usage: "show NAME: the spec and the last firing", run: triggerShow},
		{name: "history", usage: "history NAME: every firing, its state and each action's outcome", run: triggerHistory},
	}}
}

func triggerApply(e *env, args []string) error {
	return applyFile(e, "trigger", args, (*api.Client).ApplyTrigger, func(r api.TriggerApply) applied {
		return applied{name: r.Version.Name, id: r.Version.ID, version: r.Version.Version, created: r.Created}
	})
}

func triggerList(e *env, args []string) error {
	cc := newClientCmd(e, "trigger list")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	ts, err := c.Triggers(e.ctx)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, ts)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tON\tFIRINGS\tRUNNING\tSKIPPED\tFAILED\tLAST")
	for _, t := range ts {
		last := "-"
		if t.Last != nil {
			last = fmt.Sprintf("%s (event %d)", t.Last.State, t.Last.EventSeq)
		}
		fmt.Fprintf(tw, "%s\tv%d\t%s\t%d\t%d\t%d\t%d\t%s\n", t.Spec.Name, t.Spec.Version, t.Event, t.Firings, t.Running, t.Skipped, t.Failed, last)
	}
	return tw.Flush()
}

func triggerShow(e *env, args []string) error {
	cc := newClientCmd(e, "trigger show")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	t, err := c.Trigger(e.ctx, pos[0])
	if err != nil {
		return err
	}
	return printJSON(e.stdout, t)
}

func triggerHistory(e *env, args []string) error {
	cc := newClientCmd(e, "trigger history")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	fs, err := c.TriggerHistory(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, fs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tTYPE\tWHEN\tSTATE\tSTEP\tOUTCOMES")
	for _, f := range fs {
		var outs []string
		for _, r := range f.Results {
			outs = append(outs, r.Line())
		}
		if f.State == "skipped" {
			outs = append(outs, f.Reason)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", f.EventSeq, f.EventType, f.CreatedAt.Format("2006-01-02 15:04:05"), f.State, f.Step, strings.Join(outs, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range fs {
		for _, r := range f.Results {
			if r.Compare != nil {
				fmt.Fprintf(e.stdout, "\nrebase (event %d): ", f.EventSeq)
				r.Compare.WriteTable(e.stdout)
			}
		}
	}
	return nil
}
