// Package worker is the process that trains one run: `tailor worker train`
// reads a run.Spec on stdin, loads the resolved base model and dataset
// version from the artifact store, trains with the engine, writes
// checkpoints and the adapter back to the store, and reports progress as
// run.Message lines on stdout. The server supervises it (internal/run).
// With --api (TrainRemote, remote.go: a Kubernetes Job's pod) it fetches
// its spec from the server and posts its messages back over the API
// instead, with the run-scoped credential in TAILOR_TOKEN.
//
// It stops when its stdin closes (the server died) or on cancellation, at a
// step boundary; a later worker resumes from the last checkpoint to the same
// bytes.
package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/blob/blobstore"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/run"
)

// Options configure a worker.
type Options struct {
	Logger *slog.Logger
	// Threads is the number of goroutines and BLAS threads (default 2).
	Threads int
	// ProgressEvery throttles progress messages (default 250ms); the first
	// and last steps are always reported.
	ProgressEvery time.Duration
	Now           func() time.Time
	// RunID, when set, must match the spec's run id.
	RunID string
	// Getenv reads the environment for the artifact store's endpoint and
	// credentials (os.Getenv in `tailor worker train`; nil reads nothing,
	// which suffices for a file:// store).
	Getenv func(string) string
}

// Train runs one training worker: spec from stdin, messages to stdout.
func Train(ctx context.Context, stdin io.Reader, stdout io.Writer, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Threads <= 0 {
		opts.Threads = 2
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 250 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	br := bufio.NewReader(stdin)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("worker: read spec from stdin: %w", err)
	}
	var spec run.Spec
	if err := json.Unmarshal(line, &spec); err != nil {
		return errs.Invalid("worker: spec is not valid JSON: %v", err)
	}
	if opts.RunID != "" && opts.RunID != spec.RunID {
		return errs.Invalid("worker: started for run %s but the spec is for run %s", opts.RunID, spec.RunID)
	}
	// The server keeps stdin open for the worker's life; EOF means it died.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, br)
		cancel()
	}()
	enc := json.NewEncoder(stdout)
	w := &job{spec: spec, opts: opts, send: func(m run.Message) { _ = enc.Encode(m) }}
	return w.run(ctx)
}

type job struct {
	spec run.Spec
	opts Options
	mu   sync.Mutex
	// send delivers one message: a stdout line, or a post to the API
	// (remote.go). Calls are serialized by mu.
	send  func(run.Message)
	blobs blob.Store
	dir   string
	base  *loaded // the base model, when the recipe has one

	// FLOP count of this attempt (countFLOPs, addFLOPs), guarded by mu.
	params, trainable int64
	flops             float64
}

func (j *job) addFLOPs(f float64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flops += f
}

func (j *job) flopsSoFar() float64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.flops
}

func (j *job) emit(m run.Message) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.send(m)
}

func (j *job) logf(format string, args ...any) {
	j.emit(run.Message{Type: run.MsgLog, Message: fmt.Sprintf(format, args...)})
}

func (j *job) run(ctx context.Context) error {
	if j.opts.Threads <= 0 {
		j.opts.Threads = 2
	}
	if j.opts.ProgressEvery <= 0 {
		j.opts.ProgressEvery = 250 * time.Millisecond
	}
	if j.opts.Now == nil {
		j.opts.Now = time.Now
	}
	if j.opts.Logger == nil {
		j.opts.Logger = slog.New(slog.DiscardHandler)
	}
	blobs, err := blobstore.Open(ctx, j.spec.Blob, j.opts.Getenv)
	if err != nil {
		return fmt.Errorf("worker: open artifact store: %w", err)
	}
	j.blobs = blobs
	j.dir = filepath.Join(j.spec.WorkDir, j.spec.RunID)
	if err := os.MkdirAll(j.dir, 0o755); err != nil {
		return err
	}
	r, err := recipe.Parse("recipe", j.spec.Recipe)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	if r.Base != nil && j.spec.Inputs.Base.Manifest == "" {
		return errs.Invalid("worker: recipe %s selects base %s but the spec resolved none", r.Name, r.Base.String())
	}
	switch j.spec.Inputs.Kind {
	case run.KindEval:
		return j.evaluate(ctx, r)
	case run.KindProfile:
		return j.profile(ctx, r)
	}
	switch r.Task {
	case recipe.TaskClassify, recipe.TaskSFT:
		if r.Base == nil {
			return errs.Invalid("worker: recipe %s: task %s needs a base model", r.Name, r.Task)
		}
		return j.finetune(ctx, r)
	case recipe.TaskPretrain:
		return j.pretrain(ctx, r)
	}
	return errs.Invalid("worker: recipe %s: task %s is not supported", r.Name, r.Task)
}

// readJSONBlob decodes a JSON blob.
func (j *job) readJSONBlob(ctx context.Context, digest string, v any) error {
	rc, err := j.blobs.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	return json.NewDecoder(rc).Decode(v)
}

// putFile stores a file written by write and returns its digest.
func (j *job) putFile(ctx context.Context, name string, write func(io.Writer) error) (string, error) {
	p := filepath.Join(j.dir, name)
	// #nosec G304 -- a file in the job's own work dir, name chosen by the worker
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	// #nosec G304 -- re-opens the file the worker just wrote in its work dir
	f, err = os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d, _, err := j.blobs.Put(ctx, f)
	if err != nil {
		return "", err
	}
	return d, os.Remove(p)
}
