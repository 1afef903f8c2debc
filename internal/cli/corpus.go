package cli

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tailor-ml/tailor/internal/corpus"
)

func corpusCommand() *command {
	return &command{name: "corpus", usage: "fetch the public-domain corpora and write them as dataset files", subs: []*command{
		{name: "export", usage: "export --dir DIR: SpamAssassin periods, email-header SFT pairs, pretraining passages", run: corpusExport},
	}}
}

// Corpus file names written by `corpus export`.
const (
	SpamPeriod1File   = "spam-period1.jsonl"
	SpamPeriod2File   = "spam-period2.jsonl"
	HeadersSFTFile    = "email-headers-sft.jsonl"
	PretrainTextFile  = "pretrain-text.jsonl"
	passageRunes      = 1200
	headerPromptRunes = 1500
)

func corpusExport(e *env, args []string) error {
	fs := flag.NewFlagSet("corpus export", flag.ContinueOnError)
	dir := fs.String("dir", "corpus", "output directory")
	cache := fs.String("cache", "", "npm tarball cache (default $TAILOR_CACHE/npm or ~/.cache/tailor/npm)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	files, err := ExportCorpus(e, *dir, *cache)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(e.stdout, f)
	}
	return nil
}

// ExportCorpus fetches the pinned corpora and writes the four dataset files
// into dir, returning their paths. The output is deterministic.
func ExportCorpus(e *env, dir, cache string) ([]string, error) {
	opts := corpus.Options{CacheDir: cache}
	p1, p2, err := corpus.SpamAssassin(e.ctx, opts)
	if err != nil {
		return nil, err
	}
	docs, err := corpus.Texts(e.ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	passages := corpus.Passages(docs, passageRunes)
	writers := []struct {
		name  string
		write func(w *bufio.Writer) error
	}{
		{SpamPeriod1File, func(w *bufio.Writer) error { return corpus.WriteJSONL(w, p1) }},
		{SpamPeriod2File, func(w *bufio.Writer) error { return corpus.WriteJSONL(w, p2) }},
		{HeadersSFTFile, func(w *bufio.Writer) error { return corpus.WriteHeaderJSONL(w, p1, headerPromptRunes) }},
		{PretrainTextFile, func(w *bufio.Writer) error { return corpus.WritePassagesJSONL(w, passages) }},
	}
	var paths []string
	for _, wr := range writers {
		p := filepath.Join(dir, wr.name)
		if err := writeFileAtomic(p, wr.write); err != nil {
			return nil, fmt.Errorf("corpus export: %s: %w", wr.name, err)
		}
		paths = append(paths, p)
	}
	fmt.Fprintf(e.stderr, "spam period 1: %d records %v; period 2: %d records %v; pretraining: %d documents, %d passages, %d bytes, %s\n",
		len(p1), corpus.CountByGroup(p1), len(p2), corpus.CountByGroup(p2), len(docs), len(passages), corpus.TotalBytes(docs), corpus.ContentHash(docs))
	return paths, nil
}

// writeFileAtomic writes through a temp file and renames it into place.
func writeFileAtomic(path string, write func(w *bufio.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
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
