package cli

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tailor-ml/tailor/api"
)

func deployCommand() *command {
	c := &command{name: "deploy", usage: "deploy NAME --alias champion [--canary NAME@REF:PCT] [--shadow NAME@REF]; list, show, history, compare, promote, rollback", subs: []*command{
		{name: "set", usage: "set NAME ... : the same as `deploy NAME ...` (for a model named like a subcommand)", run: deploySet},
		{name: "list", usage: "list deployments: primary, canary, shadow", run: deployList},
		{name: "show", usage: "show NAME: the current version and what its parts resolve to", run: deployShow},
		{name: "history", usage: "history NAME: every version with its event, who, when and why", run: deployHistory},
		{name: "compare", usage: "compare NAME [--version N | --all]: primary vs canary and vs shadow from the request log", run: deployCompare},
		{name: "promote", usage: "promote NAME --reason TEXT [--override --override-reason TEXT]: move the alias to the canary (gates apply), remove the canary", run: deployPromote},
		{name: "rollback", usage: "rollback NAME --reason TEXT: remove the canary", run: deployRollback},
	}}
	// `tailor deploy NAME ...` changes a deployment; a known subcommand
	// name goes to that subcommand.
	c.run = func(e *env, args []string) error {
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			for _, s := range c.subs {
				if s.name == args[0] {
					return s.run(e, args[1:])
				}
			}
			if args[0] != "help" {
				return deploySet(e, args)
			}
		}
		printHelp(e.stderr, c)
		fmt.Fprintf(e.stderr, "\n  tailor deploy NAME [--alias A] [--canary NAME@REF:PCT] [--shadow NAME@REF] [--reason TEXT]\n"+
			"  states the whole deployment: a flag left out removes that part (no --canary: no canary).\n")
		if len(args) == 0 {
			return usagef("deploy: name a model or a subcommand")
		}
		return flag.ErrHelp
	}
	return c
}

// parseCanary reads NAME@REF:PCT ("spam-lora@v3:10", "spam-lora@v3:2.5%").
func parseCanary(s string) (*api.Canary, error) {
	addr, pct, ok := strings.Cut(s, ":")
	if !ok || addr == "" || pct == "" {
		return nil, usagef("--canary %q: want NAME@REF:PCT, e.g. spam-lora@v3:10 for 10 %% of requests", s)
	}
	p, err := strconv.ParseFloat(strings.TrimSuffix(pct, "%"), 64)
	if err != nil {
		return nil, usagef("--canary %q: percent %q is not a number; want NAME@REF:PCT, e.g. spam-lora@v3:10", s, pct)
	}
	return &api.Canary{Model: addr, Percent: p}, nil
}

func deploySet(e *env, args []string) error {
	cc := newClientCmd(e, "deploy")
	var s api.DeploymentSpec
	cc.fs.StringVar(&s.Alias, "alias", "champion", "the primary: requests go to NAME@ALIAS")
	canary := cc.fs.String("canary", "", "NAME@REF:PCT: a version of NAME answering PCT % of requests (sticky per user key); omit to remove it")
	cc.fs.StringVar(&s.Shadow, "shadow", "", "NAME@REF: gets a copy of every request, logged, never returned; omit to remove it")
	cc.fs.StringVar(&s.Reason, "reason", "", "why (recorded with the version)")
	actor := actorFlag(cc.fs, e)
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	s.Model, s.Actor = pos[0], *actor
	if *canary != "" {
		if s.Canary, err = parseCanary(*canary); err != nil {
			return err
		}
	}
	res, err := c.Deploy(e.ctx, s)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, res)
	}
	d := res.Deployment
	state := "unchanged"
	if res.Created {
		state = fmt.Sprintf("%s (event %d)", d.Action, d.EventSeq)
	}
	fmt.Fprintf(e.stdout, "deployment %s v%d: %s\n", d.Model, d.Version, state)
	writePolicy(e.stdout, d)
	return nil
}

