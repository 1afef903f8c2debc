package corpus

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Dataset files written by Export.
const (
	SpamPeriod1File  = "spam-period1.jsonl"      // classify: easy-ham-1, hard-ham-1, spam-1
	SpamPeriod2File  = "spam-period2.jsonl"      // classify: easy-ham-2, spam-2
	HeadersSFTFile   = "email-headers-sft.jsonl" // sft: headers → JSON {date, from, subject}
	PretrainTextFile = "pretrain-text.jsonl"     // text: State of the Union + Moby Dick passages
	// PretrainEmailFile is text: passages of the ham bodies of the period-1
	// records that a default import puts in the train split (HamBodies);
	// appended to pretrain-text it is what tailor-tiny v2 is pretrained on.
	PretrainEmailFile = "pretrain-email.jsonl"
)

// Export limits.
const (
	PassageRunes      = 1200 // longest pretraining passage
	HeaderPromptRunes = 600  // longest header prompt of the SFT example
)

// Summary describes what Export wrote.
type Summary struct {
	Files     map[string]string // file name → path
	Period1   map[string]int    // records per group
	Period2   map[string]int
	Documents int
	Passages  int
	// EmailPassages are the passages of PretrainEmailFile, cut from
	// HamBodies ham messages.
	EmailPassages int
	HamBodies     int
	TextBytes     int64
	TextHash      string // ContentHash of the pretraining documents
	HeaderPairs   int
}

// Export fetches the pinned corpora and writes the five dataset files into
// dir, each atomically (temp file, fsync, rename). The output is
// deterministic.
func Export(ctx context.Context, dir string, opts Options) (Summary, error) {
	p1, p2, err := SpamAssassin(ctx, opts)
	if err != nil {
		return Summary{}, err
	}
	docs, err := Texts(ctx, opts)
	if err != nil {
		return Summary{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Summary{}, err
	}
	passages := Passages(docs, PassageRunes)
	ham := HamBodies(p1)
	email := Passages(ham, PassageRunes)
	writers := []struct {
		name  string
		write func(w *bufio.Writer) error
	}{
		{SpamPeriod1File, func(w *bufio.Writer) error { return WriteJSONL(w, p1) }},
		{SpamPeriod2File, func(w *bufio.Writer) error { return WriteJSONL(w, p2) }},
		{HeadersSFTFile, func(w *bufio.Writer) error { return WriteHeaderJSONL(w, p1, HeaderPromptRunes) }},
		{PretrainTextFile, func(w *bufio.Writer) error { return WritePassagesJSONL(w, passages) }},
		{PretrainEmailFile, func(w *bufio.Writer) error { return WritePassagesJSONL(w, email) }},
	}
	sum := Summary{Files: map[string]string{}, Period1: CountByGroup(p1), Period2: CountByGroup(p2), Documents: len(docs),
		Passages: len(passages), TextBytes: TotalBytes(docs), TextHash: ContentHash(docs), HeaderPairs: len(p1),
		EmailPassages: len(email), HamBodies: len(ham)}
	for _, wr := range writers {
		p := filepath.Join(dir, wr.name)
		if err := writeFileAtomic(p, wr.write); err != nil {
			return Summary{}, fmt.Errorf("corpus export: %s: %w", wr.name, err)
		}
		sum.Files[wr.name] = p
	}
	return sum, nil
}

// writeFileAtomic writes through a temp file and renames it into place.
func writeFileAtomic(path string, write func(w *bufio.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		// #nosec G104 -- cleanup on an error path; the chmod error is returned (the temp file is removed)
		tmp.Close()
		return err
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
