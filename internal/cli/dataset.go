package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/tailor-ml/tailor/api"
)

func datasetCommand() *command {
	return &command{name: "dataset", usage: "import, list, show and diff dataset versions", subs: []*command{
		{name: "import", usage: "import FILE --name NAME --task classify|sft", run: datasetImport},
		{name: "list", usage: "list dataset versions", run: datasetList},
		{name: "show", usage: "show NAME[@VERSION]", run: datasetShow},
		{name: "diff", usage: "diff NAME A [B] (B defaults to latest)", run: datasetDiff},
		{name: "export", usage: "export NAME[@VERSION] [--split train|validation|test]: records as JSON lines", run: datasetExport},
	}}
}

func datasetImport(e *env, args []string) error {
	cc := newClientCmd(e, "dataset import")
	var o api.DatasetImportOptions
	cc.fs.StringVar(&o.Name, "name", "", "dataset name (required)")
	cc.fs.StringVar(&o.Task, "task", "", "classify or sft (required unless --append)")
	cc.fs.StringVar(&o.Format, "format", "", "jsonl or csv (default: from the file extension)")
	cc.fs.StringVar(&o.Region, "region", "", "region tag (default: the server's region)")
	cc.fs.StringVar(&o.Owner, "owner", "", "owner tag")
	cc.fs.StringVar(&o.Split, "split", "", "train,validation,test ratios (default 0.8,0.1,0.1)")
	cc.fs.BoolVar(&o.Append, "append", false, "append the file's records to the latest version")
	cc.fs.BoolVar(&o.SkipExisting, "skip-existing", false, "with --append, skip records whose id the latest version already has (a safe retry)")
	cc.fs.StringVar(&o.ExpectParent, "expect-parent", "", "fail (exit 5) unless the latest version is this id (\"none\": no version yet)")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if o.Name == "" {
		return usagef("dataset import: --name is required")
	}
	// #nosec G304 G703 -- the dataset file the user named on the command line, read with the user's own rights
	f, err := os.Open(pos[0])
	if err != nil {
		return fmt.Errorf("dataset import: %w", err)
	}
	defer f.Close()
	o.FileName = filepath.Base(pos[0])
	res, err := c.ImportDataset(e.ctx, f, o)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, res)
	}
	v := res.Version
	state := "created"
	if !res.Created {
		state = "unchanged (version already existed)"
	}
	fmt.Fprintf(e.stderr, "%s: %d records, %d chunks (%d reused), splits %s: %s\n", v.Name, v.Records, res.ChunksTotal, res.ChunksReused, v.SplitSummary(), state)
	fmt.Fprintln(e.stdout, v.ID)
	return nil
}

func datasetList(e *env, args []string) error {
	cc := newClientCmd(e, "dataset list")
	name := cc.fs.String("name", "", "only this dataset")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	vs, err := c.Datasets(e.ctx, *name)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, vs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tTASK\tRECORDS\tREGION\tOWNER\tCREATED")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", v.Name, short(v.ID), v.Task, v.Records, v.Region, v.Owner, v.CreatedAt.Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

func datasetShow(e *env, args []string) error {
	cc := newClientCmd(e, "dataset show")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	name, ref := splitRef(pos[0])
	d, err := c.Dataset(e.ctx, name, ref)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, d)
	}
	v := d.Version
	fmt.Fprintf(e.stdout, "dataset  %s\nversion  %s\ntask     %s\nrecords  %d (%d bytes)\nsplits   %s\nregion   %s\nowner    %s\nparent   %s\nmanifest %s\nchunks   %d\ncreated  %s\n",
		v.Name, v.ID, v.Task, v.Records, v.Bytes, v.SplitSummary(), v.Region, v.Owner, orNone(v.Parent), v.Manifest, len(v.Chunks), v.CreatedAt.Format("2006-01-02 15:04:05"))
	if c := v.CopiedFrom; c != nil {
		fmt.Fprintf(e.stdout, "copy of  %s\n", copySource(c))
	}
	var m struct {
		Profile json.RawMessage `json:"profile"`
	}
	if json.Unmarshal(d.Manifest, &m) == nil && len(m.Profile) > 0 {
		fmt.Fprintln(e.stdout, "profile:")
		printIndentedJSON(e, m.Profile)
	}
	return nil
}

func datasetDiff(e *env, args []string) error {
	cc := newClientCmd(e, "dataset diff")
	c, pos, err := cc.parse(args, 2, 3)
	if err != nil {
		return err
	}
	b := ""
	if len(pos) == 3 {
		b = pos[2]
	}
	d, err := c.DiffDatasets(e.ctx, pos[0], pos[1], b)
	if err != nil {
		return err
	}
	if cc.json() {
		_, err := e.stdout.Write(append(d, '\n'))
		return err
	}
	printIndentedJSON(e, d)
	return nil
}

func printIndentedJSON(e *env, raw json.RawMessage) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		fmt.Fprintln(e.stdout, string(raw))
		return
	}
	b, _ := json.MarshalIndent(v, "  ", "  ")
	fmt.Fprintf(e.stdout, "  %s\n", b)
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func datasetExport(e *env, args []string) error {
	cc := newClientCmd(e, "dataset export")
	split := cc.fs.String("split", "", "only this split")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	name, ref := splitRef(pos[0])
	return c.DatasetRecords(e.ctx, name, ref, *split, e.stdout)
}
