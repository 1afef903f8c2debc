package cli

import (
	"context"
	"os"
	"testing"

	"github.com/tailor-ml/tailor/internal/blob/blobstore"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/childengine"
	"github.com/tailor-ml/tailor/internal/serve/servetest"
)

// mainEnv, when set in a child of the test binary, makes it the tailor
// command line, so tests can run real subcommands as child processes.
const mainEnv = "TAILOR_CLI_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestWorkerServe runs `tailor worker serve` as the serving process of a
// child engine: it loads a classifier and answers.
func TestWorkerServe(t *testing.T) {
	ctx := context.Background()
	f := servetest.ForTest(t)
	cls, err := f.Classifier(1, []string{"ham", "spam"})
	if err != nil {
		t.Fatal(err)
	}
	blobURL, err := blobstore.FileURL(f.Blobs.Dir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := childengine.New(childengine.Options{Command: []string{os.Args[0], "worker", "serve"}, Env: []string{mainEnv + "=1"},
		Blobs: f.Blobs, Spec: childengine.Spec{Blob: blobURL, WorkDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	l, err := e.Load(ctx, cls)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Classify(ctx, []serve.ClassifyRow{{Model: l, Tokens: l.Tokenizer.Encode("win a free prize", true)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 1 || len(p[0]) != 2 || p[0][0]+p[0][1] < 0.999 || p[0][0]+p[0][1] > 1.001 {
		t.Fatalf("probabilities %v", p)
	}
}
