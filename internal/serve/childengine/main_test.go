package childengine_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/internal/blob/blobstore"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/childengine"
	"github.com/tailor-ml/tailor/internal/serve/modelengine"
	"github.com/tailor-ml/tailor/internal/serve/servetest"
)

// childEnv, when set in a child of the test binary, makes it a serving
// process (as `tailor worker serve`), so tests run real children.
const childEnv = "TAILOR_CHILDENGINE_TEST_CHILD"

// hangModel is a model name whose loads block until canceled, in a child
// of the test binary: the stand-in for a hung step; stuckModel's never
// return, canceled or not.
const (
	hangModel  = "hang"
	stuckModel = "stuck"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
		err := childengine.Serve(context.Background(), os.Stdin, os.Stdout, childengine.ChildOptions{Logger: logger,
			Loader: func(spec childengine.Spec) (modelengine.Loader, error) {
				blobs, err := blobstore.Open(context.Background(), spec.Blob, nil)
				if err != nil {
					return nil, err
				}
				return &hangLoader{BlobLoader: modelengine.BlobLoader{Blobs: blobs, WorkDir: spec.WorkDir}, logger: logger}, nil
			}})
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hangLoader loads from the blob store, except that a base of model
// hangModel never loads: it waits for its context and logs the cancel.
type hangLoader struct {
	modelengine.BlobLoader
	logger *slog.Logger
}

func (l *hangLoader) Base(ctx context.Context, t serve.Target) (*modelengine.Base, error) {
	if t.Model == stuckModel {
		l.logger.Info("stuck started", "base", t.BaseID)
		select {}
	}
	if t.Model == hangModel {
		l.logger.Info("hang started", "base", t.BaseID)
		<-ctx.Done()
		l.logger.Info("hang canceled", "base", t.BaseID, "err", ctx.Err().Error())
		return nil, ctx.Err()
	}
	return l.BlobLoader.Base(ctx, t)
}

// records is a slog handler that keeps messages, to see what the child
// logged through the parent.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// count is how many messages contain s.
func (r *records) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(slices.DeleteFunc(slices.Clone(r.msgs), func(m string) bool { return !strings.Contains(m, s) }))
}

// newEngine starts a child engine over f's blob store.
func newEngine(t *testing.T, f *servetest.Fixture, spec childengine.Spec, logger *slog.Logger, tune ...func(*childengine.Options)) *childengine.Engine {
	t.Helper()
	blobURL, err := blobstore.FileURL(f.Blobs.Dir())
	if err != nil {
		t.Fatal(err)
	}
	spec.Blob, spec.WorkDir = blobURL, t.TempDir()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := childengine.Options{Command: []string{os.Args[0]}, Env: []string{childEnv + "=1"}, Blobs: f.Blobs, Spec: spec, Logger: logger}
	for _, fn := range tune {
		fn(&opts)
	}
	e, err := childengine.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
