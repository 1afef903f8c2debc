package cli

import (
	"flag"
	"fmt"
)

func fsckCommand() *command {
	return &command{name: "fsck", usage: "re-hash every artifact and check every reference", run: fsck}
}

func fsck(e *env, args []string) error {
	fs := flag.NewFlagSet("fsck", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, e)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	rep, err := c.Fsck(e.ctx)
	if err != nil {
		return err
	}
	if cf.output == "json" {
		if err := printJSON(e.stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "checked %d blobs (%d bytes) and %d references\n", rep.Blobs, rep.Bytes, rep.Refs)
		for _, b := range rep.Bad {
			fmt.Fprintf(e.stdout, "CORRUPT %s: %s\n", b.Digest, b.Problem)
		}
		for _, m := range rep.Missing {
			fmt.Fprintf(e.stdout, "MISSING %s (referenced by %s)\n", m.Digest, m.Ref)
		}
	}
	if n := len(rep.Bad) + len(rep.Missing); n > 0 {
		return fmt.Errorf("fsck found %d problems", n)
	}
	return nil
}
