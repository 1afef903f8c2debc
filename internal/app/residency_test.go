package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
)

// residencyWorld is the data directory the residency suite shares between
// a us server (which imported the foreign objects) and the eu server under
// test, with what it holds.
type residencyWorld struct {
	e              *env // the eu server
	tinyV1, tinyV2 store.BaseVersion
	spamV1, spamV2 store.ModelVersion // spam@v1 in eu, spam@v2 in us
	spamV3         store.ModelVersion // in eu, on tiny@v2 (a base only in us)
	rivalV1        store.ModelVersion // in us, champion of rival
	mailUS, mailEU store.DatasetVersion
}

func residencyPolicy(t *testing.T) *residency.Policy {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "residency", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := residency.Parse("policy.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mailRecords(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"id\":\"%s%d\",\"text\":\"message %d about %s\",\"label\":%q}\n", prefix, i, i, prefix, []string{"ham", "spam"}[i%2])
	}
	return b.String()
}

func (e *env) importDS(name, region, body string) api.DatasetVersion {
	e.t.Helper()
	res, err := e.client.ImportDataset(context.Background(), strings.NewReader(body),
		api.DatasetImportOptions{Name: name, Task: "classify", FileName: name + ".jsonl", Region: region})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Version
}

func (e *env) applyRecipes(recipes map[string]string) {
	e.t.Helper()
	// Fixed order: versions of one name are numbered as applied.
	for _, file := range sortedKeys(recipes) {
		if _, err := e.client.ApplyRecipe(context.Background(), file, []byte(recipes[file])); err != nil {
			e.t.Fatalf("%s: %v", file, err)
		}
	}
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// usReport is the digest of an eval report attached to spam@v2, in us.
const usReport = "sha256:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"

const residencyRecipe = "name: %s\ntask: classify\nbase: %s\ndata: {dataset: %s}\nmethod: {kind: head}\ntrain: {epochs: 1}\nseed: 1\nregion: %s\n%s"

func newResidencyWorld(t *testing.T) *residencyWorld {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	policy := residencyPolicy(t)
	opts := func(region string) app.Options {
		return app.Options{DataDir: dir, Region: region, Residency: policy}
	}
	w := &residencyWorld{}

	// The eu server's own things.
	eu, closeEU := openEnvWith(t, opts("eu"))
	baseDir := filepath.Join(t.TempDir(), "tiny1")
	writeTinyBaseSeed(t, baseDir, 1)
	if _, err := importBaseDir(eu, "tiny", baseDir, nil); err != nil {
		t.Fatal(err)
	}
	eu.importDS("mail", "", mailRecords("eu", 40))
	closeEU()

	// A us server imports into us and into eu-public.
	us, closeUS := openEnvWith(t, opts("us"))
	baseDir = filepath.Join(t.TempDir(), "tiny2")
	writeTinyBaseSeed(t, baseDir, 2)
	if _, err := importBaseDir(us, "tiny", baseDir, nil); err != nil {
		t.Fatal(err)
	}
	us.importDS("mail-us", "", mailRecords("us", 40))
	us.importDS("fb-us-feedback", "", mailRecords("fbus", 4))
	us.importDS("pub", "eu-public", mailRecords("pub", 40))
	us.importDS("fb-pub-feedback", "eu-public", mailRecords("fbpub", 4))
	closeUS()

	// The server under test.
	e := newEnv(t, opts("eu"))
	w.e = e
	st := e.app.Store()
	var err error
	if w.tinyV1, err = st.BaseVersion(ctx, "tiny", "v1"); err != nil {
		t.Fatal(err)
	}
	if w.tinyV2, err = st.BaseVersion(ctx, "tiny", "v2"); err != nil {
		t.Fatal(err)
	}
	if w.tinyV1.Region != "eu" || w.tinyV2.Region != "us" {
		t.Fatalf("bases in %s and %s, want eu and us", w.tinyV1.Region, w.tinyV2.Region)
	}
	if w.mailUS, err = st.DatasetVersion(ctx, "mail-us", ""); err != nil {
		t.Fatal(err)
	}
	if w.mailEU, err = st.DatasetVersion(ctx, "mail", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetAlias(ctx, store.Alias{Kind: "base", Name: "tiny", Alias: "prod", Target: w.tinyV2.ID}, nil); err != nil {
		t.Fatal(err)
	}
	euRecipe := func(name, base, data, extra string) string {
		return fmt.Sprintf(residencyRecipe, name, base, data, "eu", extra)
	}
	e.applyRecipes(map[string]string{
		"a1-spam.yaml":        euRecipe("spam", "tiny@v1", "mail", ""),
		"a2-spam-replay.yaml": euRecipe("spam", "tiny@v1", "mail", "incremental: {from: champion, replay: {dataset: mail-us, ratio: 0.5}}\n"),
		"a3-spam-forget.yaml": euRecipe("spam", "tiny@v1", "mail", "incremental: {from: champion, replay: {dataset: mail}, forgetting: {dataset: mail-us}}\n"),
		"b-us-data.yaml":      euRecipe("spam-us-data", "tiny@v1", "mail-us", ""),
		"c-latest.yaml":       euRecipe("spam-latest", "tiny", "mail", ""),
		"d-alias.yaml":        euRecipe("spam-alias", "tiny@prod", "mail", ""),
		"e-in-us.yaml":        fmt.Sprintf(residencyRecipe, "spam-in-us", "tiny@v1", "mail", "us", ""),
		"f-pub.yaml":          euRecipe("pub-ok", "tiny@v1", "pub", ""),
		"g1-rival.yaml":       euRecipe("rival", "tiny@v1", "mail", ""),
		"g2-rival-inc.yaml":   euRecipe("rival", "tiny@v1", "mail", "incremental: {from: champion, replay: {dataset: mail}}\n"),
		"h-fb.yaml":           euRecipe("fb", "tiny@v1", "mail", ""),
	})

	// Model versions as a us server's runs would have registered them,
	// through the store (the suite trains nothing: every refusal comes
	// before a run starts).
	rv, err := st.RecipeVersion(ctx, "spam", "v1")
	if err != nil {
		t.Fatal(err)
	}
	lineage, _ := json.Marshal(run.Inputs{Recipe: run.InputRef{Name: "spam", ID: rv.ID, Version: 1},
		Dataset: run.InputRef{Name: "mail", ID: w.mailEU.ID}, Base: run.InputRef{Name: "tiny", ID: w.tinyV1.ID, Version: 1}})
	trained := store.Run{ID: "run-residency", Key: "k", RecipeID: rv.ID, DatasetID: w.mailEU.ID, BaseID: w.tinyV1.ID,
		EngineVersion: "test-engine", Inputs: lineage, State: store.RunSucceeded, CreatedAt: time.Now()}
	if _, err := st.CreateRun(ctx, trained, nil); err != nil {
		t.Fatal(err)
	}
	model := func(name, region string, base store.BaseVersion, adapter string) store.ModelVersion {
		v, _, err := st.PutModelVersion(ctx, store.ModelVersion{ID: fmt.Sprintf("%064x", len(adapter)*7919+int(adapter[0])), Name: name,
			BaseID: base.ID, Adapter: "sha256:" + fmt.Sprintf("%064x", int(adapter[0])*31+len(adapter)), RunID: trained.ID, Task: "classify",
			Lineage: lineage, Region: region}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	w.spamV1 = model("spam", "eu", w.tinyV1, "a")
	w.spamV2 = model("spam", "us", w.tinyV1, "bb")
	w.spamV3 = model("spam", "eu", w.tinyV2, "ccc")
	w.rivalV1 = model("rival", "us", w.tinyV1, "dddd")
	if _, _, err := st.PutEvalReport(ctx, store.EvalReport{ModelVersionID: w.spamV2.ID, Digest: usReport, DatasetID: w.mailUS.ID,
		Split: "test", Verdict: store.VerdictPass}, nil); err != nil {
		t.Fatal(err)
	}
	// An approval a us server's user requested for its version.
	if _, _, err := st.PutApproval(ctx, store.Approval{ID: "ap-us", Kind: "model", Name: "spam", Alias: "prod", Target: w.spamV2.ID,
		Reason: "ship the us version", RequestedBy: "us-person", RequestedAt: time.Now(), State: store.ApprovalPending}, nil); err != nil {
		t.Fatal(err)
	}
	moveAlias := func(name, alias, to string) {
		cur, _ := st.Alias(ctx, "model", name, alias)
		if _, _, err := st.MoveAlias(ctx, store.AliasMove{Kind: "model", Name: name, Alias: alias, From: cur.Target, To: to, Action: "promote",
			Reason: "moved by a us server", Actor: "us-server"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	moveAlias("spam", "champion", w.spamV2.ID) // a us server promoted its version
	moveAlias("spam", "staging", w.spamV2.ID)
	moveAlias("rival", "champion", w.rivalV1.ID)
	// This server promotes its own version over it: allowed.
	if _, err := e.client.Promote(ctx, "spam", api.Promote{Version: "v1", Alias: "champion", Reason: "eu takes over", Actor: "ana",
		Override: true, OverrideReason: "no report in this test"}); err != nil {
		t.Fatalf("promote an eu version: %v", err)
	}
	// Served predictions and their labels, for the feedback cases.
	for _, m := range []string{"fb-us", "fb-pub"} {
		if err := st.PutPredictions(ctx, []store.Prediction{{RequestID: "req-" + m, Time: time.Now(), Model: m, VersionID: w.spamV1.ID,
			Variant: "primary", Label: "ham", Text: "a message for " + m}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.PostFeedback(ctx, api.Feedback{RequestID: "req-" + m, Label: "spam"}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// openEnvWith is openEnv with options: the caller closes it.
func openEnvWith(t *testing.T, opts app.Options) (*env, func()) {
	t.Helper()
	opts.EngineVersion = "test-engine"
	opts.WorkerCommand = []string{"/bin/false"}
	a, err := app.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Auth: a.Authority(auth.Options{InsecureLocal: true}), Service: a, Inference: a.Inference()}))
	return &env{t: t, app: a, client: api.NewClient(srv.URL, nil), dataDir: opts.DataDir, url: srv.URL}, func() {
		srv.Close()
		a.Close()
	}
}

// residencyCase is one thing the eu server must refuse: a 403 whose
// message names every part of want (the object, its region, the compute
// region, the rule), leaving no event behind.
type residencyCase struct {
	name string
	do   func(w *residencyWorld) error
	want []string
}

func residencyCases() []residencyCase {
	ctx := context.Background()
	start := func(recipe, base string) func(w *residencyWorld) error {
		return func(w *residencyWorld) error {
			_, err := w.e.client.StartRun(ctx, api.RunStart{Recipe: recipe, Base: base})
			return err
		}
	}
	eval := func(model, dataset string) func(w *residencyWorld) error {
		return func(w *residencyWorld) error {
			_, err := w.e.client.StartEval(ctx, api.EvalStart{Model: model, Dataset: dataset})
			return err
		}
	}
	copyOf := func(kind, src, to string) func(w *residencyWorld) error {
		return func(w *residencyWorld) error {
			_, err := w.e.client.Copy(ctx, api.CopyRequest{Kind: kind, Source: src, ToRegion: to})
			return err
		}
	}
	readUS := []string{`region "us"`, `compute in region "eu" may not read`, "regions.eu.read = [eu, eu-public]"}
	writeTo := func(region string) []string {
		return []string{`written to region "` + region + `"`, `compute in region "eu" may not write`, "regions.eu.write = [eu, eu-backup]"}
	}
	with := func(a []string, b ...string) []string { return append(append([]string{}, b...), a...) }
	return []residencyCase{
		// Imports write into the region they name.
		{"import dataset into us", func(w *residencyWorld) error {
			_, err := w.e.client.ImportDataset(ctx, strings.NewReader(mailRecords("x", 2)), api.DatasetImportOptions{Name: "x", Task: "classify", FileName: "x.jsonl", Region: "us"})
			return err
		}, with(writeTo("us"), "dataset x")},
		{"import dataset into readable eu-public", func(w *residencyWorld) error {
			_, err := w.e.client.ImportDataset(ctx, strings.NewReader(mailRecords("x", 2)), api.DatasetImportOptions{Name: "x", Task: "classify", FileName: "x.jsonl", Region: "eu-public"})
			return err
		}, with(writeTo("eu-public"), "dataset x")},
		{"import base into us", func(w *residencyWorld) error {
			_, err := w.e.client.ImportBase(ctx, "tiny-x", "us", strings.NewReader(""))
			return err
		}, with(writeTo("us"), "base tiny-x")},
		{"append to a dataset in us", func(w *residencyWorld) error {
			_, err := w.e.client.ImportDataset(ctx, strings.NewReader(mailRecords("y", 2)), api.DatasetImportOptions{Name: "mail-us", FileName: "y.jsonl", Append: true})
			return err
		}, with(readUS, "dataset mail-us@")},
		// Run start reads every input and writes the adapter.
		{"run on a dataset in us", start("spam-us-data", ""), with(readUS, "dataset mail-us@")},
		{"base selector latest resolves to us", start("spam-latest", ""), with(readUS, "base selector tiny resolves to tiny@v2", "base tiny@v2")},
		{"base selector alias resolves to us", start("spam-alias", ""), with(readUS, "base selector tiny@prod resolves to tiny@v2")},
		{"rebase onto a base in us", start("spam@v1", "tiny@v2"), with(readUS, "base tiny@v2")},
		{"recipe requires compute in us", start("spam-in-us", ""), []string{"recipe spam-in-us must compute in region \"us\"", `this server computes in region "eu"`}},
		{"incremental replay dataset in us", start("spam@v2", ""), with(readUS, "dataset mail-us@")},
		{"incremental forgetting dataset in us", start("spam@v3", ""), with(readUS, "dataset mail-us@")},
		{"incremental champion in us", start("rival@v2", ""), with(readUS, "model rival@v1")},
		{"champion to compare with in us", start("rival@v1", ""), with(readUS, "champion rival v1", "model rival@v1")},
		// Eval.
		{"eval on a dataset in us", eval("spam@v1", "mail-us"), with(readUS, "eval spam@v1", "dataset mail-us@")},
		{"eval of a model version in us", eval("spam@v2", "mail"), with(readUS, "eval spam@v2", "model spam@v2")},
		// Aliases.
		{"promote an alias to a version in us", func(w *residencyWorld) error {
			_, err := w.e.client.Promote(ctx, "spam", api.Promote{Version: "v2", Alias: "challenger", Reason: "try", Actor: "ana", Override: true, OverrideReason: "test"})
			return err
		}, with(readUS, `promote model "spam" v2 to "challenger"`, "model spam@v2")},
		{"roll back an alias to a version in us", func(w *residencyWorld) error {
			_, err := w.e.client.Rollback(ctx, "spam", api.Rollback{Alias: "champion", Reason: "undo", Actor: "ana"})
			return err
		}, with(readUS, "roll back model", "model spam@v2")},
		{"approve an approval for a version in us", func(w *residencyWorld) error {
			_, err := w.e.client.Decide(ctx, "ap-us", api.Decision{Approve: true, Reason: "looks fine", Actor: "ana"})
			return err
		}, with(readUS, `approve approval "ap-us"`, "model spam@v2")},
		// Serving.
		{"deploy an alias pointing at us", func(w *residencyWorld) error {
			_, err := w.e.client.Deploy(ctx, api.DeploymentSpec{Model: "spam", Alias: "staging", Actor: "ana", Reason: "ship"})
			return err
		}, with(readUS, `field "alias" "staging"`, "model spam@v2")},
		{"deploy a canary in us", func(w *residencyWorld) error {
			_, err := w.e.client.Deploy(ctx, api.DeploymentSpec{Model: "spam", Alias: "champion", Canary: &api.Canary{Model: "spam@v2", Percent: 10}, Actor: "ana", Reason: "ship"})
			return err
		}, with(readUS, `field "canary.model"`, "model spam@v2")},
		{"serve a version in us", func(w *residencyWorld) error {
			_, err := w.e.client.Classify(ctx, api.ClassifyRequest{Model: "spam@v2", Input: []string{"hello"}})
			return err
		}, with(readUS, "serve spam@v2", "model spam@v2")},
		{"serve a version whose base is only in us", func(w *residencyWorld) error {
			_, err := w.e.client.Classify(ctx, api.ClassifyRequest{Model: "spam@v3", Input: []string{"hello"}})
			return err
		}, with(readUS, "its base", "base tiny@v2")},
		{"serve a base in us", func(w *residencyWorld) error {
			_, err := w.e.client.Classify(ctx, api.ClassifyRequest{Model: "tiny@v2", Input: []string{"hello"}})
			return err
		}, with(readUS, "serve tiny@v2", "base tiny@v2")},
		// Export out of the server.
		{"export a model version in us", exportModel("spam", "v2"), with(readUS, "export spam v2", "model spam@v2")},
		{"export a model whose base is only in us", exportModel("spam", "v3"), with(readUS, "export spam v3", "base tiny@v2")},
		{"export a base file in us", func(w *residencyWorld) error {
			rc, err := w.e.client.BaseFile(ctx, "tiny", "v2", "config.json")
			if err == nil {
				rc.Close()
			}
			return err
		}, with(readUS, "export base tiny", "base tiny@v2")},
		{"export dataset records in us", func(w *residencyWorld) error {
			return w.e.client.DatasetRecords(ctx, "mail-us", "", "", io.Discard)
		}, with(readUS, "export dataset mail-us", "dataset mail-us@")},
		{"read an eval report of a version in us", func(w *residencyWorld) error {
			_, err := w.e.client.EvalReport(ctx, usReport)
			return err
		}, with(readUS, "eval report 5e5e5e5e5e5e of model spam@v2", "model spam@v2")},
		// Feedback accumulation writes where the dataset lives.
		{"feedback into a dataset in us", func(w *residencyWorld) error {
			_, err := w.e.client.AccumulateFeedback(ctx, "fb-us")
			return err
		}, with(writeTo("us"), "accumulate feedback of fb-us into fb-us-feedback", "dataset fb-us-feedback")},
		{"feedback into a readable dataset in eu-public", func(w *residencyWorld) error {
			_, err := w.e.client.AccumulateFeedback(ctx, "fb-pub")
			return err
		}, with(writeTo("eu-public"), "dataset fb-pub-feedback")},
		// Copy is checked like everything else.
		{"copy a dataset out of us", copyOf("dataset", "mail-us", "eu"), with(readUS, `copy dataset mail-us to region "eu"`)},
		{"copy a dataset into us", copyOf("dataset", "mail", "us"), with(writeTo("us"), `copy dataset mail to region "us"`, "dataset mail-us (the copy)")},
		{"copy a model into readable eu-public", copyOf("model", "spam@v1", "eu-public"), with(writeTo("eu-public"), "model spam-eu-public (the copy)")},
		{"copy a base out of us", copyOf("base", "tiny@v2", "eu"), with(readUS, `copy base tiny@v2 to region "eu"`, "base tiny@v2")},
	}
}

func exportModel(name, ref string) func(w *residencyWorld) error {
	return func(w *residencyWorld) error {
		rc, err := w.e.client.ExportModel(context.Background(), name, ref, "peft")
		if err == nil {
			rc.Close()
		}
		return err
	}
}

// TestResidencyRefusals is the adversarial suite: with the policy in
// testdata/residency, an eu server refuses every way a byte could cross
// regions, each with a 403 naming the object, its region, the compute
// region and the rule, and changes nothing.
func TestResidencyRefusals(t *testing.T) {
	w := newResidencyWorld(t)
	cases := residencyCases()
	if len(cases) < 20 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := w.e.trace()
			runs, _ := w.e.client.Runs(context.Background(), "")
			err := tc.do(w)
			var se *api.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("want an API error, got %v", err)
			}
			if se.Status != http.StatusForbidden || !strings.Contains(se.Err.Message, "residency: ") {
				t.Errorf("status %d (%s): %s; want 403 from the residency policy", se.Status, se.Err.Kind, se.Err.Message)
			}
			t.Log(se.Err.Message)
			for _, want := range tc.want {
				if !strings.Contains(se.Err.Message, want) {
					t.Errorf("message %q lacks %q", se.Err.Message, want)
				}
			}
			if after := w.e.trace(); after != before {
				t.Errorf("left a trace: before %+v after %+v", before, after)
			}
			if after, _ := w.e.client.Runs(context.Background(), ""); len(after) != len(runs) {
				t.Errorf("%d runs before, %d after", len(runs), len(after))
			}
		})
	}
}

// TestResidencyTriggerActions: every trigger action that would cross
// regions fails its firing with the residency refusal, before any run
// starts: a retrain on a dataset in us, a rebase onto a base in us, an
// evaluation on a dataset in us and a rollback to a version in us.
func TestResidencyTriggerActions(t *testing.T) {
	w := newResidencyWorld(t)
	e := w.e
	ctx := context.Background()
	triggers := map[string]string{
		"retrain-us":  "retrain: {recipe: spam-us-data}",
		"rebase-us":   "rebase: {recipe: spam@v1, base: tiny@v2}",
		"evaluate-us": "evaluate: {dataset: mail-us, model: spam@v1}",
		"rollback-us": "rollback: {model: spam, alias: champion}",
	}
	want := map[string][]string{
		"retrain-us":  {"dataset mail-us@", `region "us"`},
		"rebase-us":   {"base tiny@v2", `region "us"`},
		"evaluate-us": {"dataset mail-us@", `region "us"`},
		"rollback-us": {"model spam@v2", `region "us"`},
	}
	for _, name := range sortedKeys(triggers) {
		spec := fmt.Sprintf("name: %s\non: {event: feedback, model: m}\ndo:\n  - %s\n", name, triggers[name])
		if _, err := e.client.ApplyTrigger(ctx, name+".yaml", []byte(spec)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	runs, err := e.client.Runs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	e.start()
	e.label(0, 3) // feedback on m, accumulated into m-feedback here in eu: allowed
	for _, name := range sortedKeys(triggers) {
		fs := e.waitFirings(name, func(fs []api.Firing) bool { return terminal(fs, 1) })
		if len(fs) != 1 || fs[0].State != "failed" || len(fs[0].Results) != 1 {
			t.Fatalf("%s: firings %+v, want one failed with one result", name, fs)
		}
		r := fs[0].Results[0]
		if r.RunID != "" || !strings.Contains(r.Error, "residency: ") || !strings.Contains(r.Error, `compute in region "eu" may not read`) {
			t.Errorf("%s: result %+v; want the residency refusal and no run", name, r)
		}
		for _, s := range want[name] {
			if !strings.Contains(r.Error, s) {
				t.Errorf("%s: error %q lacks %q", name, r.Error, s)
			}
		}
	}
	if after, err := e.client.Runs(ctx, ""); err != nil || len(after) != len(runs) {
		t.Errorf("runs: %d before, %d after (%v); a refused action started one", len(runs), len(after), err)
	}
	if cur, err := e.app.Store().Alias(ctx, "model", "spam", "champion"); err != nil || cur.Target != w.spamV1.ID {
		t.Errorf("champion now %+v (%v), want still spam@v1", cur, err)
	}
}

// TestResidencyAllowed: what the policy allows still works under it:
// runs and evals on eu and eu-public inputs, a promotion in eu, exports of
// eu and eu-public things, serving lists only readable models, and copies
// into writable regions, with their lineage and event.
func TestResidencyAllowed(t *testing.T) {
	w := newResidencyWorld(t)
	e := w.e
	ctx := context.Background()
	for _, start := range []api.RunStart{{Recipe: "spam@v1"}, {Recipe: "pub-ok"}} {
		if r, err := e.client.StartRun(ctx, start); err != nil || r.State != "queued" {
			t.Errorf("start %s: %+v, %v", start.Recipe, r, err)
		}
	}
	if r, err := e.client.StartEval(ctx, api.EvalStart{Model: "spam@v1", Dataset: "pub"}); err != nil || r.State != "queued" {
		t.Errorf("eval on eu-public data: %+v, %v", r, err)
	}
	if _, err := e.client.Promote(ctx, "spam", api.Promote{Version: "v1", Alias: "stable", Reason: "ok", Actor: "ana", Override: true, OverrideReason: "test"}); err != nil {
		t.Errorf("promote an eu version: %v", err)
	}
	if err := e.client.DatasetRecords(ctx, "pub", "", "", io.Discard); err != nil {
		t.Errorf("export eu-public records: %v", err)
	}
	rc, err := e.client.BaseFile(ctx, "tiny", "v1", "config.json")
	if err != nil {
		t.Errorf("export an eu base file: %v", err)
	} else {
		rc.Close()
	}
	// Serving lists what this server may read, and nothing else.
	resp, err := http.Get(e.url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []struct{ ID string } `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range list.Data {
		ids[m.ID] = true
	}
	if !ids["spam@v1"] || !ids["tiny@v1"] || ids["spam@v2"] || ids["spam@v3"] || ids["tiny@v2"] || ids["rival@v1"] {
		t.Errorf("served models %v: want spam@v1 and tiny@v1, none in us or on a base in us", ids)
	}

	// Copies into writable regions: a copy of eu data to eu-backup, and of
	// eu-public data into eu, which runs can then use.
	copies := []struct {
		req     api.CopyRequest
		name    string
		version int
		from    string
	}{
		{api.CopyRequest{Kind: "dataset", Source: "mail", ToRegion: "eu-backup"}, "mail-eu-backup", 0, "eu"},
		{api.CopyRequest{Kind: "dataset", Source: "pub", ToRegion: "eu", Name: "pub-here"}, "pub-here", 0, "eu-public"},
		{api.CopyRequest{Kind: "base", Source: "tiny@v1", ToRegion: "eu-backup"}, "tiny-eu-backup", 1, "eu"},
		{api.CopyRequest{Kind: "model", Source: "spam@champion", ToRegion: "eu-backup"}, "spam-eu-backup", 1, "eu"},
	}
	for _, c := range copies {
		out, err := e.client.Copy(ctx, c.req)
		if err != nil {
			t.Errorf("copy %+v: %v", c.req, err)
			continue
		}
		if !out.Created || out.Name != c.name || out.Version != c.version || out.Region != c.req.ToRegion || out.SourceRegion != c.from || out.EventSeq == 0 {
			t.Errorf("copy %+v: %+v", c.req, out)
		}
		rec, err := e.app.Store().CopySource(ctx, c.req.Kind, out.Name, out.ID)
		if err != nil || rec.SourceID != out.SourceID || rec.SourceName != strings.SplitN(c.req.Source, "@", 2)[0] {
			t.Errorf("lineage of %s: %+v, %v", out.Name, rec, err)
		}
		ev := e.events(app.EventCopyCreated(c.req.Kind))
		if len(ev) == 0 || ev[len(ev)-1].Seq != out.EventSeq || !strings.Contains(string(ev[len(ev)-1].Data), `"region":"`+c.from+`"`) {
			t.Errorf("copy event of %s: %+v", out.Name, ev)
		}
		again, err := e.client.Copy(ctx, c.req)
		if err != nil || again.Created || again.ID != out.ID || again.Version != out.Version {
			t.Errorf("the same copy again: %+v, %v; want the existing one", again, err)
		}
	}
	dv, err := e.client.Dataset(ctx, "pub-here", "")
	if err != nil || dv.Version.Region != "eu" || dv.Version.Records != 40 {
		t.Fatalf("copied dataset: %+v, %v", dv.Version, err)
	}
	if c := dv.Version.CopiedFrom; c == nil || c.Name != "pub" || c.Region != "eu-public" || c.ID != dv.Version.ID {
		t.Errorf("copied dataset's source: %+v", c)
	}
	mv, err := e.client.Model(ctx, "spam-eu-backup", "v1")
	if err != nil || mv.Region != "eu-backup" || mv.ID != w.spamV1.ID {
		t.Errorf("copied model: %+v, %v", mv, err)
	}
	if c := mv.CopiedFrom; c == nil || c.Name != "spam" || c.Region != "eu" {
		t.Errorf("copied model's source: %+v", c)
	}
	bv, err := e.client.Base(ctx, "tiny-eu-backup", "v1")
	if err != nil || bv.Region != "eu-backup" || bv.CopiedFrom == nil || bv.CopiedFrom.Name != "tiny" || bv.CopiedFrom.Region != "eu" {
		t.Errorf("copied base: %+v, %v", bv, err)
	}
	if src, err := e.client.Model(ctx, "spam", "v1"); err != nil || src.CopiedFrom != nil {
		t.Errorf("the source is no copy: %+v, %v", src.CopiedFrom, err)
	}
	e.applyRecipes(map[string]string{"pub-here.yaml": fmt.Sprintf(residencyRecipe, "pub-here", "tiny@v1", "pub-here", "eu", "")})
	if r, err := e.client.StartRun(ctx, api.RunStart{Recipe: "pub-here"}); err != nil || r.State != "queued" {
		t.Errorf("run on the copy: %+v, %v", r, err)
	}
	// A name taken by something else is a conflict, not a silent reuse.
	var se *api.StatusError
	_, err = e.client.Copy(ctx, api.CopyRequest{Kind: "dataset", Source: "mail", ToRegion: "eu-backup", Name: "pub-here"})
	if !errors.As(err, &se) || se.Status != http.StatusConflict || !strings.Contains(se.Err.Message, "dataset pub-here holds other versions") {
		t.Errorf("copy onto another dataset's name: %v", err)
	}
	// A later version of a copied dataset joins its earlier copy.
	e.importDS("mail", "", mailRecords("eu2", 10))
	later, err := e.client.Copy(ctx, api.CopyRequest{Kind: "dataset", Source: "mail", ToRegion: "eu-backup"})
	if err != nil || !later.Created || later.Name != "mail-eu-backup" {
		t.Errorf("copy of mail's next version: %+v, %v", later, err)
	}
	if vs, err := e.client.Datasets(ctx, "mail-eu-backup"); err != nil || len(vs) != 2 || vs[1].Parent != vs[0].ID {
		t.Errorf("mail-eu-backup versions: %+v, %v; want two in a chain", vs, err)
	}
	_, err = e.client.Copy(ctx, api.CopyRequest{Kind: "dataset", Source: "mail", ToRegion: "eu"})
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest || !strings.Contains(se.Err.Message, `in region "eu" already`) {
		t.Errorf("copy into its own region: %v", err)
	}
}

// TestResidencyDefaultPolicy: without a policy file each region reads and
// writes only itself, as the single check before did for runs, and now for
// everything else too: an eu dataset is refused to a local server's run,
// copy and export, and a local server may not import into eu.
func TestResidencyDefaultPolicy(t *testing.T) {
	dir := t.TempDir()
	regions := []string{"local", "eu"}
	eu, closeEU := openEnvWith(t, app.Options{DataDir: dir, Region: "eu", Regions: regions})
	eu.importDS("mail", "", mailRecords("eu", 20))
	closeEU()
	e := newEnv(t, app.Options{DataDir: dir, Region: "local", Regions: regions})
	ctx := context.Background()
	baseDir := filepath.Join(t.TempDir(), "tiny")
	writeTinyBaseSeed(t, baseDir, 1)
	if _, err := importBaseDir(e, "tiny", baseDir, nil); err != nil {
		t.Fatal(err)
	}
	e.applyRecipes(map[string]string{"r.yaml": fmt.Sprintf(residencyRecipe, "r", "tiny", "mail", "local", "")})
	rule := "default policy: regions.local.read = [local]"
	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"run", func() error { _, err := e.client.StartRun(ctx, api.RunStart{Recipe: "r"}); return err }, rule},
		{"copy", func() error {
			_, err := e.client.Copy(ctx, api.CopyRequest{Kind: "dataset", Source: "mail", ToRegion: "local"})
			return err
		}, rule},
		{"export", func() error { return e.client.DatasetRecords(ctx, "mail", "", "", io.Discard) }, rule},
		{"import into eu", func() error {
			_, err := e.client.ImportDataset(ctx, strings.NewReader(mailRecords("x", 2)), api.DatasetImportOptions{Name: "x", Task: "classify", FileName: "x.jsonl", Region: "eu"})
			return err
		}, "default policy: regions.local.write = [local]"},
	} {
		var se *api.StatusError
		if err := tc.do(); !errors.As(err, &se) || se.Status != http.StatusForbidden || !strings.Contains(se.Err.Message, tc.want) {
			t.Errorf("%s: %v; want a 403 naming %q", tc.name, err, tc.want)
		}
	}
	if r, err := e.client.StartRun(ctx, api.RunStart{Recipe: "r", Base: "tiny@v1"}); err == nil {
		t.Errorf("run on eu data with another base selector: %+v", r)
	}
	local := e.importDS("mail-local", "", mailRecords("local", 20))
	if local.Region != "local" {
		t.Errorf("an import without --region is in %q, want the server's region", local.Region)
	}
}

// TestConcurrentCopiesMakeOne: the same copy asked for at once, of each
// kind, makes one version and one event; every caller gets that version.
func TestConcurrentCopiesMakeOne(t *testing.T) {
	w := newResidencyWorld(t)
	ctx := context.Background()
	for _, req := range []api.CopyRequest{
		{Kind: "dataset", Source: "mail", ToRegion: "eu-backup"},
		{Kind: "base", Source: "tiny@v1", ToRegion: "eu-backup"},
		{Kind: "model", Source: "spam@v1", ToRegion: "eu-backup"},
	} {
		const n = 8
		outs := make([]api.Copy, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = w.e.client.Copy(ctx, req)
			}()
		}
		wg.Wait()
		created := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("%s copy %d: %v", req.Kind, i, errs[i])
			}
			if outs[i].Created {
				created++
			}
			if outs[i].ID != outs[0].ID || outs[i].Name != outs[0].Name || outs[i].Version != outs[0].Version {
				t.Errorf("%s copy %d: %+v, copy 0: %+v", req.Kind, i, outs[i], outs[0])
			}
		}
		if created != 1 {
			t.Errorf("%s: %d callers created the copy, want 1", req.Kind, created)
		}
		if evs := w.e.events(app.EventCopyCreated(req.Kind)); len(evs) != 1 {
			t.Errorf("%s: %d copy events, want 1", req.Kind, len(evs))
		}
	}
}
