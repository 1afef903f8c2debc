package busaddr_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/bus/busaddr"
	"github.com/tailor-ml/tailor/internal/bus/nats"
	"github.com/tailor-ml/tailor/internal/bus/nats/natstest"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

func TestParse(t *testing.T) {
	cases := []struct {
		raw  string
		want busaddr.Location
		str  string // canonical form
		err  string // substring of the error; "" when it parses
	}{
		{raw: "local", want: busaddr.Location{Scheme: "local"}, str: "local"},
		{raw: "nats://10.0.0.1:4222", want: busaddr.Location{Scheme: "nats", Servers: []string{"nats://10.0.0.1:4222"}}, str: "nats://10.0.0.1:4222"},
		{raw: "nats://nats-0", want: busaddr.Location{Scheme: "nats", Servers: []string{"nats://nats-0:4222"}}, str: "nats://nats-0:4222"},
		{raw: "nats://nats-0/", want: busaddr.Location{Scheme: "nats", Servers: []string{"nats://nats-0:4222"}}, str: "nats://nats-0:4222"},
		{raw: "nats://a:1,tls://b:2", want: busaddr.Location{Scheme: "nats", Servers: []string{"nats://a:1", "tls://b:2"}}, str: "nats://a:1,tls://b:2"},
		{raw: "nats://[::1]:4223", want: busaddr.Location{Scheme: "nats", Servers: []string{"nats://[::1]:4223"}}, str: "nats://[::1]:4223"},

		{raw: "", err: "empty"},
		{raw: "LOCAL", err: "no scheme"},
		{raw: "127.0.0.1:4222", err: "cannot contain colon"},
		{raw: "nats-0:4222", err: `unknown scheme "nats-0"`},
		{raw: "http://a:4222", err: `unknown scheme "http"`},
		{raw: "nats://a:4222,", err: "server 2"},
		{raw: "nats://a:4222,b:4222", err: `server 2 ("b:4222")`},
		{raw: "nats://user:pw@a:4222", err: "TAILOR_NATS_CREDS"},
		{raw: "nats://a:4222/stream", err: "only nats://host:port"},
		{raw: "nats://a:4222?x=1", err: "only nats://host:port"},
		{raw: "nats://a:4222#f", err: "only nats://host:port"},
		{raw: "nats:a", err: "only nats://host:port"},
		{raw: "nats://:4222", err: "no host"},
		{raw: "nats://a:", err: "empty port"},
		{raw: "nats://a:0", err: "not in 1-65535"},
		{raw: "nats://a:70000", err: "not in 1-65535"},
		{raw: "::", err: "missing protocol scheme"},
		{raw: "nats://::1", err: "in brackets"},
		{raw: "nats://[zz::1]:4222", err: "invalid host"},
	}
	for _, c := range cases {
		t.Run(c.raw, func(t *testing.T) {
			got, err := busaddr.Parse(c.raw)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, errs.ErrInvalid) {
					t.Fatalf("Parse(%q) = %+v, %v; want an invalid error containing %q", c.raw, got, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Scheme != c.want.Scheme || !slices.Equal(got.Servers, c.want.Servers) {
				t.Fatalf("Parse(%q) = %+v, want %+v", c.raw, got, c.want)
			}
			if s := got.String(); s != c.str {
				t.Fatalf("String() = %q, want %q", s, c.str)
			}
		})
	}
}

// FuzzParse: Parse never panics, refuses only with an invalid error, and
// what it accepts round-trips through String.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"local", "nats://a:4222", "nats://a,tls://b:1", "nats://u@a", "nats://[::1]:1/", "", ",", "nats://a:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		l, err := busaddr.Parse(raw)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("Parse(%q): %v is not an invalid error", raw, err)
			}
			return
		}
		again, err := busaddr.Parse(l.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, but its String %q does not parse: %v", raw, l, l.String(), err)
		}
		if again.Scheme != l.Scheme || !slices.Equal(again.Servers, l.Servers) {
			t.Fatalf("round trip of %q: %+v, then %+v", raw, l, again)
		}
	})
}

// TestOpen opens both kinds and sends an event through each.
func TestOpen(t *testing.T) {
	srv, err := natstest.Embedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ctx := context.Background()
	for _, c := range []struct {
		raw  string
		kind string
	}{{"", "local"}, {"local", "local"}, {srv.URL, "nats"}} {
		t.Run(c.kind+"/"+c.raw, func(t *testing.T) {
			b, err := busaddr.Open(ctx, c.raw, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			switch b.(type) {
			case *bus.Local:
				if c.kind != "local" {
					t.Fatalf("Open(%q) is the in-process bus", c.raw)
				}
			case *nats.Bus:
				if c.kind != "nats" {
					t.Fatalf("Open(%q) is a NATS bus", c.raw)
				}
			default:
				t.Fatalf("Open(%q) = %T", c.raw, b)
			}
			sub := b.Subscribe(4)
			b.Publish(store.Event{Seq: 7, Type: "test.sent", Subject: "x", Time: time.Unix(1, 0).UTC()})
			select {
			case e := <-sub.C:
				if e.Seq != 7 || e.Type != "test.sent" {
					t.Fatalf("got %+v", e)
				}
			case <-time.After(30 * time.Second): // a hang guard
				t.Fatal("no event")
			}
		})
	}
}

// TestOpenRefuses: a bad address or a missing server is a clear error.
func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	if _, err := busaddr.Open(ctx, "nats://u:p@a", nil, nil); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("credentials in the address: %v, want invalid", err)
	}
	// A port nothing listens on (the embedded server's, once closed).
	srv, err := natstest.Embedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	url := srv.URL
	srv.Close()
	_, err = busaddr.Open(ctx, url, nil, nil)
	if !errors.Is(err, errs.ErrUnavailable) || !strings.Contains(err.Error(), "JetStream") {
		t.Fatalf("no server: %v, want unavailable naming JetStream", err)
	}
	if _, err := busaddr.Open(ctx, url, func(string) string { return "/nonexistent/tailor.creds" }, nil); err == nil {
		t.Fatal("a missing credentials file opened")
	}
}
