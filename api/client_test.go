package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A request that could not be sent is unreachable (safe to retry); one
// whose answer was lost is "no answer" (it may have taken effect).
func TestTransportErrorsSayWhatHappened(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	if _, err := NewClient(addr, nil).Datasets(ctx, ""); !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrNoAnswer) {
		t.Errorf("refused connection: %v, want ErrUnreachable", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // the server dies after reading the request
		}
	}))
	defer srv.Close()
	if _, err := NewClient(srv.URL, nil).Datasets(ctx, ""); !errors.Is(err, ErrNoAnswer) || errors.Is(err, ErrUnreachable) {
		t.Errorf("connection closed before the answer: %v, want ErrNoAnswer", err)
	}
}
