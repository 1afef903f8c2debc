package cli

import (
	"archive/tar"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

func modelCommand() *command {
	return &command{name: "model", usage: "list, show, promote and roll back model versions", subs: []*command{
		{name: "list", usage: "list [NAME]: model versions with verdicts and aliases", run: modelList},
		{name: "show", usage: "show NAME[@VERSION|@ALIAS]", run: modelShow},
		{name: "promote", usage: "promote NAME VERSION --alias champion --reason TEXT [--override --override-reason TEXT]", run: modelPromote},
		{name: "rollback", usage: "rollback NAME --alias champion --reason TEXT", run: modelRollback},
		{name: "history", usage: "history NAME [--alias A]: every alias move", run: modelHistory},
		{name: "export", usage: "export NAME[@VERSION|@ALIAS] --format peft|merged|gguf[:f32|f16|q8_0] --out DIR", run: modelExport},
		{name: "approvals", usage: "approvals NAME [--state pending]", run: modelApprovals},
		{name: "approve", usage: "approve APPROVAL --reason TEXT", run: func(e *env, args []string) error { return modelDecide(e, args, true) }},
		{name: "reject", usage: "reject APPROVAL --reason TEXT", run: func(e *env, args []string) error { return modelDecide(e, args, false) }},
	}}
}

// actorFlag is the old --actor flag, still accepted so scripts keep
// working, and ignored: the server attributes every change to the
// principal of the request's token.
func actorFlag(fs *flag.FlagSet, _ *env) *string {
	return fs.String("actor", "", "ignored: changes are attributed to your token's principal (TAILOR_TOKEN)")
}

func modelList(e *env, args []string) error {
	cc := newClientCmd(e, "model list")
	c, pos, err := cc.parse(args, 0, 1)
	if err != nil {
		return err
	}
	name := ""
	if len(pos) == 1 {
		name = pos[0]
	}
	vs, err := c.Models(e.ctx, name)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, vs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tTASK\tVERDICT\tALIASES\tRUN\tADAPTER\tCREATED")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Version, v.Task, orNone(v.Verdict), orNone(strings.Join(v.Aliases, ",")),
			orNone(v.RunID), short(v.Adapter), v.CreatedAt.Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

func modelShow(e *env, args []string) error {
	cc := newClientCmd(e, "model show")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	name, ref := splitRef(pos[0])
	v, err := c.Model(e.ctx, name, ref)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, v)
	}
	fmt.Fprintf(e.stdout, "model    %s v%d\nid       %s\ntask     %s\nbase     %s\nadapter  %s\nrun      %s\nregion   %s\naliases  %s\nverdict  %s\ncreated  %s\n",
		v.Name, v.Version, v.ID, v.Task, v.BaseID, orNone(v.Adapter), orNone(v.RunID), orNone(v.Region), orNone(strings.Join(v.Aliases, ", ")), orNone(v.Verdict),
		v.CreatedAt.Format("2006-01-02 15:04:05"))
	if c := v.CopiedFrom; c != nil {
		fmt.Fprintf(e.stdout, "copy of  %s\n", copySource(c))
	}
	for _, r := range v.Reports {
		fmt.Fprintf(e.stdout, "report   %s on %s/%s: %s\n", r.Digest, short(r.DatasetID), r.Split, r.Verdict)
		for _, f := range r.Failed {
			fmt.Fprintf(e.stdout, "         failed: %s\n", f)
		}
	}
	return nil
}

func modelPromote(e *env, args []string) error {
	cc := newClientCmd(e, "model promote")
	var p api.Promote
	cc.fs.StringVar(&p.Alias, "alias", "champion", "alias to move")
	cc.fs.StringVar(&p.Reason, "reason", "", "why this version should serve (required)")
	cc.fs.BoolVar(&p.Override, "override", false, "promote despite failing or missing gates")
	cc.fs.StringVar(&p.OverrideReason, "override-reason", "", "why the gates are overridden (required with --override)")
	actor := actorFlag(cc.fs, e)
	c, pos, err := cc.parse(args, 2, 2)
	if err != nil {
		return err
	}
	p.Version, p.Actor = pos[1], *actor
	res, err := c.Promote(e.ctx, pos[0], p)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, res)
	}
	if res.Approval != nil {
		fmt.Fprintf(e.stdout, "approval %s pending: %s@%s -> %s needs a second person (`tailor model approve %s --reason ...`)\n",
			res.Approval.ID, pos[0], res.Approval.Alias, short(res.Approval.Target), res.Approval.ID)
		return nil
	}
	m := res.Move
	fmt.Fprintf(e.stdout, "%s@%s: %s -> %s (%s)\n", m.Name, m.Alias, orNone(short(m.From)), short(m.To), m.Reason)
	return nil
}

