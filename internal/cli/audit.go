package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

func auditCommand() *command {
	return &command{name: "audit", usage: "list, export and verify the hash-chained audit log (docs/security.md)", subs: []*command{
		{name: "list", usage: "list [--after SEQ] [--limit N]: entries oldest first (all when no --limit)", run: auditList},
		{name: "export", usage: "export [--out FILE]: every entry as JSON lines (stdout without --out)", run: auditExport},
		{name: "verify", usage: "verify [--head SEQ:HASH]: walk the chain; names the first broken entry and exits non-zero", run: auditVerify},
	}}
}

func auditList(e *env, args []string) error {
	cc := newClientCmd(e, "audit list")
	after := cc.fs.Int64("after", 0, "start after this sequence number")
	limit := cc.fs.Int("limit", 0, "at most this many entries (0: all)")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	if *limit < 0 || *after < 0 {
		return usagef("audit list: --after and --limit must not be negative")
	}
	var tw *tabwriter.Writer
	if !cc.json() {
		tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tPROJECT\tACTION\tOBJECT\tHASH")
	}
	left := *limit
	for {
		n := 1000
		if *limit > 0 {
			n = min(n, left)
		}
		page, err := c.AuditEntries(e.ctx, *after, n)
		if err != nil {
			return err
		}
		for _, a := range page.Entries {
			if tw == nil {
				if err := json.NewEncoder(e.stdout).Encode(a); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s %s\t%s\n", a.Seq, a.Time.Format("2006-01-02T15:04:05.000Z"),
				a.Actor, a.Project, a.Action, a.ObjectKind, a.ObjectID, short(a.Hash))
		}
		*after = page.Next
		left -= len(page.Entries)
		if len(page.Entries) < n || (*limit > 0 && left <= 0) {
			break
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func auditExport(e *env, args []string) error {
	cc := newClientCmd(e, "audit export")
	out := cc.fs.String("out", "", "write to this file (temp file, then rename: all or nothing); stdout when empty")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	rc, err := c.ExportAudit(e.ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	if *out == "" {
		if _, err := io.Copy(e.stdout, rc); err != nil {
			return errs.Unavailable("audit export: the transfer broke: %v; what was printed is incomplete: retry (--out writes a file only when the whole log arrived)", err)
		}
		return nil
	}
	dir, name := filepath.Split(*out)
	if dir == "" {
		dir = "."
	}
	o, err := openOutFolder(dir)
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	defer o.discard()
	if err := o.write(name, brokenTransfer{rc}, -1, ""); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if err := o.commit(); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	fmt.Fprintln(e.stdout, *out)
	return nil
}

func auditVerify(e *env, args []string) error {
	cc := newClientCmd(e, "audit verify")
	head := cc.fs.String("head", "", "SEQ:HASH printed by an earlier verify and kept elsewhere: fail unless entry SEQ still has HASH (catches a chain rewritten from the start or cut short)")
	c, _, err := cc.parse(args, 0, 0)
	if err != nil {
		return err
	}
	var headSeq int64
	var headHash string
	if *head != "" {
		seq, hash, ok := strings.Cut(*head, ":")
		n, err := strconv.ParseInt(seq, 10, 64)
		if !ok || err != nil || n < 1 || hash == "" {
			return usagef("audit verify: --head %q: want SEQ:HASH, as verify prints them (e.g. 42:3f9a…)", *head)
		}
		headSeq, headHash = n, hash
	}
	v, err := c.VerifyAudit(e.ctx)
	if err != nil {
		return err
	}
	if cc.json() {
		if err := printJSON(e.stdout, v); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "checked %d entries; head %d:%s\n", v.Entries, v.HeadSeq, v.HeadHash)
	}
	if b := v.Broken; b != nil {
		return auditBroken(b)
	}
	if !v.OK {
		return fmt.Errorf("audit log: the server says the chain is broken but names no entry")
	}
	if headSeq == 0 {
		return nil
	}
	page, err := c.AuditEntries(e.ctx, headSeq-1, 1)
	if err != nil {
		return err
	}
	if len(page.Entries) == 0 || page.Entries[0].Seq != headSeq {
		return errs.Conflict("audit log: entry %d, the head you recorded, is gone: the log now ends at entry %d (entries were removed)", headSeq, v.HeadSeq)
	}
	if got := page.Entries[0].Hash; got != headHash {
		return errs.Conflict("audit log: entry %d has hash %s, not the %s you recorded: the chain was rewritten up to it", headSeq, got, headHash)
	}
	fmt.Fprintf(e.stdout, "entry %d still has the recorded hash\n", headSeq)
	return nil
}

// auditBroken words the first broken entry; the exit code is that of a
// conflict (the stored log disagrees with itself).
func auditBroken(b *api.AuditBreak) error {
	what := map[string]string{
		"seq_gap":            "its sequence number is not the one after the previous entry's (an entry was deleted or inserted)",
		"prev_hash_mismatch": "its prev_hash is not the previous entry's hash (entries were removed, reordered or rewritten)",
		"hash_mismatch":      "its hash does not match its fields (the entry was edited)",
		"before_mismatch":    "its before digest is not its object's previous after digest",
		"event_mismatch":     "its after digest does not match the stored event it records (the event was edited or deleted)",
	}[b.Check]
	if what == "" {
		what = "it failed check " + b.Check
	}
	return errs.Conflict("audit log broken at entry %d: %s [%s: want %q, stored %q]", b.Seq, what, b.Check, b.Want, b.Got)
}
