package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/app"
)

// serverWorld is an App behind a real loopback server that the command
// line runs against; the deploy and audit tests build theirs on it.
type serverWorld struct {
	t      *testing.T
	app    *app.App
	srv    *httptest.Server
	cancel context.CancelFunc
}

func (w *serverWorld) close() {
	if w.app == nil {
		return
	}
	w.srv.Close()
	w.cancel()
	w.app.Close()
	w.app = nil
}

// cli runs the command line against the world's server.
func (w *serverWorld) cli(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(append(args, "--server", w.srv.URL), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func (w *serverWorld) mustCLI(args ...string) string {
	w.t.Helper()
	code, out, errOut := w.cli(args...)
	if code != ExitOK {
		w.t.Fatalf("tailor %s = %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}
