package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tailor-ml/tailor/api"
)

// applied is what an apply answers: the version stored or matched.
type applied struct {
	name, id string
	version  int
	created  bool
}

// applyFile is `KIND apply FILE` for the stored specs (recipes, monitors,
// triggers): send the file under its base name, print the version id on
// stdout and "KIND NAME vN: created|unchanged" on stderr, or the answer as
// JSON with --output json.
func applyFile[R any](e *env, kind string, args []string, apply func(c *api.Client, ctx context.Context, fileName string, src []byte) (R, error), got func(R) applied) error {
	cc := newClientCmd(e, kind+" apply")
	c, pos, err := cc.parse(args, 1, 1)
	if err != nil {
		return err
	}
	// #nosec G304 G703 -- the recipe file the user named on the command line, read with the user's own rights
	src, err := os.ReadFile(pos[0])
	if err != nil {
		return fmt.Errorf("%s apply: %w", kind, err)
	}
	res, err := apply(c, e.ctx, filepath.Base(pos[0]), src)
	if err != nil {
		return err
	}
	if cc.json() {
		return printJSON(e.stdout, res)
	}
	a := got(res)
	state := "created"
	if !a.created {
		state = "unchanged"
	}
	fmt.Fprintf(e.stderr, "%s %s v%d: %s\n", kind, a.name, a.version, state)
	fmt.Fprintln(e.stdout, a.id)
	return nil
}
