package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/residency"
)

const copyPolicy = "regions:\n  eu: {read: [eu], write: [eu, eu-backup]}\n  us: {read: [us], write: [us]}\n"

// `tailor copy` through a real server in eu: a copy the policy allows,
// the same copy again, and one it forbids (exit code and message).
func TestCopyCommand(t *testing.T) {
	policy, err := residency.Parse("policy.yaml", []byte(copyPolicy))
	if err != nil {
		t.Fatal(err)
	}
	w := openDeployWorld(t, t.TempDir(), func(o *app.Options) { o.Region, o.Residency = "eu", policy })
	if _, err := w.client.ImportDataset(context.Background(), strings.NewReader("{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\",\"label\":\"y\"}\n"),
		api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "mail.jsonl"}); err != nil {
		t.Fatal(err)
	}
	out := w.mustCLI("copy", "dataset", "mail", "--to-region", "eu-backup")
	if !strings.HasPrefix(out, "copied dataset mail (") || !strings.Contains(out, "region eu) to mail-eu-backup (region eu-backup)") {
		t.Errorf("copy output %q", out)
	}
	if show := w.mustCLI("dataset", "show", "mail-eu-backup"); !strings.Contains(show, "region   eu-backup\n") || !strings.Contains(show, "copy of  mail ") ||
		!strings.Contains(show, "(region eu), copied ") {
		t.Errorf("dataset show of the copy: %q", show)
	}
	out = w.mustCLI("copy", "dataset", "mail@latest", "--to-region", "eu-backup", "--output", "json")
	if !strings.Contains(out, `"created": false`) || !strings.Contains(out, `"name": "mail-eu-backup"`) {
		t.Errorf("the same copy again, as JSON: %q", out)
	}
	code, _, errOut := w.cli("copy", "dataset", "mail", "--to-region", "us", "--as", "mail-abroad")
	if code != ExitForbidden || !strings.Contains(errOut, `dataset mail-abroad (the copy) would be written to region "us"`) ||
		!strings.Contains(errOut, "regions.eu.write = [eu, eu-backup]") {
		t.Errorf("forbidden copy: exit %d, %q", code, errOut)
	}
	if code, _, errOut := w.cli("copy", "dataset", "mail"); code != ExitUsage || !strings.Contains(errOut, "--to-region is required") {
		t.Errorf("copy without --to-region: exit %d, %q", code, errOut)
	}
	if code, _, _ := w.cli("copy", "recipe", "mail", "--to-region", "eu-backup"); code != ExitUsage {
		t.Errorf("copy recipe: exit %d, want usage", code)
	}
}

// The server refuses a bad policy file, and one without a rule for its
// region, before it opens anything.
func TestServerResidencyPolicyFlag(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("regions:\n  eu:\n    read: [eu]\n    write: [EU]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(copyPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"bad file", []string{"--residency-policy", bad}, []string{"bad.yaml:4", "regions.eu.write[0]", `"EU"`}},
		{"missing file", []string{"--residency-policy", filepath.Join(dir, "none.yaml")}, []string{"--residency-policy", "none.yaml"}},
		{"no rule for the region", []string{"--residency-policy", good, "--region", "ap"}, []string{"good.yaml has no rule for this server's region \"ap\"", "eu, us"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			data := filepath.Join(t.TempDir(), "data")
			code := Main(append([]string{"server", "--data-dir", data, "--listen", "127.0.0.1:0"}, tc.args...), strings.NewReader(""), &out, &errOut)
			if code == ExitOK {
				t.Fatalf("server started: %s", out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr %q lacks %q", errOut.String(), w)
				}
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("the refused server created its data dir: %v", err)
			}
		})
	}
}