func modelRollback(e *env, args []string) error {
	cc := newClientCmd(e, "model rollback")
	var r api.Rollback
	cc.fs.StringVar(&r.Alias, "alias", "champion", "alias to move back")
	cc.fs.StringVar(&r.Reason, "reason", "", "why (required)")
	actor := actorFlag(cc.fs, e)
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	r.Actor = *actor
	m, err := c.Rollback(e.ctx, pos[0], r)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, m)
	}
	fmt.Fprintf(e.stdout, "%s@%s: %s -> %s (rollback: %s)\n", m.Name, m.Alias, short(m.From), short(m.To), m.Reason)
	return nil
}

func modelHistory(e *env, args []string) error {
	cc := newClientCmd(e, "model history")
	alias := cc.fs.String("alias", "", "only this alias")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	ms, err := c.AliasHistory(e.ctx, pos[0], *alias)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, ms)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tALIAS\tACTION\tFROM\tTO\tACTOR\tREASON")
	for _, m := range ms {
		reason := m.Reason
		if m.Override {
			reason += " [override: " + m.OverrideReason + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Time.Format("2006-01-02 15:04:05"), m.Alias, m.Action, orNone(short(m.From)), short(m.To), m.Actor, reason)
	}
	return tw.Flush()
}

func modelApprovals(e *env, args []string) error {
	cc := newClientCmd(e, "model approvals")
	state := cc.fs.String("state", "", "pending, approved or rejected")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	as, err := c.Approvals(e.ctx, pos[0], *state)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, as)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tALIAS\tTARGET\tREQUESTED BY\tREASON")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.State, a.Alias, short(a.Target), a.RequestedBy, a.Reason)
	}
	return tw.Flush()
}

func modelDecide(e *env, args []string, approve bool) error {
	name := "model reject"
	if approve {
		name = "model approve"
	}
	cc := newClientCmd(e, name)
	reason := cc.fs.String("reason", "", "why (required)")
	actor := actorFlag(cc.fs, e)
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	a, err := c.Decide(e.ctx, pos[0], api.Decision{Approve: approve, Reason: *reason, Actor: *actor})
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, a)
	}
	fmt.Fprintf(e.stdout, "%s %s by %s\n", a.ID, a.State, a.DecidedBy)
	return nil
}

func modelExport(e *env, args []string) error {
	cc := newClientCmd(e, "model export")
	format := cc.fs.String("format", "peft", "peft (adapter files), merged (Hugging Face folder), or gguf (llama.cpp, Llama LMs; f16) with an optional tensor type: gguf:f32, gguf:f16, gguf:q8_0")
	out := cc.fs.String("out", "", "output folder (required)")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("model export: --out is required")
	}
	name, ref := splitRef(pos[0])
	rc, err := c.ExportModel(e.ctx, name, ref, *format)
	if err != nil {
		return err
	}
	defer rc.Close()
	files, err := untarExport(rc, *out)
	if err != nil {
		return fmt.Errorf("model export %s: %w", pos[0], err)
	}
	for _, f := range files {
		fmt.Fprintln(e.stdout, filepath.Join(*out, f))
	}
	return nil
}

// untarExport writes the regular files of an export's tar stream into dir,
// all or nothing (outFolder), and returns their names. A stream that
// breaks, or ends without its end-of-archive marker, writes nothing.
func untarExport(r io.Reader, dir string) ([]string, error) {
	o, err := openOutFolder(dir)
	if err != nil {
		return nil, err
	}
	defer o.discard()
	tc := &tarCounter{r: r}
	tr := tar.NewReader(tc)
	var names []string
	var end int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			if !tc.endedAfter(end) {
				return nil, errs.Unavailable("the export ended after %d bytes without its end-of-archive marker (a cut transfer?); nothing was written: retry", tc.n)
			}
			break
		}
		if err != nil {
			return nil, errs.Unavailable("the export broke after %d bytes: %v; nothing was written: retry", tc.n, err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil, errs.Invalid("export into %s: entry %q is not a regular file (type %q); nothing was written", dir, h.Name, h.Typeflag)
		}
		if err := o.write(h.Name, brokenTransfer{tr}, h.Size, ""); err != nil {
			return nil, err
		}
		names = append(names, h.Name)
		end = paddedEnd(tc.n)
	}
	return names, o.commit()
}
