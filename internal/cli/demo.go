package cli

import (
	"context"
	"flag"
	"log/slog"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/corpus"
	"github.com/tailor-ml/tailor/internal/demo"
)

func demoCommand() *command {
	return &command{name: "demo", usage: "run the end-to-end demo on the embedded defaults [--data-dir DIR] [--act one|drift|rebase] [--label-share 0.3]", run: runDemo}
}

func runDemo(e *env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dataDir := fs.String("data-dir", ".tailor-demo", "where the demo keeps its server data and inputs")
	baseDir := fs.String("base-dir", "models/tailor-tiny", "the base model folder to customize")
	rebaseDir := fs.String("rebase-dir", "models/tailor-tiny-v2", "act rebase: the new base version's folder")
	cache := fs.String("cache", "", "npm tarball cache (default $TAILOR_CACHE/npm or ~/.cache/tailor/npm)")
	verbose := fs.Bool("verbose", false, "log the server's work")
	act := fs.String("act", "", "which acts: \"\" and drift (the default): act one, then act two, continuous adaptation; one: train, gate, promote and serve only; rebase: act one, then act three, a new base version (each reuses what is done)")
	share := fs.Float64("label-share", 0.3, "act two: share of period-2 requests whose label arrives late")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *act != "" && *act != "one" && *act != "drift" && *act != "rebase" {
		return usagef("demo: --act %q: use one, drift or rebase", *act)
	}
	if *share <= 0 || *share > 1 {
		return usagef("demo: --label-share %v: use a share in (0, 1]", *share)
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(e.stderr, nil))
	}
	return demo.Run(e.ctx, demo.Options{DataDir: *dataDir, BaseDir: *baseDir, RebaseDir: *rebaseDir, Corpus: corpus.Options{CacheDir: *cache}, EngineVersion: engineVersion(), Out: e.stdout, Logger: logger,
		Act: *act, Drift: demo.DriftOptions{LabelShare: *share},
		Follow: func(ctx context.Context, c *api.Client, id string) error { return followRun(e, c, id, false) }})
}
