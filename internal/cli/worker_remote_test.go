package cli

import (
	"strings"
	"testing"
)

// TestWorkerTrainRemoteFlags: `tailor worker train --api` needs --run and
// a credential in TAILOR_TOKEN, and says so before it calls anything.
func TestWorkerTrainRemoteFlags(t *testing.T) {
	t.Setenv("TAILOR_TOKEN", "")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no run", []string{"--api", "http://127.0.0.1:9"}, ExitUsage, "worker train: --api needs --run"},
		{"no credential", []string{"--api", "http://127.0.0.1:9", "--run", "run-1"}, -1, "TAILOR_TOKEN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := Main(append([]string{"worker", "train"}, c.args...), strings.NewReader(""), &out, &errOut)
			if code == 0 || (c.code >= 0 && code != c.code) || !strings.Contains(errOut.String(), c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut.String(), c.code, c.want)
			}
		})
	}
}