// writePolicy writes a deployment's parts, one a line.
func writePolicy(w io.Writer, d api.Deployment) {
	resolved := func(s string) string {
		if s == "" {
			return ""
		}
		return " → " + s
	}
	var sv api.DeploymentServing
	if d.Serving != nil {
		sv = *d.Serving
	}
	share := 100.0
	if d.Canary != nil {
		share -= d.Canary.Percent
	}
	fmt.Fprintf(w, "  primary  %s@%s%s  %g %%\n", d.Model, d.Alias, resolved(sv.Primary), share)
	if d.Canary != nil {
		fmt.Fprintf(w, "  canary   %s%s  %g %%\n", d.Canary.Model, resolved(sv.Canary), d.Canary.Percent)
	}
	if d.Shadow != "" {
		fmt.Fprintf(w, "  shadow   %s%s  (a copy of every request)\n", d.Shadow, resolved(sv.Shadow))
	}
	for _, p := range sv.Problems {
		fmt.Fprintf(w, "  problem  %s\n", p)
	}
}

func canaryText(d api.Deployment) string {
	if d.Canary == nil {
		return "-"
	}
	return fmt.Sprintf("%s:%g", d.Canary.Model, d.Canary.Percent)
}

func deployList(e *env, args []string) error {
	cc := newClientCmd(e, "deploy list")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	ds, err := c.Deployments(e.ctx)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, ds)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tPRIMARY\tSERVING\tCANARY\tSHADOW\tUPDATED")
	for _, d := range ds {
		serving := "-"
		if d.Serving != nil && d.Serving.Primary != "" {
			serving = d.Serving.Primary
		}
		fmt.Fprintf(tw, "%s\tv%d\t%s@%s\t%s\t%s\t%s\t%s\n", d.Model, d.Version, d.Model, d.Alias, serving, canaryText(d), orNone(d.Shadow),
			d.CreatedAt.Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

func deployShow(e *env, args []string) error {
	cc := newClientCmd(e, "deploy show")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	d, err := c.Deployment(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, d)
	}
	fmt.Fprintf(e.stdout, "deployment %s v%d: %s by %s at %s", d.Model, d.Version, d.Action, d.Actor, d.CreatedAt.Format("2006-01-02 15:04:05"))
	if d.Reason != "" {
		fmt.Fprintf(e.stdout, ": %s", d.Reason)
	}
	fmt.Fprintln(e.stdout)
	writePolicy(e.stdout, d)
	return nil
}

func deployHistory(e *env, args []string) error {
	cc := newClientCmd(e, "deploy history")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	ds, err := c.DeploymentHistory(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, ds)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tEVENT\tWHEN\tACTION\tACTOR\tPRIMARY\tCANARY\tSHADOW\tREASON")
	for _, d := range ds {
		fmt.Fprintf(tw, "v%d\t%d\t%s\t%s\t%s\t%s@%s\t%s\t%s\t%s\n", d.Version, d.EventSeq, d.CreatedAt.Format("2006-01-02 15:04:05"), d.Action,
			orNone(d.Actor), d.Model, d.Alias, canaryText(d), orNone(d.Shadow), orNone(d.Reason))
	}
	return tw.Flush()
}

func deployCompare(e *env, args []string) error {
	cc := newClientCmd(e, "deploy compare")
	var o api.CompareOptions
	cc.fs.IntVar(&o.Version, "version", 0, "read the lifetime of this deployment version (default: the current one)")
	cc.fs.BoolVar(&o.All, "all", false, "read the whole request log")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	cmp, err := c.CompareDeployment(e.ctx, pos[0], o)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, cmp)
	}
	writeComparison(e.stdout, cmp)
	return nil
}

