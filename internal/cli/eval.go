package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tailor-ml/tailor/api"
)

func evalCommand() *command {
	return &command{name: "eval", usage: "evaluate models and show eval reports", subs: []*command{
		{name: "run", usage: "run MODEL[@VERSION|@ALIAS] --dataset NAME[@VERSION] [--split test] [--wait] [--force]", run: evalRun},
		{name: "show", usage: "show MODEL[@VERSION|@ALIAS] | REPORT-DIGEST: the report as Markdown", run: evalShow},
	}}
}

// evalRun queues an eval run; with --wait it follows it and prints the
// report's Markdown.
func evalRun(e *env, args []string) error {
	cc := newClientCmd(e, "eval run")
	var req api.EvalStart
	cc.fs.StringVar(&req.Dataset, "dataset", "", "dataset NAME[@VERSION] to evaluate on (required)")
	cc.fs.StringVar(&req.Split, "split", "test", "train, validation or test")
	cc.fs.BoolVar(&req.Force, "force", false, "evaluate again even if an equal eval run succeeded")
	wait := cc.fs.Bool("wait", false, "follow the eval run to its end and print the report")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if req.Dataset == "" {
		return usagef("eval run: --dataset is required")
	}
	req.Model = pos[0]
	r, err := c.StartEval(e.ctx, req)
	if err != nil {
		return err
	}
	if err := reportStart(e, c, r, *wait, cc.json()); err != nil || !*wait || cc.json() {
		return err
	}
	if r, err = c.Run(e.ctx, r.ID); err != nil {
		return err
	}
	var m struct{ Report string }
	if err := json.Unmarshal(r.Metrics, &m); err != nil || m.Report == "" {
		return fmt.Errorf("eval run %s: no report in its metrics", r.ID)
	}
	rep, err := c.EvalReport(e.ctx, m.Report)
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(e.stdout, rep.Markdown)
	return err
}

func evalShow(e *env, args []string) error {
	cc := newClientCmd(e, "eval show")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	digest := pos[0]
	if !strings.HasPrefix(digest, "sha256:") {
		name, ref := splitRef(pos[0])
		v, err := c.Model(e.ctx, name, ref)
		if err != nil {
			return err
		}
		if len(v.Reports) == 0 {
			return fmt.Errorf("model %s v%d has no eval report", v.Name, v.Version)
		}
		digest = v.Reports[len(v.Reports)-1].Digest
	}
	rep, err := c.EvalReport(e.ctx, digest)
	if err != nil {
		return err
	}
	if cc.json() {
		_, err := e.stdout.Write(append(rep.Report, '\n'))
		return err
	}
	_, err = fmt.Fprint(e.stdout, rep.Markdown)
	return err
}
