package cli

import (
	"flag"
	"fmt"
	"slices"

	"github.com/tailor-ml/tailor/internal/corpus"
)

func corpusCommand() *command {
	return &command{name: "corpus", usage: "fetch the public-domain corpora and write them as dataset files", subs: []*command{
		{name: "export", usage: "export --dir DIR: SpamAssassin periods, email-header SFT pairs, pretraining passages", run: corpusExport},
	}}
}

func corpusExport(e *env, args []string) error {
	fs := flag.NewFlagSet("corpus export", flag.ContinueOnError)
	dir := fs.String("dir", "corpus", "output directory")
	cache := fs.String("cache", "", "npm tarball cache (default $TAILOR_CACHE/npm or ~/.cache/tailor/npm)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	sum, err := corpus.Export(e.ctx, *dir, corpus.Options{CacheDir: *cache})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "spam period 1: %v; period 2: %v; pretraining: %d documents, %d passages, %d bytes, %s; email pretraining: %d passages from %d period-1 train ham bodies\n",
		sum.Period1, sum.Period2, sum.Documents, sum.Passages, sum.TextBytes, sum.TextHash, sum.EmailPassages, sum.HamBodies)
	var names []string
	for n := range sum.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintln(e.stdout, sum.Files[n])
	}
	return nil
}
