package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/tailor-ml/tailor/api"
)

func baseCommand() *command {
	return &command{name: "base", usage: "import, list and show base models", subs: []*command{
		{name: "import", usage: "import DIR --name NAME (a Hugging Face model folder), or --from-run RUN --name NAME", run: baseImport},
		{name: "list", usage: "list base versions", run: baseList},
		{name: "show", usage: "show NAME[@VERSION|@ALIAS]", run: baseShow},
		{name: "export", usage: "export NAME[@VERSION] --out DIR: write the model folder", run: baseExport},
	}}
}

func baseImport(e *env, args []string) error {
	cc := newClientCmd(e, "base import")
	name := cc.fs.String("name", "", "base model name (required)")
	region := cc.fs.String("region", "", "region tag (default: the server's region)")
	fromRun := cc.fs.String("from-run", "", "register the model a succeeded pretraining run produced (no DIR)")
	c, pos, err := cc.parse(args, 0, 1)
	if err != nil {
		return err
	}
	if *name == "" {
		return usagef("base import: --name is required")
	}
	var res api.BaseImport
	switch {
	case *fromRun != "" && len(pos) == 0:
		res, err = c.ImportBaseFromRun(e.ctx, *name, *fromRun)
	case *fromRun == "" && len(pos) == 1:
		res, err = c.ImportBaseDir(e.ctx, *name, *region, pos[0])
	default:
		return usagef("base import: give a model folder DIR or --from-run RUN, not both")
	}
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, res)
	}
	v := res.Version
	state := "created"
	if !res.Created {
		state = "unchanged (same fingerprint already imported)"
	}
	fmt.Fprintf(e.stderr, "%s v%d: %s, %d parameters, %d files: %s\n", v.Name, v.Version, v.Arch, v.Params, len(v.Files), state)
	fmt.Fprintln(e.stdout, v.ID)
	return nil
}

func baseList(e *env, args []string) error {
	cc := newClientCmd(e, "base list")
	name := cc.fs.String("name", "", "only this base model")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	vs, err := c.Bases(e.ctx, *name)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, vs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tARCH\tPARAMS\tFINGERPRINT\tREGION\tCREATED")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\tv%d\t%s\t%d\t%s\t%s\t%s\n", v.Name, v.Version, v.Arch, v.Params, short(v.ID), v.Region, v.CreatedAt.Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

func baseShow(e *env, args []string) error {
	cc := newClientCmd(e, "base show")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	name, ref := splitRef(pos[0])
	v, err := c.Base(e.ctx, name, ref)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, v)
	}
	fmt.Fprintf(e.stdout, "base         %s v%d\nfingerprint  %s\narch         %s\nparams       %d\nregion       %s\nmanifest     %s\ncreated      %s\n",
		v.Name, v.Version, v.ID, v.Arch, v.Params, v.Region, v.Manifest, v.CreatedAt.Format("2006-01-02 15:04:05"))
	if c := v.CopiedFrom; c != nil {
		fmt.Fprintf(e.stdout, "copy of      %s\n", copySource(c))
	}
	fmt.Fprintln(e.stdout, "files:")
	for _, f := range v.Files {
		fmt.Fprintf(e.stdout, "  %-36s %12d  %s\n", f.Name, f.Size, f.Digest)
	}
	return nil
}

func baseExport(e *env, args []string) error {
	cc := newClientCmd(e, "base export")
	out := cc.fs.String("out", "", "output folder (required)")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("base export: --out is required")
	}
	name, ref := splitRef(pos[0])
	v, err := c.Base(e.ctx, name, ref)
	if err != nil {
		return err
	}
	if err := exportBase(e.ctx, c, v, *out); err != nil {
		return fmt.Errorf("base export %s v%d: %w", v.Name, v.Version, err)
	}
	fmt.Fprintf(e.stderr, "%s v%d: %d files written to %s\n", v.Name, v.Version, len(v.Files), *out)
	return nil
}

// exportBase writes every file of v into dir, all or nothing (outFolder):
// every name is checked before the first download, and every file against
// the size and digest the version lists.
func exportBase(ctx context.Context, c *api.Client, v api.BaseVersion, dir string) error {
	o, err := openOutFolder(dir)
	if err != nil {
		return err
	}
	defer o.discard()
	for _, f := range v.Files {
		if err := o.claim(f.Name); err != nil {
			return err
		}
	}
	for _, f := range v.Files {
		rc, err := c.BaseFile(ctx, v.Name, v.ID, f.Name)
		if err != nil {
			return fmt.Errorf("export %s: %w", f.Name, err)
		}
		err = o.write(f.Name, brokenTransfer{rc}, f.Size, f.Digest)
		// #nosec G104 -- closing a download body after the write; the write error is checked
		rc.Close()
		if err != nil {
			return err
		}
	}
	return o.commit()
}
