package childengine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/blob/blobstore"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/modelengine"
)

// ChildOptions configure Serve.
type ChildOptions struct {
	Logger *slog.Logger
	// Getenv reads the environment for the artifact store's endpoint and
	// credentials (os.Getenv in `tailor worker serve`; nil reads nothing,
	// which suffices for a file:// store).
	Getenv func(string) string
	// Loader, when set, builds the engine's loader from the spec (tests
	// wrap the blob loader with it); by default a modelengine.BlobLoader
	// over the store at the spec's address.
	Loader func(Spec) (modelengine.Loader, error)
}

// Serve is the child's side, `tailor worker serve`: it reads the spec
// from the hello frame on in, runs a modelengine.Engine, and answers the
// requests that follow on out, each in its own goroutine. It returns nil
// when in ends (the parent closed it or died).
func Serve(ctx context.Context, in io.Reader, out io.Writer, opts ChildOptions) error {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	br := bufio.NewReaderSize(in, 1<<20)
	hello, err := readFrame(br)
	if err != nil {
		return fmt.Errorf("serving process: read the spec: %w", err)
	}
	var spec Spec
	if hello.typ != frameHello {
		return fmt.Errorf("%w: first frame is %q, want a hello", errProtocol, hello.typ)
	}
	if err := decodeMeta(hello, &spec); err != nil {
		return err
	}
	var loader modelengine.Loader
	if opts.Loader != nil {
		loader, err = opts.Loader(spec)
	} else {
		var blobs blob.Store
		if blobs, err = blobstore.Open(ctx, spec.Blob, opts.Getenv); err == nil {
			loader = &modelengine.BlobLoader{Blobs: blobs, WorkDir: spec.WorkDir}
		}
	}
	if err != nil {
		return fmt.Errorf("serving process: open the artifact store: %w", err)
	}
	eng, err := modelengine.New(modelengine.Options{Loader: loader, BudgetBytes: spec.BudgetBytes, BaseBudgetBytes: spec.BaseBudgetBytes,
		CacheBudgetBytes: spec.CacheBudgetBytes, Threads: spec.Threads, Logger: opts.Logger})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &child{eng: eng, out: bufio.NewWriterSize(out, 1<<20), logger: opts.Logger, calls: map[uint64]context.CancelFunc{},
		models: map[modelKey]*serve.Loaded{}}
	f, _ := jsonFrame(frameHello, 0, helloReply{PID: os.Getpid()}, nil)
	if err := c.write(f); err != nil {
		return err
	}
	opts.Logger.Info("serving process ready", "pid", os.Getpid(), "base_budget_bytes", spec.BaseBudgetBytes, "budget_bytes", spec.BudgetBytes)
	defer c.wg.Wait()
	for {
		f, err := readFrame(br)
		if err != nil {
			cancel()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("serving process: %w", err)
		}
		switch f.typ {
		case frameCancel:
			c.cancel(f.id)
		case frameRelease:
			var m releaseMeta
			if err := decodeMeta(f, &m); err == nil {
				eng.Release(m.Seq)
			}
		default:
			cctx, ccancel := context.WithCancel(ctx)
			c.mu.Lock()
			c.calls[f.id] = ccancel
			c.mu.Unlock()
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer c.done(f.id)
				c.answer(cctx, f)
			}()
		}
	}
}

// modelKey is what identifies a model to the engine.
type modelKey struct{ base, manifest, adapter string }

func keyOf(t serve.Target) modelKey { return modelKey{t.BaseID, t.BaseManifest, t.Adapter} }

type child struct {
	eng    *modelengine.Engine
	logger *slog.Logger
	wg     sync.WaitGroup

	wmu sync.Mutex
	out *bufio.Writer

	mu     sync.Mutex
	calls  map[uint64]context.CancelFunc
	models map[modelKey]*serve.Loaded // loaded here, by what the engine needs
}

