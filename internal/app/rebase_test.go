package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/trigger"
)

// TestRebaseTriggerEndToEnd trains and promotes a champion on base tiny
// v1 with real worker processes, then imports tiny v2: the rebase trigger
// fires on base.version.created, runs the recipe on v2, evaluates the
// champion (v1 base) and the new version (v2 base) on the same test split,
// and promotes the new version exactly when its gates pass.
func TestRebaseTriggerEndToEnd(t *testing.T) {
	a, ctx := openWithWorkers(t)
	b1 := importSeedBase(t, a, "tiny", 5)
	var b strings.Builder
	words := [][]string{{"meeting", "notes", "lunch"}, {"prize", "cash", "winner"}}
	for i := range 200 {
		c := i % 2
		fmt.Fprintf(&b, "{\"id\":\"m%d\",\"text\":\"the %s for you %d\",\"label\":%q}\n", i, words[c][i%3], i, []string{"ham", "spam"}[c])
	}
	if _, err := a.ImportDataset(ctx, strings.NewReader(b.String()), api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "mail.jsonl"}); err != nil {
		t.Fatal(err)
	}
	const recipe = "name: mail\ntask: classify\nbase: tiny\ndata: {dataset: mail}\nmethod: {kind: lora, lora: {rank: 4}}\n" +
		"train: {max_steps: 30, batch_size: 16, learning_rate: 0.01, max_seq_len: 32}\nseed: 1\nregion: local\n" +
		"eval: {suite: [{metric: accuracy, split: test}, {metric: macro_f1, split: test}], gates: [{metric: macro_f1, op: '>=', value: 0.5}, {metric: macro_f1, not_worse_than: champion, epsilon: 0.05}]}\n"
	if _, err := a.ApplyRecipe(ctx, "mail.yaml", []byte(recipe)); err != nil {
		t.Fatal(err)
	}
	r, err := a.StartRun(ctx, api.RunStart{Recipe: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	v1 := waitVersion(t, a, r.ID)
	if _, err := a.Promote(store.WithActor(ctx, "test"), "mail", api.Promote{Version: "v1", Alias: "champion", Reason: "first"}); err != nil {
		t.Fatal(err)
	}
	const spec = "name: tiny-rebase\non: {event: base, base: tiny}\ndo:\n  - rebase: {recipe: mail@v1}\n  - promote_if_pass: {alias: champion}\n"
	if _, err := a.ApplyTrigger(ctx, "tiny-rebase.yaml", []byte(spec)); err != nil {
		t.Fatal(err)
	}

	b2 := importSeedBase(t, a, "tiny", 6)
	var f api.Firing
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		fs, err := a.TriggerHistory(ctx, "tiny-rebase")
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) == 1 && fs[0].State != "pending" && fs[0].State != "running" {
			f = fs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rebase firing did not end: %+v", fs)
		}
	}
	if f.State != "done" || len(f.Results) != 2 {
		t.Fatalf("firing %+v", f)
	}
	var rs []trigger.Result
	raw, _ := json.Marshal(f.Results)
	if err := json.Unmarshal(raw, &rs); err != nil {
		t.Fatal(err)
	}
	rb, pr := rs[0], rs[1]
	if rb.Model != "mail" || rb.Version != 2 || rb.Base != "tiny@v2" {
		t.Fatalf("rebase result %+v", rb)
	}
	v2, err := a.Model(ctx, "mail", "v2")
	if err != nil {
		t.Fatal(err)
	}
	var lin run.Inputs
	if err := json.Unmarshal(v2.Lineage, &lin); err != nil || lin.Base.ID != b2 || v1.BaseID != b1 {
		t.Fatalf("v2 lineage base %s (%v), want %s; v1 on %s, want %s", lin.Base.ID, err, b2, v1.BaseID, b1)
	}
	c := rb.Compare
	if c == nil || c.Alias != "champion" || c.Split != "test" || !strings.HasPrefix(c.Dataset, "mail@") ||
		c.Old.Model != "mail" || c.New.Model != "mail" ||
		c.Old.Version != 1 || c.Old.Base != "tiny@v1" || c.New.Version != 2 || c.New.Base != "tiny@v2" {
		t.Fatalf("comparison %+v", c)
	}
	for _, m := range []string{"accuracy", "macro_f1"} {
		_, okOld := c.Old.Metrics[m]
		_, okNew := c.New.Metrics[m]
		if !okOld || !okNew {
			t.Errorf("comparison lacks %s: old %v new %v", m, c.Old.Metrics, c.New.Metrics)
		}
	}
	if !strings.Contains(rb.Outcome, "v1 on tiny@v1 vs v2 on tiny@v2") {
		t.Errorf("outcome %q", rb.Outcome)
	}
	// The promotion follows the new version's own verdict: on this seed
	// the new base scores well below the champion (macro-F1 0.88 against
	// 1.00 here), so its not_worse_than champion gate fails.
	if len(v2.Reports) == 0 || v2.Reports[0].Verdict != "fail" || pr.Promoted || !strings.Contains(pr.Outcome, "gates failed") {
		t.Fatalf("promoted %v with reports %+v: %s", pr.Promoted, v2.Reports, pr.Outcome)
	}
	if c.New.Metrics["macro_f1"] >= c.Old.Metrics["macro_f1"] {
		t.Fatalf("the rebased version is not worse (%v vs %v), so this test no longer shows a refusal", c.New.Metrics, c.Old.Metrics)
	}
	champ, err := a.Model(ctx, "mail", "champion")
	if err != nil {
		t.Fatal(err)
	}
	if champ.Version != 1 {
		t.Fatalf("champion is v%d, want v1", champ.Version)
	}
	t.Logf("rebase: %s; %s", rb.Outcome, pr.Outcome)

	// A run start may name the base; an unknown one is refused by name.
	if _, err := a.StartRun(ctx, api.RunStart{Recipe: "mail@v1", Base: "tiny@v9"}); !errors.Is(err, errs.ErrNotFound) || !strings.Contains(err.Error(), "tiny@v9") {
		t.Fatalf("run on a missing base: %v", err)
	}
	if _, err := a.StartRun(ctx, api.RunStart{Recipe: "mail@v1", Base: "Tiny!"}); !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("run on a malformed base: %v", err)
	}
}

// waitVersion waits for run id to succeed and register its model version
// with a report.
func waitVersion(t *testing.T, a *App, id string) api.ModelVersion {
	t.Helper()
	return waitModelVersion(t, a, "mail", id)
}

// waitModelVersion waits for run id to succeed and register a version of
// model with a report.
func waitModelVersion(t *testing.T, a *App, model, id string) api.ModelVersion {
	t.Helper()
	return waitModelVersionIn(context.Background(), t, a, model, id)
}

// waitModelVersionIn is waitModelVersion in ctx's project.
func waitModelVersionIn(ctx context.Context, t *testing.T, a *App, model, id string) api.ModelVersion {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r, err := a.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == "failed" || r.State == "canceled" {
			t.Fatalf("run %s %s: %s", id, r.State, r.Error)
		}
		if r.State != "succeeded" {
			continue
		}
		vs, _ := a.Models(ctx, model)
		for _, v := range vs {
			if v.RunID == id && len(v.Reports) > 0 {
				return v
			}
		}
	}
	t.Fatalf("run %s not registered in time", id)
	return api.ModelVersion{}
}
