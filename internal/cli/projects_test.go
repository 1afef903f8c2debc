package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/store"
)

// TestProjectFlag: one token with roles in two projects; --project picks
// where a command acts. A dataset imported with --project blue is blue's:
// listed there, not in the token's home project, and the same name
// imported at home is another dataset.
func TestProjectFlag(t *testing.T) {
	w := openDeployWorld(t, t.TempDir())
	ctx := context.Background()
	if _, err := w.client.CreateProject(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	roles := map[string]auth.Role{store.DefaultProject: auth.Admin, "blue": auth.Operator}
	root := auth.Principal{Name: "root", Project: store.DefaultProject, Roles: map[string]auth.Role{store.DefaultProject: auth.Admin, "blue": auth.Admin}}
	both, err := w.auth.CreateToken(store.WithActor(ctx, "root"), root, auth.NewToken{Principal: "ana", Project: store.DefaultProject, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TAILOR_TOKEN", both.Secret.String())
	dir := t.TempDir()
	blueFile, homeFile := filepath.Join(dir, "blue.jsonl"), filepath.Join(dir, "home.jsonl")
	for f, recs := range map[string]string{blueFile: mailRecords(0, 20), homeFile: mailRecords(100, 30)} {
		if err := os.WriteFile(f, []byte(recs), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	w.mustCLI("dataset", "import", blueFile, "--name", "mail", "--task", "classify", "--project", "blue")
	if out := w.mustCLI("dataset", "list"); strings.Contains(out, "mail") {
		t.Errorf("the home project lists blue's dataset:\n%s", out)
	}
	out := w.mustCLI("dataset", "list", "--project", "blue")
	if !strings.Contains(out, "mail") || !strings.Contains(out, "20") {
		t.Errorf("dataset list --project blue:\n%s", out)
	}
	w.mustCLI("dataset", "import", homeFile, "--name", "mail", "--task", "classify")
	st := w.app.Store()
	for p, records := range map[string]int64{"blue": 20, store.DefaultProject: 30} {
		v, err := st.DatasetVersion(store.WithProject(ctx, p), "mail", "latest")
		if err != nil || v.Records != records || v.Parent != "" {
			t.Errorf("%s's mail: %+v, %v; want its own first version of %d records", p, v, err, records)
		}
	}
	// The flag is checked against the token's roles there.
	if code, _, errOut := w.cli("dataset", "list", "--project", "red"); code != ExitForbidden || !strings.Contains(errOut, `"red"`) {
		t.Errorf("a project the token has no role in: %d %s", code, errOut)
	}
}
