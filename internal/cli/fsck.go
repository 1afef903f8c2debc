package cli

import (
	"fmt"
)

func fsckCommand() *command {
	return &command{name: "fsck", usage: "re-hash every artifact and check every reference", run: fsck}
}

func fsck(e *env, args []string) error {
	cc := newClientCmd(e, "fsck")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	rep, err := c.Fsck(e.ctx)
	if err != nil {
		return err
	}
	if cc.json() {
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