func (c *child) write(f frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := writeFrame(c.out, f); err != nil {
		return err
	}
	return c.out.Flush()
}

func (c *child) cancel(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cancel := c.calls[id]; cancel != nil {
		cancel()
	}
}

func (c *child) done(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cancel := c.calls[id]; cancel != nil {
		cancel()
		delete(c.calls, id)
	}
}

// answer runs one request and writes its answer.
func (c *child) answer(ctx context.Context, f frame) {
	reply, err := c.run(ctx, f)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if errors.Is(err, context.Canceled) {
		c.logger.Info("call canceled by the parent", "id", f.id, "type", string(f.typ))
	}
	if err != nil {
		reply = errorFrame(f.id, err)
	}
	err = c.write(reply)
	if errs.Kind(err) == "invalid" { // over the frame limits: say so instead
		err = c.write(errorFrame(f.id, err))
	}
	if err != nil {
		c.logger.Warn("write answer", "id", f.id, "err", err)
	}
}

func (c *child) run(ctx context.Context, f frame) (frame, error) {
	switch f.typ {
	case frameLoad:
		var t serve.Target
		if err := decodeMeta(f, &t); err != nil {
			return frame{}, err
		}
		l, err := c.load(ctx, t)
		if err != nil {
			return frame{}, err
		}
		return jsonFrame(frameResult, f.id, loadedMeta{Labels: l.Labels, MaxPositions: l.MaxPositions, MaxInputTokens: l.MaxInputTokens,
			VocabSize: l.VocabSize, EOS: l.EOS}, nil)
	case frameClassify, frameLogits:
		m, toks, err := decodeCall(f)
		if err != nil {
			return frame{}, err
		}
		models := make([]*serve.Loaded, len(m.Models))
		for i, t := range m.Models {
			if models[i], err = c.model(ctx, t); err != nil {
				return frame{}, err
			}
		}
		var out [][]float32
		if f.typ == frameClassify {
			rows := make([]serve.ClassifyRow, len(toks))
			for i, r := range m.Rows {
				rows[i] = serve.ClassifyRow{Model: models[r.Model], Tokens: toks[i]}
			}
			out, err = c.eng.Classify(ctx, rows)
		} else {
			rows := make([]serve.StepRow, len(toks))
			for i, r := range m.Rows {
				rows[i] = serve.StepRow{Seq: r.Seq, Model: models[r.Model], Tokens: toks[i]}
			}
			out, err = c.eng.Logits(ctx, rows)
		}
		if err != nil {
			return frame{}, err
		}
		return encodeRows(f.id, out)
	case frameStats:
		st := c.eng.Stats()
		st.ResidentBytes = residentBytes()
		return jsonFrame(frameResult, f.id, st, nil)
	}
	return frame{}, errs.Invalid("unknown request type %q", f.typ)
}

// load loads t in the engine and remembers it.
func (c *child) load(ctx context.Context, t serve.Target) (*serve.Loaded, error) {
	l, err := c.eng.Load(ctx, t)
	if err != nil {
		return nil, err
	}
	// Kept without the tokenizer, which the engine's steps do not use, so
	// an evicted base's tokenizer is not held here.
	meta := *l
	meta.Tokenizer = nil
	c.mu.Lock()
	c.models[keyOf(t)] = &meta
	c.mu.Unlock()
	return l, nil
}

// model returns the engine's model for t, loading it when this process
// has not yet (it was started after the parent's load: a restart).
func (c *child) model(ctx context.Context, t serve.Target) (*serve.Loaded, error) {
	c.mu.Lock()
	l := c.models[keyOf(t)]
	c.mu.Unlock()
	if l != nil {
		return l, nil
	}
	c.logger.Info("loading a model this process has not loaded (restarted?)", "model", t.VersionName(), "base", t.BaseID)
	return c.load(ctx, t)
}

// residentBytes is this process's resident set size (0 where /proc is
// not there to say).
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
