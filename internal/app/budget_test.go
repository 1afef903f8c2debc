package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
)

// waitRunState polls run id until it is in state want; another final
// state fails the test.
func waitRunState(t *testing.T, a *App, ctx context.Context, id, want string) api.Run {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r, err := a.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == want {
			return r
		}
		if store.RunState(r.State).Terminal() {
			logs, _ := a.RunLogs(ctx, id, 0)
			t.Fatalf("run %s ended %s (%s), want %s; logs %v", id, r.State, r.Error, want, logs)
		}
	}
	t.Fatalf("run %s did not reach %s in time", id, want)
	return api.Run{}
}

// TestBudgetStopsAndResumesARealRun trains a tiny model in a real worker
// child under a recipe budget of 4 steps (of 12): the run is stopped at
// its limit in state budget_exceeded with the checkpoint at step 4 kept,
// an event and a message naming the limit; with the budget raised it
// resumes from that checkpoint and succeeds, and its usage covers both
// attempts.
func TestBudgetStopsAndResumesARealRun(t *testing.T) {
	a, ctx := openWithWorkers(t)
	// Everything happens in project team-a: its base, data, recipe and
	// run, and the usage is team-a's.
	if _, err := a.store.PutProject(ctx, store.Project{Name: "team-a", CreatedBy: "root"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	ctx = store.WithProject(ctx, "team-a")
	importSeedBaseIn(ctx, t, a, "tiny", 5)
	var b strings.Builder
	words := [][]string{{"meeting", "notes", "lunch"}, {"prize", "cash", "winner"}}
	for i := range 120 {
		c := i % 2
		fmt.Fprintf(&b, "{\"id\":\"m%d\",\"text\":\"the %s for you %d\",\"label\":%q}\n", i, words[c][i%3], i, []string{"ham", "spam"}[c])
	}
	if _, err := a.ImportDataset(ctx, strings.NewReader(b.String()), api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "mail.jsonl"}); err != nil {
		t.Fatal(err)
	}
	const recipe = "name: mail\ntask: classify\nbase: tiny\ndata: {dataset: mail}\nmethod: {kind: lora, lora: {rank: 4}}\n" +
		"train: {max_steps: 12, batch_size: 8, learning_rate: 0.01, max_seq_len: 32, checkpoint_every: 1}\nseed: 1\nregion: local\n" +
		"budget: {max_steps: 4}\n"
	if _, err := a.ApplyRecipe(ctx, "mail.yaml", []byte(recipe)); err != nil {
		t.Fatal(err)
	}
	sub, cancel := context.WithCancel(ctx)
	defer cancel()
	events := a.Subscribe(sub)
	r, err := a.StartRun(ctx, api.RunStart{Recipe: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	r = waitRunState(t, a, ctx, r.ID, "budget_exceeded")
	if r.Checkpoint == "" || r.Step != 4 || r.Result != "" {
		t.Fatalf("stopped run: checkpoint %q at step %d, result %q; want a checkpoint at step 4 and no result", r.Checkpoint, r.Step, r.Result)
	}
	if !strings.Contains(r.Error, "budget max_steps 4 reached: measured step 4") {
		t.Errorf("message %q does not name the limit, its value and the measured value", r.Error)
	}
	if stopped, err := a.Runs(ctx, "budget_exceeded"); err != nil || len(stopped) != 1 || stopped[0].ID != r.ID {
		t.Errorf("runs in budget_exceeded: %v, %v", stopped, err)
	}
	var sawEvent bool
	for !sawEvent {
		select {
		case e := <-events:
			sawEvent = e.Type == run.EventBudgetExceeded && e.Subject == r.ID && strings.Contains(string(e.Data), `"limit":"max_steps"`)
		case <-time.After(10 * time.Second):
			t.Fatal("no run.budget.exceeded event")
		}
	}
	u, err := a.RunUsage(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.Project != "team-a" || u.Model != "mail" || u.CPUSeconds <= 0 || u.WallSeconds <= 0 || u.FLOPs <= 0 || u.PeakRSSBytes <= 0 ||
		(u.EnergySource != "measured" && u.EnergySource != "estimated") || u.EnergyKWh <= 0 || u.CostUSD <= 0 ||
		u.Exceeded == nil || u.Exceeded.Limit != "max_steps" || u.Budget.MaxSteps != 4 {
		t.Fatalf("usage of the stopped run: %+v", u)
	}
	t.Logf("stopped at step %d: %.2f CPU-s, %.2f s wall, %.3g FLOPs, peak RSS %d MiB, %.3g kWh %s, %.3g USD",
		r.Step, u.CPUSeconds, u.WallSeconds, u.FLOPs, u.PeakRSSBytes>>20, u.EnergyKWh, u.EnergySource, u.CostUSD)

	// Starting the recipe again finds the stopped run: its key has a run.
	if again, err := a.StartRun(ctx, api.RunStart{Recipe: "mail"}); err != nil || again.ID != r.ID || !again.Reused {
		t.Errorf("start again = %+v, %v; want the stopped run %s", again, err, r.ID)
	}

	// Raise the budget: the run resumes from the kept checkpoint and succeeds.
	resumed, err := a.ResumeRun(ctx, r.ID, api.Budget{MaxSteps: 100})
	if err != nil {
		t.Fatal(err)
	}
	if resumed.State != "queued" || resumed.Key != r.Key {
		t.Fatalf("resumed run %+v", resumed)
	}
	v := waitModelVersionIn(ctx, t, a, "mail", r.ID)
	done, err := a.Run(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != "succeeded" || done.Step != 12 || done.Attempt != 2 || done.Error != "" || v.RunID != r.ID {
		t.Fatalf("after the raise: %+v", done)
	}
	logs, err := a.RunLogs(ctx, r.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, l := range logs {
		text = append(text, string(l.Data))
	}
	all := strings.Join(text, "\n")
	if !strings.Contains(all, "attempt 2 resuming from checkpoint at step 4") || !strings.Contains(all, "budget raised to max_steps=100") {
		t.Errorf("the log does not show the raise and the resume from step 4:\n%s", all)
	}
	u2, err := a.RunUsage(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u2.FLOPs <= u.FLOPs || u2.CPUSeconds < u.CPUSeconds || u2.Exceeded != nil || u2.Budget.MaxSteps != 100 {
		t.Errorf("usage after the resume %+v (before %+v)", u2, u)
	}

	// The trained model, served, is metered per request in the project the
	// request acts in (as the authentication layer sets it).
	for range 3 {
		req := httptest.NewRequestWithContext(store.WithProject(context.Background(), "team-a"), "POST", "/v1/classify",
			strings.NewReader(`{"model":"mail","input":"the prize for you"}`))
		rec := httptest.NewRecorder()
		a.Inference().ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("classify: %d %s", rec.Code, rec.Body)
		}
	}
	a.usage.flush(ctx)
	rep, err := a.Usage(ctx, api.UsageQuery{By: "project"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].Key != "team-a" || rep.Rows[0].Runs != 1 || rep.Rows[0].FLOPs != u2.FLOPs ||
		rep.Rows[0].Requests != 3 || rep.Rows[0].TokensIn == 0 || rep.Rows[0].EnergySource == "" {
		raw, _ := json.Marshal(rep)
		t.Errorf("usage by project: %s", raw)
	}
}
