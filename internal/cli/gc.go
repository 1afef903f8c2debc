package cli

import (
	"fmt"

	"github.com/tailor-ml/tailor/api"
)

func gcCommand() *command {
	return &command{name: "gc", usage: "remove blobs nothing refers to and old runs' checkpoints (--dry-run first)", run: gc}
}

func gc(e *env, args []string) error {
	cc := newClientCmd(e, "gc")
	o := api.DefaultGCOptions()
	cc.fs.BoolVar(&o.DryRun, "dry-run", false, "report what would be removed; remove nothing")
	cc.fs.DurationVar(&o.Grace, "grace", o.Grace, "keep unreferenced blobs written within this (a worker may be about to report one)")
	cc.fs.DurationVar(&o.KeepCheckpoints, "keep-checkpoints", o.KeepCheckpoints, "keep the last checkpoint of runs finished within this")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	rep, err := c.GC(e.ctx, o)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, rep)
	}
	verb := "removed"
	if rep.DryRun {
		verb = "would remove"
	}
	fmt.Fprintf(e.stdout, "scanned %d blobs (%d bytes), %d referenced\n%s %d blobs (%d bytes), %d finished runs' checkpoints, %d dead import folders\nkept %d unreferenced blobs younger than %s\n",
		rep.Blobs, rep.Bytes, rep.Referenced, verb, rep.Removed, rep.RemovedBytes, rep.Checkpoints, rep.Stages, rep.Young, o.Grace)
	return nil
}
