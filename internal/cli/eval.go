package cli

import (
	"fmt"
	"strings"
)

func evalCommand() *command {
	return &command{name: "eval", usage: "show eval reports", subs: []*command{
		{name: "show", usage: "show MODEL[@VERSION|@ALIAS] | REPORT-DIGEST: the report as Markdown", run: evalShow},
	}}
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
