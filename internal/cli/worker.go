package cli

import (
	"flag"
	"log/slog"

	"github.com/tailor-ml/tailor/internal/serve/childengine"
	"github.com/tailor-ml/tailor/internal/worker"
)

func workerCommand() *command {
	return &command{name: "worker", usage: "internal: processes started by the server", subs: []*command{
		{name: "train", usage: "train one run from a spec on stdin (started by the server), or with --api fetch it from the server (a Kubernetes Job)", run: workerTrain},
		{name: "serve", usage: "run the models for serving, over the framed protocol on stdin and stdout (started by the server)", run: workerServe},
	}}
}

func workerTrain(e *env, args []string) error {
	fs := flag.NewFlagSet("worker train", flag.ContinueOnError)
	threads := fs.Int("threads", 2, "goroutines and BLAS threads")
	runID := fs.String("run", "", "id of the run the spec on stdin is for")
	apiURL := fs.String("api", "", "the server's URL: fetch the spec from it and post the messages back, with the run's worker credential from TAILOR_TOKEN, instead of stdin and stdout (the Kubernetes executor's Jobs)")
	workDir := fs.String("work-dir", "", "scratch directory of a worker started with --api (default $TMPDIR/tailor-worker)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts := worker.Options{Logger: logger, Threads: *threads, RunID: *runID, Getenv: e.getenv}
	if *apiURL != "" {
		if *runID == "" {
			return usagef("worker train: --api needs --run")
		}
		return worker.TrainRemote(e.ctx, worker.RemoteOptions{API: *apiURL, RunID: *runID, Token: e.getenv("TAILOR_TOKEN"), WorkDir: *workDir}, opts)
	}
	return worker.Train(e.ctx, e.stdin, e.stdout, opts)
}

// workerServe is the serving process: the spec (blob store address, budgets)
// comes in the protocol's first frame; logs go to stderr as JSON records,
// which the server re-logs.
func workerServe(e *env, args []string) error {
	fs := flag.NewFlagSet("worker serve", flag.ContinueOnError)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return childengine.Serve(e.ctx, e.stdin, e.stdout, childengine.ChildOptions{Logger: logger, Getenv: e.getenv})
}
