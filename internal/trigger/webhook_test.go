package trigger

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// fakeResolver answers from a table (no network in tests).
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	as, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range as {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func TestCheckTarget(t *testing.T) {
	r := fakeResolver{
		"hooks.example.com": {"93.184.216.34"},
		"inside.example":    {"10.1.2.3"},
		"mixed.example":     {"93.184.216.34", "127.0.0.1"},
		"v6.example":        {"2606:2800:220:1:248:1893:25c8:1946"},
	}
	tests := []struct {
		url   string
		allow bool
		kind  error // nil: allowed
		why   string
	}{
		{"https://hooks.example.com/x", false, nil, ""},
		{"https://v6.example/x", false, nil, ""},
		{"http://127.0.0.1:8080/x", false, errs.ErrForbidden, "loopback"},
		{"http://[::1]/x", false, errs.ErrForbidden, "loopback"},
		{"http://169.254.169.254/latest/meta-data", false, errs.ErrForbidden, "link-local"},
		{"http://[fe80::1]/x", false, errs.ErrForbidden, "link-local"},
		{"http://192.168.1.10/x", false, errs.ErrForbidden, "private"},
		{"http://[fd00::1]/x", false, errs.ErrForbidden, "private"},
		{"http://0.0.0.0/x", false, errs.ErrForbidden, "unspecified"},
		{"http://[::ffff:127.0.0.1]/x", false, errs.ErrForbidden, "loopback"},
		{"http://100.64.0.1/x", false, errs.ErrForbidden, "shared"},
		{"https://inside.example/x", false, errs.ErrForbidden, "10.1.2.3, a private address"},
		{"https://mixed.example/x", false, errs.ErrForbidden, "loopback"},
		{"https://nowhere.example/x", false, errs.ErrUnavailable, "resolve"},
		{"ftp://hooks.example.com/x", false, errs.ErrInvalid, "http or https"},
		{"http://127.0.0.1:8080/x", true, nil, ""},
		{"https://inside.example/x", true, nil, ""},
	}
	for _, tc := range tests {
		err := CheckTarget(context.Background(), r, tc.url, tc.allow)
		if tc.kind == nil {
			if err != nil {
				t.Errorf("%s (allow_private=%v): %v, want allowed", tc.url, tc.allow, err)
			}
			continue
		}
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s (allow_private=%v): %v, want %v saying %q", tc.url, tc.allow, err, tc.kind, tc.why)
		}
	}
}

// A real loopback server: refused without allow_private, both by the
// check and by the dialer (a name that resolves elsewhere at check time
// still cannot reach it), and delivered to with it.
func TestDeliverLoopback(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.Header.Get("Content-Type") + " " + string(b)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ctx := context.Background()
	body := []byte(`{"trigger":"t"}`)

	_, err := Deliver(ctx, net.DefaultResolver, WebhookClient(false, 5*time.Second), srv.URL, false, body)
	if !errors.Is(err, errs.ErrForbidden) {
		t.Fatalf("loopback without allow_private: %v, want forbidden", err)
	}
	// The dialer refuses too, whatever the check was told.
	_, err = WebhookClient(false, 5*time.Second).Post(srv.URL, "application/json", strings.NewReader("{}"))
	if !errors.Is(err, errs.ErrForbidden) {
		t.Fatalf("dial to loopback: %v, want forbidden", err)
	}
	select {
	case b := <-got:
		t.Fatalf("refused webhook reached the server: %s", b)
	default:
	}
	status, err := Deliver(ctx, net.DefaultResolver, WebhookClient(true, 5*time.Second), srv.URL, true, body)
	if err != nil || status != http.StatusNoContent {
		t.Fatalf("with allow_private: %d, %v", status, err)
	}
	if b := <-got; b != "application/json "+string(body) {
		t.Errorf("server got %q", b)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://hooks.slack.com/services/T0/B0/SECRET", "https://hooks.slack.com/[redacted]"},
		{"https://h.example/hook?token=SECRET", "https://h.example/[redacted]"},
		{"https://h.example?SECRET", "https://h.example/[redacted]"},
		{"https://h.example/#SECRET", "https://h.example/[redacted]"},
		{"https://user:SECRET@h.example/x", "https://h.example/[redacted]"},
		{"https://user:SECRET@h.example", "https://h.example"},
		{"http://[::1]:8080/SECRET", "http://[::1]:8080/[redacted]"},
		{"https://h.example", "https://h.example"},
		{"mailto:SECRET@h.example", "[webhook URL]"},
		{"not a URL SECRET", "[webhook URL]"},
		{"https://h.example/%zzSECRET", "[webhook URL]"},
		{"", "[webhook URL]"},
	}
	for _, tc := range tests {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzRedactURL: whatever the input, the result is the URL's scheme and
// host alone (with "/[redacted]" when something followed), or a
// placeholder: never its user, path, query or fragment.
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"https://h.example/a?b#c", "http://u:p@h:1/x", "https://h.example", "x", "https://h.example?q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := RedactURL(s)
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			if got != "[webhook URL]" {
				t.Fatalf("RedactURL(%q) = %q, want the placeholder", s, got)
			}
			return
		}
		base := u.Scheme + "://" + u.Host
		if got != base && got != base+"/[redacted]" {
			t.Fatalf("RedactURL(%q) = %q, want %q with at most /[redacted]", s, got, base)
		}
	})
}

// Every error Deliver and CheckTarget return names the webhook by its
// scheme and host only: the secret in its path and query never shows.
func TestWebhookErrorsHideTheSecret(t *testing.T) {
	const secret = "s3cr3t-T0KEN"
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer failing.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	ctx := context.Background()
	tests := []struct {
		name  string
		url   string
		allow bool
		want  string
	}{
		{"answers 500", failing.URL + "/hook/" + secret + "?token=" + secret, true, "answered 500"},
		{"refuses the connection", closed.URL + "/hook/" + secret + "?token=" + secret, true, "connection refused"},
		{"private", "http://127.0.0.1/hook/" + secret, false, "loopback"},
		{"does not resolve", "https://nowhere.example/" + secret, false, "resolve"},
		{"not http", "ftp://h.example/" + secret, false, "http or https"},
		{"credentials", "https://user:" + secret + "@nowhere.example/x", false, "resolve"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Deliver(ctx, fakeResolver{}, WebhookClient(tc.allow, 5*time.Second), tc.url, tc.allow, []byte("{}"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the webhook's secret: %v", err)
			}
		})
	}
}
