package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/tailor-ml/tailor/api"
)

func monitorCommand() *command {
	return &command{name: "monitor", usage: "apply, list and inspect drift monitors", subs: []*command{
		{name: "apply", usage: "apply FILE (stores a new version only if it changed; docs/monitoring.md)", run: monitorApply},
		{name: "list", usage: "list monitors with their state", run: monitorList},
		{name: "show", usage: "show NAME: state, feedback and the last window", run: monitorShow},
		{name: "windows", usage: "windows NAME [--after N]: evaluated windows, drift and realised accuracy", run: monitorWindows},
	}}
}

func monitorApply(e *env, args []string) error {
	return applyFile(e, "monitor", args, (*api.Client).ApplyMonitor, func(r api.MonitorApply) applied {
		return applied{name: r.Version.Name, id: r.Version.ID, version: r.Version.Version, created: r.Created}
	})
}

func monitorList(e *env, args []string) error {
	cc := newClientCmd(e, "monitor list")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	ms, err := c.Monitors(e.ctx)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, ms)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tWATCHES\tVERSION\tWINDOWS\tDRIFTED\tOPEN\tFEEDBACK\tPENDING")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s@%s\t%s\t%d\t%d\t%d\t%d\t%d\n", m.Spec.Name, m.Model, m.Alias, short(m.VersionID), m.Windows, m.Drifted,
			m.OpenCount, m.Feedback.Total, m.Feedback.Pending)
	}
	return tw.Flush()
}

func monitorShow(e *env, args []string) error {
	cc := newClientCmd(e, "monitor show")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	m, err := c.Monitor(e.ctx, pos[0])
	if err != nil {
		return err
	}
	return printJSON(e.stdout, m)
}

func monitorWindows(e *env, args []string) error {
	cc := newClientCmd(e, "monitor windows")
	after := cc.fs.Int64("after", -1, "only windows with a larger index")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	ws, err := c.MonitorWindows(e.ctx, pos[0], *after)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, ws)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WINDOW\tREQUESTS\tDRIFTED\tDETECTORS\tEXPECTED-ACC\tLABELLED\tREALISED-ACC")
	for _, w := range ws {
		var res struct {
			Detectors []struct {
				Name    string `json:"name"`
				Drifted bool   `json:"drifted"`
			} `json:"detectors"`
			Performance struct {
				ExpectedAccuracy float64 `json:"expected_accuracy"`
			} `json:"performance"`
		}
		_ = json.Unmarshal(w.Result, &res)
		var drifted []string
		for _, d := range res.Detectors {
			if d.Drifted {
				drifted = append(drifted, d.Name)
			}
		}
		realised := "-"
		if w.RealisedAccuracy != nil {
			realised = fmt.Sprintf("%.3f", *w.RealisedAccuracy)
		}
		fmt.Fprintf(tw, "%d\t%d\t%v\t%v\t%.3f\t%d\t%s\n", w.Index, w.Count, w.Drifted, drifted, res.Performance.ExpectedAccuracy, w.Labelled, realised)
	}
	return tw.Flush()
}

func feedbackCommand() *command {
	return &command{name: "feedback", usage: "send labels for served requests and accumulate them", subs: []*command{
		{name: "send", usage: "send REQUEST-ID --label LABEL (the X-Tailor-Request-Id of the answer)", run: feedbackSend},
		{name: "accumulate", usage: "accumulate MODEL: pending labels into a new feedback dataset version now", run: feedbackAccumulate},
	}}
}

func feedbackSend(e *env, args []string) error {
	cc := newClientCmd(e, "feedback send")
	var f api.Feedback
	cc.fs.StringVar(&f.Label, "label", "", "the true label")
	cc.fs.StringVar(&f.Completion, "completion", "", "the right completion (sft)")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	f.RequestID = pos[0]
	res, err := c.PostFeedback(e.ctx, f)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, res)
	}
	state := "recorded"
	if !res.Created {
		state = "already recorded"
	}
	fmt.Fprintf(e.stderr, "feedback for %s (model %s): %s\n", res.RequestID, res.Model, state)
	if res.Accumulated != nil {
		fmt.Fprintf(e.stderr, "accumulated into %s version %s (%d records)\n", res.Accumulated.Name, short(res.Accumulated.ID), res.Accumulated.Records)
	}
	return nil
}

func feedbackAccumulate(e *env, args []string) error {
	cc := newClientCmd(e, "feedback accumulate")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	v, err := c.AccumulateFeedback(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, v)
	}
	if v == nil {
		fmt.Fprintln(e.stderr, "no pending labels with a kept input")
		return nil
	}
	fmt.Fprintln(e.stdout, v.ID)
	return nil
}
