package run

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// TestRunsOfEveryProject: the scheduler starts queued runs of every
// project, each in its own project: with that project's recipe, its
// events and usage in that project, and its id unknown to the others. One
// run key in two projects makes two runs.
func TestRunsOfEveryProject(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "t.db"))
	bg := context.Background()
	projects := []string{"blue", "red"}
	ctxs := map[string]context.Context{}
	for _, p := range projects {
		if _, err := st.PutProject(bg, store.Project{Name: p, CreatedBy: "root"}, nil, nil); err != nil {
			t.Fatal(err)
		}
		ctxs[p] = store.WithProject(bg, p)
		// The same recipe name and id in both, as two imports of one file.
		if _, _, err := st.PutRecipeVersion(ctxs[p], store.RecipeVersion{ID: "rid", Name: "r", Normalized: []byte("name: r\n")}, nil); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixture(t, st, "ok", 2)
	in, _ := json.Marshal(Inputs{Recipe: InputRef{Name: "r", ID: "rid"}, Dataset: InputRef{Name: "d", ID: "did"}, Engine: "e"})
	for _, p := range projects {
		r, created, err := f.sched.SubmitOnce(ctxs[p], store.Run{ID: "run-" + p, Key: "same-key", RecipeID: "rid", DatasetID: "did", Inputs: in})
		if err != nil || !created || r.ID != "run-"+p {
			t.Fatalf("%s: submit = %+v, created %v, %v; want its own new run", p, r, created, err)
		}
	}
	for i, p := range projects {
		other := projects[1-i]
		r := waitStateIn(ctxs[p], t, st, "run-"+p, store.RunSucceeded)
		if r.Result != "sha256:adapter" {
			t.Errorf("%s's run: %+v", p, r)
		}
		if _, err := st.Run(ctxs[p], "run-"+other); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("%s reads %s's run: %v", p, other, err)
		}
		if _, err := f.sched.Cancel(ctxs[p], "run-"+other); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("%s cancels %s's run: %v", p, other, err)
		}
		evs, err := st.Events(ctxs[p], 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, e := range evs {
			if e.Subject != "run-"+p || e.Project != p {
				t.Errorf("%s's events hold %+v", p, e)
			}
			if e.Type == "run.state.changed" {
				var d struct{ To string }
				_ = json.Unmarshal(e.Data, &d)
				states = append(states, d.To)
			}
		}
		if len(states) != 3 || states[2] != "succeeded" {
			t.Errorf("%s's run went %v in its project's events", p, states)
		}
		u, err := st.RunUsage(ctxs[p], "run-"+p)
		if err != nil || u.Project != p {
			t.Errorf("%s's run usage: %+v, %v", p, u, err)
		}
	}
	if rs, _ := st.Runs(bg, store.RunFilter{}); len(rs) != 0 {
		t.Errorf("the default project sees runs %+v", rs)
	}
}
