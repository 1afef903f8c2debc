package app

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/tailor-ml/tailor/internal/serve/childengine"
	"github.com/tailor-ml/tailor/internal/worker"
)

// workerEnv, when set in a child of the test binary, makes it a training
// worker (as `tailor worker train`), so app tests can run real runs.
const workerEnv = "TAILOR_APP_TEST_WORKER"

// serveEnv, when set, makes the child a serving process (as `tailor worker
// serve`), so app tests can serve through a real one.
const serveEnv = "TAILOR_APP_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
		if err := childengine.Serve(context.Background(), os.Stdin, os.Stdout, childengine.ChildOptions{Logger: logger, Getenv: os.Getenv}); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(workerEnv) == "1" {
		if err := worker.Train(context.Background(), os.Stdin, os.Stdout, worker.Options{Threads: 1, Getenv: os.Getenv}); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// openWithWorkers opens and starts an App whose training workers are real
// child processes (this test binary under workerEnv); it is closed when
// the test ends.
func openWithWorkers(t *testing.T) (*App, context.Context) {
	t.Helper()
	t.Setenv(workerEnv, "1")
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Open(Options{DataDir: t.TempDir(), EngineVersion: "test", WorkerCommand: []string{os.Args[0]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		a.Close()
	})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return a, ctx
}
