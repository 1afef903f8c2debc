package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/trigger"
)

// projectMail is a labelled dataset: the same name, recipe and base in both
// projects, but each project's own labels, so what answers tells which
// project's model it was.
func projectMail(labels [2]string) string {
	var b strings.Builder
	words := [][]string{{"meeting", "notes", "lunch"}, {"prize", "cash", "winner"}}
	for i := range 80 {
		c := i % 2
		fmt.Fprintf(&b, "{\"id\":\"m%d\",\"text\":\"the %s for you %d\",\"label\":%q}\n", i, words[c][i%3], i, labels[c])
	}
	return b.String()
}

const projectRecipe = "name: mail\ntask: classify\nbase: tiny\ndata: {dataset: mail}\nmethod: {kind: lora, lora: {rank: 4}}\n" +
	"train: {max_steps: 4, batch_size: 8, learning_rate: 0.01, max_seq_len: 32}\nseed: 1\nregion: local\n"

// TestProjectsIsolateEveryNoun: two projects behind a real server with
// real tokens import a dataset and apply a recipe under the same names,
// train and serve. Each lists only its own; an id from one is 404 in the
// other; serving model=mail answers from the request's project; the event
// stream carries only the own project's events; /metrics labels requests
// with their project.
func TestProjectsIsolateEveryNoun(t *testing.T) {
	a, ctx := openWithWorkers(t)
	authority := a.Authority(auth.Options{Rate: -1})
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Service: a, Auth: authority, Inference: a.Inference()}))
	t.Cleanup(srv.Close)
	var bootstrap string
	if _, err := authority.Bootstrap(ctx, func(s string) error { bootstrap = s; return nil }); err != nil {
		t.Fatal(err)
	}
	boot := api.NewClient(srv.URL, nil).WithToken(bootstrap)
	projects := []string{"blue", "red"}
	labels := map[string][2]string{"blue": {"ham", "spam"}, "red": {"keep", "junk"}}
	clients := map[string]*api.Client{}
	for _, p := range projects {
		created, err := boot.CreateProject(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		// The project's admin token: its home project is p.
		clients[p] = api.NewClient(srv.URL, nil).WithToken(created.Secret)
		// One base content in both projects: the same id in each.
		importSeedBaseIn(store.WithProject(ctx, p), t, a, "tiny", 5)
	}

	type made struct {
		dataset, run, version string
	}
	got := map[string]made{}
	for _, p := range projects {
		c := clients[p]
		di, err := c.ImportDataset(ctx, strings.NewReader(projectMail(labels[p])), api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "mail.jsonl"})
		if err != nil {
			t.Fatalf("%s: import: %v", p, err)
		}
		if _, err := c.ApplyRecipe(ctx, "mail.yaml", []byte(projectRecipe)); err != nil {
			t.Fatalf("%s: apply: %v", p, err)
		}
		r, err := c.StartRun(ctx, api.RunStart{Recipe: "mail"})
		if err != nil {
			t.Fatalf("%s: start run: %v", p, err)
		}
		if r.Reused {
			t.Fatalf("%s: the run was reused across projects: %+v", p, r)
		}
		got[p] = made{dataset: di.Version.ID, run: r.ID}
	}
	for _, p := range projects {
		v := waitModelVersionIn(store.WithProject(ctx, p), t, a, "mail", got[p].run)
		m := got[p]
		m.version = v.ID
		got[p] = m
	}
	if got["blue"].version == got["red"].version {
		t.Fatalf("both projects' models are %s: their data differ", got["blue"].version)
	}

	requests := map[string]string{}
	for i, p := range projects {
		c, other := clients[p], projects[1-i]
		mine, theirs := got[p], got[other]
		ds, err := c.Datasets(ctx, "")
		if err != nil || len(ds) != 1 || ds[0].ID != mine.dataset {
			t.Errorf("%s's datasets: %+v, %v; want its one", p, ds, err)
		}
		bs, err := c.Bases(ctx, "")
		if err != nil || len(bs) != 1 || bs[0].Version != 1 || bs[0].ID != a.mustBaseID(t, "blue") {
			t.Errorf("%s's bases: %+v, %v; want tiny v1 with the shared content id", p, bs, err)
		}
		rs, err := c.Runs(ctx, "")
		if err != nil || len(rs) != 1 || rs[0].ID != mine.run {
			t.Errorf("%s's runs: %d, %v; want its run %s only", p, len(rs), err, mine.run)
		}
		ms, err := c.Models(ctx, "")
		if err != nil || len(ms) != 1 || ms[0].ID != mine.version {
			t.Errorf("%s's models: %+v, %v", p, ms, err)
		}
		theirModel, err := clients[other].Model(ctx, "mail", theirs.version)
		if err != nil || len(theirModel.Reports) == 0 {
			t.Fatalf("%s's model: %+v, %v", other, theirModel, err)
		}
		for what, err := range map[string]error{
			"eval report":   errOf(c.EvalReport(ctx, theirModel.Reports[0].Digest)),
			"run":           errOf(c.Run(ctx, theirs.run)),
			"run logs":      c.RunLogs(ctx, theirs.run, 0, false, func(api.RunLog) error { return nil }),
			"model version": errOf(c.Model(ctx, "mail", theirs.version)),
			"dataset":       errOf(c.Dataset(ctx, "mail", theirs.dataset)),
		} {
			if !isStatus(err, http.StatusNotFound) {
				t.Errorf("%s reads %s's %s: %v, want 404", p, other, what, err)
			}
		}
		// Serving the same name answers from the request's project.
		res, err := c.Classify(ctx, api.ClassifyRequest{Model: "mail", Input: []string{"the prize for you"}})
		if err != nil {
			t.Fatalf("%s: classify: %v", p, err)
		}
		if l := res.Data[0].Label; l != labels[p][0] && l != labels[p][1] {
			t.Errorf("%s's mail answered %q, not one of its labels %v: another project's model", p, l, labels[p])
		}
		if res.ModelVersion != "mail@v1" {
			t.Errorf("%s's mail answered as %q", p, res.ModelVersion)
		}
		requests[p] = res.RequestID
		// The audit log is one chain; a project's admins list its entries.
		page, err := c.AuditEntries(ctx, 0, 1000)
		if err != nil || len(page.Entries) == 0 {
			t.Errorf("%s's audit entries: %+v, %v", p, page, err)
		}
		for _, e := range page.Entries {
			if e.Project != p {
				t.Errorf("%s's audit list holds entry %d of project %q", p, e.Seq, e.Project)
			}
		}
		// The stored events are the project's own.
		var subjects []string
		if err := c.Events(ctx, 0, false, func(e api.Event) error { subjects = append(subjects, e.Subject); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(subjects, mine.run) || slices.Contains(subjects, theirs.run) || slices.Contains(subjects, theirs.version) {
			t.Errorf("%s's events: %v; want its run %s and nothing of %s's", p, subjects, mine.run, other)
		}
	}

	// Feedback names a request of its own project; accumulating it makes
	// a dataset in that project only.
	a.recorder.flush(ctx)
	if _, err := clients["red"].PostFeedback(ctx, api.Feedback{RequestID: requests["blue"], Label: "junk"}); !isStatus(err, http.StatusNotFound) {
		t.Errorf("red's feedback on blue's request: %v, want 404", err)
	}
	if _, err := clients["blue"].PostFeedback(ctx, api.Feedback{RequestID: requests["blue"], Label: "spam"}); err != nil {
		t.Fatal(err)
	}
	acc, err := clients["blue"].AccumulateFeedback(ctx, "mail")
	if err != nil || acc == nil || acc.Records != 1 {
		t.Fatalf("blue's accumulated feedback: %+v, %v", acc, err)
	}
	for p, want := range map[string]int{"blue": 1, "red": 0} {
		if ds, err := clients[p].Datasets(ctx, "mail-feedback"); err != nil || len(ds) != want {
			t.Errorf("%s's mail-feedback versions: %+v, %v; want %d", p, ds, err, want)
		}
	}

	// A followed stream carries the own project's events only, both those
	// it replays from the store and those it gets live: red's changes are
	// committed before blue's markers, so a leak would come first.
	var head int64
	if err := clients["blue"].Events(ctx, 0, false, func(e api.Event) error { head = e.Seq; return nil }); err != nil {
		t.Fatal(err)
	}
	apply := func(p, name string) {
		t.Helper()
		if _, err := clients[p].ApplyRecipe(ctx, name+".yaml", []byte(strings.Replace(projectRecipe, "name: mail", "name: "+name, 1))); err != nil {
			t.Fatal(err)
		}
	}
	apply("red", "red-secret-1")
	apply("blue", "blue-marker-1")
	follow, stop := context.WithCancel(ctx)
	defer stop()
	marker1 := make(chan struct{})
	seen := make(chan []string, 1)
	go func() {
		var got []string
		err := clients["blue"].Events(follow, head, true, func(e api.Event) error {
			got = append(got, e.Project+" "+e.Type+" "+string(e.Data))
			switch {
			case strings.Contains(string(e.Data), "blue-marker-1"):
				close(marker1) // replayed: the stream is subscribed
			case strings.Contains(string(e.Data), "blue-marker-2"):
				return io.EOF
			}
			return nil
		})
		if !errors.Is(err, io.EOF) {
			got = append(got, "error: "+fmt.Sprint(err))
		}
		seen <- got
	}()
	select {
	case <-marker1:
	case <-time.After(time.Minute):
		t.Fatal("blue's stream did not replay blue's first marker")
	}
	apply("red", "red-secret-2")
	apply("blue", "blue-marker-2")
	select {
	case events := <-seen:
		if len(events) == 0 || !strings.Contains(events[len(events)-1], "blue-marker-2") {
			t.Errorf("blue's stream: %v; want it to end at blue's second marker", events)
		}
		for _, e := range events {
			if strings.Contains(e, "red-secret") {
				t.Errorf("blue's stream carried red's event %s", e)
			}
			if !strings.HasPrefix(e, "blue ") && !strings.HasPrefix(e, "error: ") {
				t.Errorf("blue's stream: event %s does not name project blue", e)
			}
		}
	case <-time.After(time.Minute):
		t.Fatal("blue's stream never saw blue's second marker")
	}

	// No request reads every project at once.
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+bootstrap)
	req.Header.Set(httpapi.ProjectHeader, store.AllProjects)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("events in project %q: %v, %v; want 403", store.AllProjects, resp, err)
	} else {
		resp.Body.Close()
	}

	// /metrics labels each request with its project.
	req, _ = http.NewRequestWithContext(ctx, "GET", srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+bootstrap)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, p := range projects {
		series := fmt.Sprintf(`tailor_serve_requests_total{endpoint="classify",project=%q,model="mail",status="200"} 1`, p)
		if !strings.Contains(string(body), series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}

	// Blobs are shared: a collection from the default project, which
	// refers to nothing, keeps every blob another project refers to.
	rep, err := boot.GC(ctx, api.GCOptions{Grace: time.Nanosecond, KeepCheckpoints: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Referenced == 0 || rep.Removed != 0 {
		t.Errorf("gc from the default project: %d referenced, %d removed; want blue's and red's blobs referenced and kept", rep.Referenced, rep.Removed)
	}
	for _, p := range projects {
		fr, err := clients[p].Fsck(ctx)
		if err != nil || len(fr.Missing) != 0 || fr.Refs == 0 {
			t.Errorf("%s's fsck after gc: %d refs, missing %+v, %v", p, fr.Refs, fr.Missing, err)
		}
	}
}

// mustBaseID is the id of base tiny in project p.
func (a *App) mustBaseID(t *testing.T, p string) string {
	t.Helper()
	bv, err := a.store.BaseVersion(store.WithProject(context.Background(), p), "tiny", "latest")
	if err != nil {
		t.Fatal(err)
	}
	return bv.ID
}

func errOf[T any](_ T, err error) error { return err }

// isStatus reports whether err is the client's error for an HTTP status.
func isStatus(err error, status int) bool {
	var se *api.StatusError
	return errors.As(err, &se) && se.Status == status
}

// projectOps records, for each run a trigger starts, the project the
// action ran in and the recipe version that name resolves to there.
type projectOps struct {
	*gatedOps
	a *App
}

func (o *projectOps) StartRun(ctx context.Context, recipe, base string) (trigger.RunInfo, error) {
	rv, err := o.a.store.RecipeVersion(ctx, recipe, "latest")
	if err != nil {
		return trigger.RunInfo{}, err
	}
	o.record(fmt.Sprintf("%s %s@v%d", store.ProjectFrom(ctx), recipe, rv.Version))
	return o.gatedOps.StartRun(ctx, recipe, base)
}

// TestTriggerActsInItsProject: the same trigger and recipe names in two
// projects; an event in blue fires blue's trigger only, which retrains
// blue's recipe, in blue; red's trigger stays quiet, and each firing is
// in its own project.
func TestTriggerActsInItsProject(t *testing.T) {
	a, err := Open(Options{DataDir: t.TempDir(), EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	ops := &projectOps{gatedOps: newGatedOps(true), a: a}
	a.triggers.ops = ops
	bg := context.Background()
	ctxs := map[string]context.Context{}
	for i, p := range []string{"blue", "red"} {
		if _, err := a.store.PutProject(bg, store.Project{Name: p, CreatedBy: "root"}, nil, nil); err != nil {
			t.Fatal(err)
		}
		ctxs[p] = store.WithProject(bg, p)
		// Red's recipe r has two versions, blue's one: a retrain in the
		// wrong project would name v2.
		for v := 0; v <= i; v++ {
			if _, _, err := a.store.PutRecipeVersion(ctxs[p], store.RecipeVersion{ID: fmt.Sprintf("%064d", 10*i+v+1), Name: "r",
				Normalized: []byte(fmt.Sprintf("name: r\nseed: %d\n", v))}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.ApplyTrigger(ctxs[p], "t.yaml", []byte("name: t\non: {event: feedback, model: m}\ndo:\n  - retrain: {recipe: r}\n")); err != nil {
			t.Fatal(err)
		}
	}
	startTestApp(t, a)
	evs, err := a.store.AppendEvents(ctxs["blue"], []store.Event{a.event("feedback.accumulated", "dv", map[string]any{"model": "m", "records": 5})})
	if err != nil {
		t.Fatal(err)
	}
	a.publish(evs)
	var blue []store.Firing
	waitFor(t, "blue's firing to finish", func() bool {
		blue, err = a.store.Firings(ctxs["blue"], store.FiringFilter{Trigger: "t"})
		return err == nil && len(blue) == 1 && blue[0].State.Terminal()
	})
	if blue[0].State != store.FiringDone || blue[0].EventSeq != evs[0].Seq {
		t.Errorf("blue's firing: %+v", blue[0])
	}
	// A later event in red shows the loop has gone past blue's: red's
	// trigger fires for red's event and never for blue's.
	evs, err = a.store.AppendEvents(ctxs["red"], []store.Event{a.event("feedback.accumulated", "dv", map[string]any{"model": "m", "records": 5})})
	if err != nil {
		t.Fatal(err)
	}
	a.publish(evs)
	var red []store.Firing
	waitFor(t, "red's firing to finish", func() bool {
		red, err = a.store.Firings(ctxs["red"], store.FiringFilter{Trigger: "t"})
		return err == nil && len(red) >= 1 && red[len(red)-1].State.Terminal()
	})
	if len(red) != 1 || red[0].EventSeq != evs[0].Seq {
		t.Errorf("red's firings: %+v; want one, for red's event %d", red, evs[0].Seq)
	}
	if fs, _ := a.store.Firings(bg, store.FiringFilter{}); len(fs) != 0 {
		t.Errorf("the default project has firings %+v", fs)
	}
	ops.mu.Lock()
	defer ops.mu.Unlock()
	want := []string{"blue r@v1", "start run-1", "red r@v2", "start run-2"}
	if fmt.Sprint(ops.calls) != fmt.Sprint(want) {
		t.Errorf("trigger actions %v, want %v", ops.calls, want)
	}
}