// writeComparison writes a deployment comparison as two titled tables.
func writeComparison(w io.Writer, cmp api.DeploymentComparison) {
	scope := "the whole request log"
	if cmp.Version > 0 {
		until := "now"
		if !cmp.To.IsZero() {
			until = cmp.To.Format("2006-01-02 15:04:05")
		}
		scope = fmt.Sprintf("deployment v%d, %s to %s", cmp.Version, cmp.From.Format("2006-01-02 15:04:05"), until)
	}
	fmt.Fprintf(w, "deployment %s: %d request-log records (%s)\n", cmp.Model, cmp.Records, scope)
	if !cmp.PrunedBefore.IsZero() {
		fmt.Fprintf(w, "the request log's retention deleted the records before %s: only requests since then are compared (raise --request-log-max-age or --request-log-max-bytes on the server to keep more)\n",
			cmp.PrunedBefore.Format("2006-01-02 15:04:05"))
	}
	if cmp.Canary == nil && cmp.Shadow == nil {
		fmt.Fprintln(w, "no canary or shadow to compare")
	}
	section := func(title string, vc *api.VariantComparison, paired bool) {
		if vc == nil {
			return
		}
		fmt.Fprintf(w, "\n%s\n", title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VARIANT\tVERSIONS\tREQUESTS\tERRORS\tP50 MS\tP95 MS\tLABELLED\tACCURACY")
		for _, s := range []api.VariantStats{vc.Primary, vc.Other} {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2f\t%.2f\t%d\t%s\n", s.Variant, orNone(strings.Join(s.Versions, ",")), s.Requests, s.Errors,
				s.LatencyP50MS, s.LatencyP95MS, s.Labelled, rate(s.Accuracy))
		}
		// #nosec G104 -- a table printed to the CLI's writer; a failed terminal write has no better report
		tw.Flush()
		if paired {
			fmt.Fprintf(w, "agreement %s (%d of %d requests both answered)\n", rate(vc.Agreement), vc.Agreed, vc.Paired)
		} else {
			fmt.Fprintln(w, "agreement n/a: a canary answers other requests than the primary")
		}
	}
	section("primary vs canary", cmp.Canary, false)
	section("primary vs shadow (requests the primary answered)", cmp.Shadow, true)
}

func rate(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.4f", *r)
}

func deployPromote(e *env, args []string) error {
	cc := newClientCmd(e, "deploy promote")
	var p api.DeploymentPromote
	cc.fs.StringVar(&p.Reason, "reason", "", "why the canary should serve everyone (required)")
	cc.fs.BoolVar(&p.Override, "override", false, "promote despite failing or missing gates")
	cc.fs.StringVar(&p.OverrideReason, "override-reason", "", "why the gates are overridden (required with --override)")
	actor := actorFlag(cc.fs, e)
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	p.Actor = *actor
	res, err := c.PromoteCanary(e.ctx, pos[0], p)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, res)
	}
	if res.Approval != nil {
		fmt.Fprintf(e.stdout, "approval %s pending: %s@%s -> %s needs a second person (`tailor model approve %s --reason ...`); the canary keeps running: once approved, run `tailor deploy promote %s` again to remove it\n",
			res.Approval.ID, pos[0], res.Approval.Alias, short(res.Approval.Target), res.Approval.ID, pos[0])
		return nil
	}
	if m := res.Move; m != nil {
		fmt.Fprintf(e.stdout, "%s@%s: %s -> %s (%s)\n", m.Name, m.Alias, orNone(short(m.From)), short(m.To), m.Reason)
	}
	if d := res.Deployment; d != nil {
		fmt.Fprintf(e.stdout, "deployment %s v%d: canary removed (event %d)\n", d.Model, d.Version, d.EventSeq)
		writePolicy(e.stdout, *d)
	}
	return nil
}

func deployRollback(e *env, args []string) error {
	cc := newClientCmd(e, "deploy rollback")
	var r api.DeploymentRollback
	cc.fs.StringVar(&r.Reason, "reason", "", "why the canary is removed (required)")
	actor := actorFlag(cc.fs, e)
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	r.Actor = *actor
	d, err := c.RollbackCanary(e.ctx, pos[0], r)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, d)
	}
	fmt.Fprintf(e.stdout, "deployment %s v%d: canary rolled back (event %d): %s\n", d.Model, d.Version, d.EventSeq, d.Reason)
	writePolicy(e.stdout, d)
	return nil
}
