package cli

import (
	"flag"
	"fmt"
	"strings"
)

func evalCommand() *command {
	return &command{name: "eval", usage: "show eval reports", subs: []*command{
		{name: "show", usage: "show MODEL[@VERSION|@ALIAS] | REPORT-DIGEST: the report as Markdown", run: evalShow},
	}}
}

func evalShow(e *env, args []string) error {
	fs := flag.NewFlagSet("eval show", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, e)
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
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
	if cf.output == "json" {
		_, err := e.stdout.Write(append(rep.Report, '\n'))
		return err
	}
	_, err = fmt.Fprint(e.stdout, rep.Markdown)
	return err
}
