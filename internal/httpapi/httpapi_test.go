package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/errs"
)

// local lets every request without a token act as the local admin, as
// --insecure-local does; it needs no store.
var local = auth.New(auth.Options{InsecureLocal: true})

func TestStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{errs.Invalid("x"), http.StatusBadRequest},
		{fmt.Errorf("a: %w", errs.NotFound("x")), http.StatusNotFound},
		{errs.Conflict("x"), http.StatusConflict},
		{errs.Forbidden("x"), http.StatusForbidden},
		{errs.Unavailable("x"), http.StatusServiceUnavailable},
		{errs.Timeout("x"), http.StatusRequestTimeout},
		{&http.MaxBytesError{Limit: 1}, http.StatusRequestEntityTooLarge},
		{errs.Invalid("upload: %w", &http.MaxBytesError{Limit: 1}), http.StatusRequestEntityTooLarge},
		{fmt.Errorf("import: %w", errs.InsufficientStorage("x")), http.StatusInsufficientStorage},
		{errs.Unauthenticated("no token"), http.StatusUnauthorized},
		{fmt.Errorf("token: %w", errs.RateLimited("slow down")), http.StatusTooManyRequests},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		if got := Status(tt.err); got != tt.want {
			t.Errorf("Status(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestQueryBool(t *testing.T) {
	tests := []struct {
		query   string
		want    bool
		wantErr string
	}{
		{"", false, ""},
		{"append=true", true, ""},
		{"append=1", true, ""},
		{"append=false", false, ""},
		{"append=yes", false, `query parameter append="yes": want true or false`},
		{"append=TRUE", false, `query parameter append="TRUE": want true or false`},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := queryBool(q, "append")
		if tt.wantErr != "" {
			if !errors.Is(err, errs.ErrInvalid) || err.Error() != tt.wantErr {
				t.Errorf("%q: err = %v, want %q", tt.query, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q = %v, %v; want %v", tt.query, got, err, tt.want)
		}
	}
}

// eventsOnly is a Service that has committed events and nothing else.
type eventsOnly struct {
	Service
	events []api.Event
}

func (s eventsOnly) Events(_ context.Context, after int64) ([]api.Event, error) {
	var out []api.Event
	for _, e := range s.events {
		if e.Seq > after {
			out = append(out, e)
		}
	}
	return out, nil
}

func TestEventsTail(t *testing.T) {
	svc := eventsOnly{}
	for i := int64(1); i <= 5; i++ {
		svc.events = append(svc.events, api.Event{Seq: i, Type: "dataset.version.created", Subject: fmt.Sprint(i)})
	}
	h := New(Options{Service: svc, Auth: local})
	tests := []struct {
		query   string
		status  int
		wantIDs string
	}{
		{"", 200, "1 2 3 4 5"},
		{"tail=2", 200, "4 5"},
		{"tail=9", 200, "1 2 3 4 5"},
		{"after=3&tail=4", 200, "4 5"},
		{"after=1&tail=1", 200, "5"},
		{"tail=0", 400, ""},
		{"tail=-1", 400, ""},
		{"tail=x", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/events?"+tt.query, nil))
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status != 200 {
				if !strings.Contains(rec.Body.String(), "tail") {
					t.Errorf("the error does not name the parameter: %s", rec.Body)
				}
				return
			}
			var ids []string
			for _, l := range strings.Split(rec.Body.String(), "\n") {
				if id, ok := strings.CutPrefix(l, "id: "); ok {
					ids = append(ids, id)
				}
			}
			if got := strings.Join(ids, " "); got != tt.wantIDs {
				t.Errorf("ids %q, want %q", got, tt.wantIDs)
			}
		})
	}
}

// TestUIRoutes: with a UI handler, / and /ui/… go to it; the API keeps its
// JSON answers, for unknown paths under /v1/ too.
func TestUIRoutes(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ui "+r.URL.Path) })
	h := New(Options{Service: eventsOnly{}, UI: ui, Auth: local})
	tests := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/", 200, "ui /"},
		{"HEAD", "/", 200, ""},
		{"GET", "/ui/js/app.js", 200, "ui /ui/js/app.js"},
		{"GET", "/v1/health", 200, `"status": "ok"`},
		{"GET", "/v1/nothing", 404, `"kind": "not_found"`},
		{"GET", "/elsewhere", 404, `"kind": "not_found"`},
		{"POST", "/", 405, `"kind": "invalid"`},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s %s: %d %q, want %d with %q", tt.method, tt.path, rec.Code, rec.Body, tt.status, tt.body)
		}
	}
	// Without one, / is the API's 404.
	rec := httptest.NewRecorder()
	New(Options{Service: eventsOnly{}, Auth: local}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 404 {
		t.Errorf("GET / without a UI: %d", rec.Code)
	}
}

// following is an event store with live events that never come.
type following struct{ eventsOnly }

func (following) Subscribe(ctx context.Context) <-chan api.Event {
	ch := make(chan api.Event)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}

// TestShutdownEndsStreams: a followed event stream (the dashboard keeps
// one open) does not hold up Shutdown, which would otherwise wait for it
// until its deadline and fail.
func TestShutdownEndsStreams(t *testing.T) {
	srv := NewServer(Options{Service: following{}, Auth: local})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/events?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("follow: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a followed stream open: %v", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("the stream did not end cleanly: %v", err)
	}
}

// TestAccessCoversRoutes: every route registered has an action class in
// access.go (Handle panics otherwise), and the table names no route that is
// not registered.
func TestAccessCoversRoutes(t *testing.T) {
	_, rt, _ := newRouter(Options{Inference: http.NotFoundHandler(), Auth: local})
	served := map[string]bool{}
	for _, p := range rt.patterns {
		served[p] = true
	}
	for p := range access {
		if !served[p] {
			t.Errorf("access.go names %q, which no route serves", p)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a route without a class did not panic")
		}
	}()
	rt.Handle("GET /v1/unclassified", http.NotFoundHandler())
}

// TestNoAuthorityRefuses: a handler built without an authority serves
// nothing but the health check.
func TestNoAuthorityRefuses(t *testing.T) {
	h := New(Options{Service: eventsOnly{}})
	for path, want := range map[string]int{"/v1/health": 200, "/v1/events": 500} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("GET %s without an authority: %d, want %d", path, rec.Code, want)
		}
	}
}
