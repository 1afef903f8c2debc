// Package busaddr opens the event bus an address names. It is the one
// parser of bus addresses, used by `tailor server --bus`, as
// internal/blob/blobstore is for blob stores:
//
//	local                          the in-process bus (bus.Local): one server
//	nats://host:port[,nats://…]    internal/bus/nats on a JetStream stream,
//	                               shared by every replica given the same
//	                               servers (tls://host:port for TLS)
//
// An address never carries credentials, so it can go into logs and process
// lists: a NATS credentials file is named by the environment variable
// TAILOR_NATS_CREDS instead. This package imports internal/bus,
// internal/bus/nats and internal/errs; it is imported by the composition
// root (app) only.
package busaddr

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	natsgo "github.com/nats-io/nats.go"

	"github.com/tailor-ml/tailor/internal/bus"
	"github.com/tailor-ml/tailor/internal/bus/nats"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Schemes of the addresses Parse accepts.
const (
	SchemeLocal = "local" // the whole address is "local"
	SchemeNATS  = "nats"
	SchemeTLS   = "tls" // NATS over TLS
)

// DefaultNATSPort is the port a NATS server address without one gets.
const DefaultNATSPort = 4222

// EnvCreds names the environment variable holding the path of a NATS
// credentials file (.creds: a user JWT and its NKey seed).
const EnvCreds = "TAILOR_NATS_CREDS" // #nosec G101 -- the name of an environment variable, not a credential

// Location is a parsed bus address.
type Location struct {
	Scheme string // SchemeLocal or SchemeNATS
	// Servers are a NATS bus's servers, each "nats://host:port" or
	// "tls://host:port", in the order given.
	Servers []string
}

// String is the address in its canonical form; Parse(l.String()) equals l.
func (l Location) String() string {
	if l.Scheme == SchemeLocal {
		return SchemeLocal
	}
	return strings.Join(l.Servers, ",")
}

const want = "want local, or nats://host:port with more servers after commas"

// Parse reads a bus address. It does not connect.
func Parse(raw string) (Location, error) {
	switch raw {
	case "":
		return Location{}, errs.Invalid("bus address is empty; %s", want)
	case SchemeLocal:
		return Location{Scheme: SchemeLocal}, nil
	}
	var l Location
	for i, part := range strings.Split(raw, ",") {
		s, err := parseServer(part)
		if err != nil {
			return Location{}, errs.Invalid("bus address %q: server %d (%q): %v; %s", raw, i+1, part, err, want)
		}
		l.Servers = append(l.Servers, s)
	}
	l.Scheme = SchemeNATS
	return l, nil
}

// parseServer reads one NATS server URL and returns its canonical form.
func parseServer(raw string) (string, error) {
	if raw == "" {
		return "", errs.Invalid("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != SchemeNATS && u.Scheme != SchemeTLS {
		if u.Scheme == "" {
			return "", errs.Invalid("no scheme")
		}
		return "", errs.Invalid("unknown scheme %q", u.Scheme)
	}
	if u.User != nil {
		return "", errs.Invalid("credentials in the address; name a credentials file in %s instead", EnvCreds)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", errs.Invalid("a server is only %s://host:port", u.Scheme)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", errs.Invalid("no host")
	}
	if strings.Contains(host, ":") && (!strings.HasPrefix(u.Host, "[") || net.ParseIP(host) == nil) {
		return "", errs.Invalid("host %q: an IPv6 address goes in brackets, as [::1]:4222", u.Host)
	}
	if strings.HasSuffix(u.Host, ":") {
		return "", errs.Invalid("empty port")
	}
	n := DefaultNATSPort
	if port != "" {
		if n, err = strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", errs.Invalid("port %q is not in 1-65535", port)
		}
	}
	return u.Scheme + "://" + net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// Open parses raw and opens its bus: the in-process bus for "local" (and
// for ""), a NATS JetStream bus otherwise, reading a credentials file
// named by TAILOR_NATS_CREDS through getenv (nil reads nothing).
func Open(ctx context.Context, raw string, getenv func(string) string, logger *slog.Logger) (bus.Bus, error) {
	if raw == "" {
		raw = SchemeLocal
	}
	l, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	if l.Scheme == SchemeLocal {
		return bus.New(logger), nil
	}
	o := nats.Options{URL: l.String(), Logger: logger}
	if getenv != nil {
		if creds := getenv(EnvCreds); creds != "" {
			o.ConnectOptions = append(o.ConnectOptions, natsgo.UserCredentials(creds))
		}
	}
	return nats.Connect(ctx, o)
}
