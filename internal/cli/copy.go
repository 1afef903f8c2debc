package cli

import (
	"fmt"

	"github.com/tailor-ml/tailor/api"
)

func copyCommand() *command {
	sub := func(kind string) *command {
		return &command{name: kind, usage: kind + " NAME[@REF] --to-region R [--as NAME]: copy one version into region R (the residency policy must let the server read it and write there)",
			run: func(e *env, args []string) error { return copyVersion(e, kind, args) }}
	}
	return &command{name: "copy", usage: "copy a dataset, base or model version into another region, with lineage to its source",
		subs: []*command{sub("dataset"), sub("base"), sub("model")}}
}

func copyVersion(e *env, kind string, args []string) error {
	cc := newClientCmd(e, "copy "+kind)
	req := api.CopyRequest{Kind: kind}
	cc.fs.StringVar(&req.ToRegion, "to-region", "", "the region the copy lives in (required)")
	cc.fs.StringVar(&req.Name, "as", "", "the copy's name (default NAME-REGION)")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if req.ToRegion == "" {
		return usagef("copy %s: --to-region is required", kind)
	}
	req.Source = pos[0]
	out, err := c.Copy(e.ctx, req)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, out)
	}
	verb := "copied"
	if !out.Created {
		verb = "already copied"
	}
	name := out.Name
	if out.Version > 0 {
		name = fmt.Sprintf("%s@v%d", out.Name, out.Version)
	}
	fmt.Fprintf(e.stdout, "%s %s %s (%s, region %s) to %s (region %s)\n", verb, kind, out.SourceName, short(out.SourceID), out.SourceRegion,
		name, out.Region)
	return nil
}

// copySource says where a copy came from, for the show commands.
func copySource(c *api.CopySource) string {
	return fmt.Sprintf("%s %s (region %s), copied %s", c.Name, short(c.ID), c.Region, c.CreatedAt.Format("2006-01-02 15:04:05"))
}
