package trigger

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
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
