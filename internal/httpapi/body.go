package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// NewServer returns the HTTP server every Tailor process listens with: the
// handler of New, a bound on reading request headers and on idle
// keep-alive connections, and the server's own errors in the log. Request
// bodies get their own idle bound (Options.BodyIdleTimeout) instead of
// ReadTimeout, which would cut a long but steady upload. Shutdown ends the
// streams that follow (events, run logs: a dashboard keeps one open) and
// waits for every other request.
func NewServer(opts Options) *http.Server {
	opts.defaults()
	h, _, s := newRouter(opts)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(s.stopStreams)
	return srv
}

// guardBodies makes every request body fail with a typed error instead of a
// bare I/O error: 408 when it stalls for longer than idle, 400 when it ends
// before its Content-Length.
func guardBodies(next http.Handler, idle time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &guardedBody{rc: r.Body, ctl: http.NewResponseController(w), idle: idle, want: r.ContentLength}
		}
		next.ServeHTTP(w, r)
	})
}

// guardedBody is a request body with a read deadline renewed before every
// read and cleared at its end, so that a stalled client is cut after idle
// and a finished body leaves the connection as it found it.
type guardedBody struct {
	rc   io.ReadCloser
	ctl  *http.ResponseController
	idle time.Duration
	want int64 // Content-Length, -1 when unknown
	got  int64
	done bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	if b.done {
		return b.rc.Read(p)
	}
	// Not every ResponseWriter supports deadlines (httptest recorders);
	// then the body is read without one.
	_ = b.ctl.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.rc.Read(p)
	b.got += int64(n)
	if err == nil {
		return n, nil
	}
	b.finish()
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF), errors.As(err, &mbe):
		return n, err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, errs.Timeout("request body stalled: no bytes for %s after %d bytes; send the body without pauses", b.idle, b.got)
	case errors.Is(err, io.ErrUnexpectedEOF) && b.want >= 0:
		return n, errs.Invalid("request body ended after %d of its %d bytes (Content-Length)", b.got, b.want)
	}
	return n, errs.Invalid("read request body after %d bytes: %v", b.got, err)
}

// finish clears the deadline: the server's own background read of the
// connection must not inherit it once the body is done.
func (b *guardedBody) finish() {
	if !b.done {
		b.done = true
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
}

func (b *guardedBody) Close() error {
	b.finish()
	return b.rc.Close()
}

// upload holds one of the MaxUploads slots for the length of an import. A
// burst waits up to UploadWait for a slot (its body unread, so it costs no
// memory); after that it is a 503 and the client retries after Retry-After.
func (s *server) upload(ctx context.Context) (release func(), err error) {
	select {
	case s.uploads <- struct{}{}:
		return func() { <-s.uploads }, nil
	default:
	}
	t := time.NewTimer(s.opts.UploadWait)
	defer t.Stop()
	select {
	case s.uploads <- struct{}{}:
		return func() { <-s.uploads }, nil
	case <-t.C:
		return nil, errs.Unavailable("%d uploads are in progress, the most this server takes at once, and none ended within %s; retry shortly", cap(s.uploads), s.opts.UploadWait)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// uploadBody is an import's request body: bounded by MaxUpload, with an
// error that says so and what to do when it is passed, and its length
// (Content-Length, -1 when unknown) for the application's free-space
// check before it stages anything.
type uploadBody struct {
	r     io.Reader
	size  int64
	limit int64
}

func (s *server) uploadBody(r *http.Request) *uploadBody {
	return &uploadBody{r: http.MaxBytesReader(nil, r.Body, s.opts.MaxUpload), size: r.ContentLength, limit: s.opts.MaxUpload}
}

// Size is the body's declared length, -1 when unknown.
func (b *uploadBody) Size() int64 { return b.size }

func (b *uploadBody) Read(p []byte) (int, error) {
	if b.size > b.limit { // refused before a byte is read
		return 0, b.tooLarge(&http.MaxBytesError{Limit: b.limit})
	}
	n, err := b.r.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = b.tooLarge(mbe)
	}
	return n, err
}

// tooLarge has a kind, so the parsers pass it through instead of blaming a
// record; the wrapped MaxBytesError makes it a 413.
func (b *uploadBody) tooLarge(mbe *http.MaxBytesError) error {
	return errs.Invalid("the upload is larger than %d bytes, this server's import limit (tailor server --max-import-bytes); import it in parts (datasets: --append) or raise the limit: %w", b.limit, mbe)
}
