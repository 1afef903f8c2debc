package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/run"
)

// RemoteOptions say where a remote worker finds its server: `tailor worker
// train --api URL --run ID`, with the run-scoped credential the server
// minted for this attempt in TAILOR_TOKEN (a Kubernetes Secret).
type RemoteOptions struct {
	// API is the server's base URL ("http://tailor.ns.svc:7070").
	API string
	// RunID is the run this worker trains.
	RunID string
	// Token is the worker credential (tlw_…). It is sent only in the
	// Authorization header and never logged.
	Token string
	// WorkDir is this machine's scratch directory (default
	// $TMPDIR/tailor-worker); the server's own is meaningless here.
	WorkDir string
	// HTTP is the client (default: one with a 2-minute timeout per request).
	HTTP *http.Client
	// RetryFor is how long a message post is retried while the server does
	// not answer or answers 5xx (default 2 minutes).
	RetryFor time.Duration
}

// TrainRemote is Train for a worker that reaches its server over the API:
// it fetches its spec (GET /v1/runs/{id}/worker/spec), trains, and posts
// every message (POST /v1/runs/{id}/worker/messages), numbered so a post
// retried after a lost answer is not recorded twice. On failure it posts
// the error (run.MsgError) before returning it. When the server says the
// attempt is over (the run was canceled, or a newer attempt started) it
// stops at the next step boundary.
func TrainRemote(ctx context.Context, ro RemoteOptions, opts Options) error {
	if ro.API == "" || ro.RunID == "" {
		return errs.Invalid("worker: --api and --run are both required for a remote worker")
	}
	if ro.Token == "" {
		return errs.Invalid("worker: no credential: the server hands a remote worker its credential in TAILOR_TOKEN")
	}
	if ro.HTTP == nil {
		ro.HTTP = &http.Client{Timeout: 2 * time.Minute}
	}
	if ro.RetryFor <= 0 {
		ro.RetryFor = 2 * time.Minute
	}
	if ro.WorkDir == "" {
		ro.WorkDir = filepath.Join(os.TempDir(), "tailor-worker")
	}
	c := &apiClient{base: strings.TrimRight(ro.API, "/"), run: ro.RunID, token: ro.Token, http: ro.HTTP, retryFor: ro.RetryFor}
	var spec run.Spec
	if err := c.call(ctx, http.MethodGet, "spec", nil, &spec); err != nil {
		return fmt.Errorf("worker: fetch the spec of run %s from %s: %w", ro.RunID, ro.API, err)
	}
	if spec.RunID != ro.RunID {
		return errs.Invalid("worker: started for run %s but the server sent the spec of run %s", ro.RunID, spec.RunID)
	}
	spec.WorkDir = ro.WorkDir
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c.stop = cancel
	w := &job{spec: spec, opts: opts, send: c.post(ctx)}
	err := w.run(ctx)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return fmt.Errorf("worker: %w", cause) // the server ended the attempt: nothing to report
	}
	if err != nil && parent.Err() == nil {
		// Stopped by a signal (the pod deleted or evicted), the worker
		// reports nothing: the server sees it lost and resumes the run.
		w.emit(run.Message{Type: run.MsgError, Message: err.Error()})
	}
	return err
}

// apiClient calls one run's worker routes.
type apiClient struct {
	base, run, token string
	http             *http.Client
	retryFor         time.Duration
	seq              int64                   // number of the next message to post
	stop             context.CancelCauseFunc // ends the worker when its attempt is over
}

// post returns the job's send function: each message is posted at once,
// retried while the server is unreachable; when the server refuses it
// (the attempt is over) the worker is stopped.
func (c *apiClient) post(ctx context.Context) func(run.Message) {
	return func(m run.Message) {
		// Post with a context of its own: a message about the worker's end
		// (its error) must go out after ctx is canceled.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.retryFor+time.Minute)
		defer cancel()
		var ack run.Ack
		if err := c.call(pctx, http.MethodPost, "messages", run.Batch{Seq: c.seq, Messages: []run.Message{m}}, &ack); err != nil {
			c.stop(fmt.Errorf("post %s message to the server: %w", m.Type, err))
			return
		}
		c.seq = ack.Next
	}
}

// refusal is an answer that retrying cannot change.
type refusal struct {
	status int
	msg    string
}

func (r *refusal) Error() string { return fmt.Sprintf("HTTP %d: %s", r.status, r.msg) }

// call sends one request to /v1/runs/{run}/worker/{what}, retrying on
// transport errors and 5xx answers until retryFor has passed.
func (c *apiClient) call(ctx context.Context, method, what string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	u := c.base + "/v1/runs/" + url.PathEscape(c.run) + "/worker/" + what
	deadline := time.Now().Add(c.retryFor)
	wait := 100 * time.Millisecond
	for {
		err := c.once(ctx, method, u, body, out)
		var ref *refusal
		if err == nil || errors.As(err, &ref) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func (c *apiClient) once(ctx context.Context, method, u string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error struct{ Message string } `json:"error"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
			msg = eb.Error.Message
		}
		if resp.StatusCode >= 500 {
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
		}
		return &refusal{status: resp.StatusCode, msg: msg}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, u, err)
	}
	return nil
}
