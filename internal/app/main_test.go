package app

import (
	"context"
	"os"
	"testing"

	"github.com/tailor-ml/tailor/internal/worker"
)

// workerEnv, when set in a child of the test binary, makes it a training
// worker (as `tailor worker train`), so app tests can run real runs.
const workerEnv = "TAILOR_APP_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := worker.Train(context.Background(), os.Stdin, os.Stdout, worker.Options{Threads: 1}); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
