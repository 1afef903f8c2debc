package trigger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Resolver looks up a host's addresses (*net.Resolver fits).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// privateAddr says why an address is refused as a webhook target ("" when
// it is public).
func privateAddr(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsPrivate():
		return "private"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsMulticast() || a.IsInterfaceLocalMulticast():
		return "multicast"
	case a.Is4() && a.As4()[0] == 100 && a.As4()[1]&0xc0 == 64:
		return "shared (carrier-grade NAT)"
	}
	return ""
}

// RedactURL is how a webhook URL is shown in errors, logs, events and
// firing results: its scheme and host, with the rest replaced. A webhook's
// path or query is often its secret (Slack, Discord and Teams put the
// token there), and whoever can read logs or events must not learn it.
// Only the stored trigger spec holds the whole URL.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "[webhook URL]"
	}
	out := u.Scheme + "://" + u.Host
	if u.Opaque != "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		out += "/[redacted]"
	}
	return out
}

// CheckTarget resolves rawURL's host and refuses it when any of its
// addresses is loopback, link-local, private, unspecified or multicast,
// unless allowPrivate. It is the check apply time and delivery time share;
// delivery checks again at connect time, so a name that later resolves
// elsewhere is still refused.
func CheckTarget(ctx context.Context, r Resolver, rawURL string, allowPrivate bool) error {
	shown := RedactURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return errs.Invalid("webhook %s: want an http or https URL", shown)
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = r.LookupNetIP(ctx, "ip", host); err != nil {
		return errs.Unavailable("webhook %s: resolve %s: %v", shown, host, err)
	}
	for _, a := range addrs {
		if why := privateAddr(a); why != "" {
			return errs.Forbidden("webhook %s: %s resolves to %s, a %s address; set allow_private: true to send there", shown, host, a, why)
		}
	}
	return nil
}

// WebhookClient returns an HTTP client for webhooks: it follows no
// redirects and, unless allowPrivate, refuses at connect time any address
// CheckTarget would refuse.
func WebhookClient(allowPrivate bool, timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("webhook: unexpected address %q", address)
			}
			if why := privateAddr(ap.Addr()); why != "" {
				return errs.Forbidden("webhook: %s is a %s address; set allow_private: true to send there", ap.Addr(), why)
			}
			return nil
		}
	}
	tr := &http.Transport{DialContext: d.DialContext, Proxy: nil, TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// Deliver checks the target and POSTs body as JSON; a status other than
// 2xx is an error. It returns the status code.
func Deliver(ctx context.Context, r Resolver, c *http.Client, rawURL string, allowPrivate bool, body []byte) (int, error) {
	if err := CheckTarget(ctx, r, rawURL, allowPrivate); err != nil {
		return 0, err
	}
	shown := RedactURL(rawURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, errs.Invalid("webhook %s: not a URL a request can be sent to", shown)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tailor-trigger")
	resp, err := c.Do(req)
	if err != nil {
		// A *url.Error quotes the whole URL; keep only what failed.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("webhook %s: %w", shown, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("webhook %s answered %s", shown, resp.Status)
	}
	return resp.StatusCode, nil
}
