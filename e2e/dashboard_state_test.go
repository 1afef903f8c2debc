package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/seedmodel"
	"github.com/tailor-ml/tailor/internal/store"
)

// dashState is what dashboardState built: the names the browser script is
// told to follow, and the ids the Go test checks afterwards.
type dashState struct {
	Model       string `json:"model"`        // the model name
	Champion    int    `json:"champion"`     // the version champion points at
	Candidate   int    `json:"candidate"`    // a version whose gate fails
	CandidateID string `json:"candidate_id"` // its version id
	ChampRun    string `json:"champ_run"`    // the run that trained the champion
	Dataset     string `json:"dataset"`      // the dataset name
	DatasetID   string `json:"dataset_id"`   // the version the champion was trained on
	Report      string `json:"report"`       // the champion's first report digest
	Adapter     string `json:"adapter"`      // the champion's adapter digest
	RecipeID    string `json:"recipe_id"`    // the champion's recipe version
	Deployment  string `json:"deployment"`   // the deployment's model name
	Trigger     string `json:"trigger"`      // an applied trigger
	Monitor     string `json:"monitor"`      // a monitor of champion with stable and drifted windows
	LongRecipe  string `json:"long_recipe"`  // a recipe that trains long enough to cancel
	BudgetRun   string `json:"budget_run"`   // a run stopped at its budget (budget_exceeded)
	// The reasons the browser types into the promote (with an override)
	// and rollback forms.
	PromoteReason  string `json:"promote_reason"`
	OverrideReason string `json:"override_reason"`
	RollbackReason string `json:"rollback_reason"`
	// Who the browser logs in as: an operator first (no promote, roll
	// back or approve buttons), then an admin who promotes, rolls back and
	// requests the approval. Their tokens are real, minted by the test.
	Operator      string `json:"operator"`
	OperatorToken string `json:"operator_token"`
	Admin         string `json:"admin"`
	AdminToken    string `json:"admin_token"`
	// An alias the server requires approval for (--require-approval), the
	// reasons to request and approve, and who approves: a second
	// principal, whose token the browser logs in with to approve.
	ApprovalAlias  string `json:"approval_alias"`
	ApprovalReason string `json:"approval_reason"`
	ApproveReason  string `json:"approve_reason"`
	Approver       string `json:"approver"`
	ApproverToken  string `json:"approver_token"`
	// Token management: the principal of the token the browser creates
	// (as the admin), logs in with, and revokes with a reason.
	NewPrincipal      string `json:"new_principal"`
	TokenRevokeReason string `json:"token_revoke_reason"`
	// The project switch: a second project, and a principal whose token
	// is admin in default and viewer there.
	OtherProject  string `json:"other_project"`
	Switcher      string `json:"switcher"`
	SwitcherToken string `json:"switcher_token"`
}

// dashRecipe trains a rank-4 LoRA classifier on the 2-layer base in a few
// seconds; seed and gates vary per version.
const dashRecipe = `name: mail
task: classify
base: tiny
data: {dataset: mail}
method: {kind: lora, lora: {rank: 4}}
train: {max_steps: %d, batch_size: 16, learning_rate: 0.01, max_seq_len: 32, checkpoint_every: %d}
seed: %d
region: local
eval:
  suite: [{metric: accuracy, split: test}, {metric: macro_f1, split: test}]
  gates: [%s]
`

// dashboardState builds, through the public API of a real server, the
// smallest state that has every page's subject: a dataset, a base, a
// champion trained by a run with an eval report, a second version whose
// latency gate cannot pass, a deployment of champion, a monitor of it with
// stable and drifted windows, and a trigger.
func dashboardState(t *testing.T, srv *server, work string) dashState {
	t.Helper()
	ctx := context.Background()
	c := api.NewClient(srv.addr, nil)
	st := dashState{Model: "mail", Dataset: "mail", Deployment: "mail", Trigger: "mail-retrain", Monitor: "mail-watch", LongRecipe: "mail-long",
		PromoteReason: "candidate from the stricter recipe", OverrideReason: "latency gate is a placeholder on this test box",
		RollbackReason: "back to the champion until latency is measured",
		ApprovalAlias:  "challenger", ApprovalReason: "challenge the champion in the canary", ApproveReason: "reviewed the gates and the override",
		Approver: "reviewer", Operator: "oper", Admin: "ada",
		NewPrincipal: "vera", TokenRevokeReason: "vera's trial is over", OtherProject: "blue", Switcher: "pat"}

	mint := func(principal, role, note string) string {
		t.Helper()
		tok, err := c.CreateToken(ctx, api.TokenCreate{Principal: principal, Role: role, Note: note})
		must(t, err)
		return tok.Secret
	}
	st.ApproverToken = mint(st.Approver, "admin", "the dashboard test's second person")
	st.OperatorToken = mint(st.Operator, "operator", "the dashboard test's operator: sees no admin buttons")
	st.AdminToken = mint(st.Admin, "admin", "the dashboard test's admin")
	// The project's creator (the admin, by token) gets a token that is
	// admin in it and keeps the admin role in default; with it, a token
	// with roles in both projects is minted through the API.
	created, err := api.NewClient(srv.addr, nil).WithToken(st.AdminToken).CreateProject(ctx, st.OtherProject)
	must(t, err)
	sw, err := api.NewClient(srv.addr, nil).WithToken(created.Secret).WithProject(store.DefaultProject).CreateToken(ctx,
		api.TokenCreate{Principal: st.Switcher, Role: "admin", Roles: map[string]string{st.OtherProject: "viewer"},
			Note: "the dashboard test's project switcher"})
	must(t, err)
	st.SwitcherToken = sw.Secret

	var b strings.Builder
	words := [][]string{{"meeting", "notes", "lunch", "report"}, {"prize", "cash", "winner", "offer"}}
	for i := range 200 {
		k := i % 2
		fmt.Fprintf(&b, "{\"id\":\"m%d\",\"text\":\"the %s for you %d\",\"label\":%q}\n", i, words[k][i%4], i, []string{"ham", "spam"}[k])
	}
	ds, err := c.ImportDataset(ctx, strings.NewReader(b.String()), api.DatasetImportOptions{Name: st.Dataset, Task: "classify", FileName: "mail.jsonl"})
	must(t, err)
	st.DatasetID = ds.Version.ID

	baseDir := filepath.Join(work, "tiny")
	writeTinyBase(t, baseDir, b.String())
	_, err = c.ImportBaseDir(ctx, "tiny", "", baseDir)
	must(t, err)

	train := func(steps, seed int, gates string) api.ModelVersion {
		t.Helper()
		ra, err := c.ApplyRecipe(ctx, "mail.yaml", fmt.Appendf(nil, dashRecipe, steps, 10, seed, gates))
		must(t, err)
		r, err := c.StartRun(ctx, api.RunStart{Recipe: fmt.Sprintf("mail@v%d", ra.Version.Version)})
		must(t, err)
		return waitModel(t, c, st.Model, r.ID)
	}
	champ := train(30, 1, "{metric: macro_f1, op: '>=', value: 0.5}")
	_, err = c.Promote(ctx, st.Model, api.Promote{Version: fmt.Sprintf("v%d", champ.Version), Alias: "champion", Reason: "first model", Actor: "e2e"})
	must(t, err)
	strict := train(30, 2, "{metric: macro_f1, op: '>=', value: 0.5}, {metric: latency_p95_ms, op: '<=', value: 0.000001}")
	if champ.Verdict != "pass" || strict.Verdict != "fail" {
		t.Fatalf("verdicts: champion v%d %s, candidate v%d %s; want pass and fail", champ.Version, champ.Verdict, strict.Version, strict.Verdict)
	}
	st.Champion, st.Candidate, st.CandidateID, st.ChampRun, st.Adapter = champ.Version, strict.Version, strict.ID, champ.RunID, champ.Adapter
	st.Report = champ.Reports[0].Digest
	run, err := c.Run(ctx, champ.RunID)
	must(t, err)
	st.RecipeID = run.RecipeID

	_, err = c.Deploy(ctx, api.DeploymentSpec{Model: st.Deployment, Alias: "champion", Reason: "serve the first model", Actor: "e2e"})
	must(t, err)
	// A monitor of champion: one window of traffic like the training data,
	// two of traffic it never saw.
	_, err = c.ApplyMonitor(ctx, "mail-watch.yaml", []byte("name: mail-watch\nmodel: mail\nalias: champion\nwindow: {kind: count, size: 30}\n"))
	must(t, err)
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		m, err := c.Monitor(ctx, st.Monitor)
		must(t, err)
		if m.Profile != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor %s: no reference profile in 3 minutes", st.Monitor)
		}
	}
	texts := strings.Split(strings.TrimSpace(b.String()), "\n")[:30]
	for i, l := range texts {
		var rec struct{ Text string }
		must(t, json.Unmarshal([]byte(l), &rec))
		texts[i] = rec.Text
	}
	for _, x := range shifted(60) {
		texts = append(texts, x.text)
	}
	for _, text := range texts {
		_, err := c.Classify(ctx, api.ClassifyRequest{Model: st.Model, Input: []string{text}})
		must(t, err)
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		m, err := c.Monitor(ctx, st.Monitor)
		must(t, err)
		if m.Windows >= 3 {
			if m.Drifted == 0 {
				t.Fatalf("monitor %s: no drifted window among %d", st.Monitor, m.Windows)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor %s: %d windows in 3 minutes, want 3", st.Monitor, m.Windows)
		}
	}

	trig := "name: mail-retrain\ndescription: Retrain mail on accumulated feedback; promote if the gates pass.\non: {event: feedback, model: mail}\n" +
		"do:\n  - retrain: {recipe: mail}\n  - promote_if_pass: {alias: champion}\nlimits: {max_concurrent: 1}\n"
	_, err = c.ApplyTrigger(ctx, "mail-retrain.yaml", []byte(trig))
	must(t, err)
	// A recipe the browser starts nothing of, but a run of it the script
	// watches live and cancels: 100 000 steps never finish in the test.
	long := strings.Replace(fmt.Sprintf(dashRecipe, 100000, 1000, 3, "{metric: macro_f1, op: '>=', value: 0.5}"), "name: mail\n", "name: "+st.LongRecipe+"\n", 1)
	_, err = c.ApplyRecipe(ctx, "mail-long.yaml", []byte(long))
	must(t, err)
	// A run stopped at its budget: 12 steps planned, a budget of 4; the
	// browser resumes it with a raised limit.
	capped := strings.Replace(fmt.Sprintf(dashRecipe, 12, 1, 4, "{metric: macro_f1, op: '>=', value: 0.5}"), "name: mail\n", "name: mail-budget\n", 1) + "budget: {max_steps: 4}\n"
	ra, err := c.ApplyRecipe(ctx, "mail-budget.yaml", []byte(capped))
	must(t, err)
	r, err := c.StartRun(ctx, api.RunStart{Recipe: fmt.Sprintf("mail-budget@v%d", ra.Version.Version)})
	must(t, err)
	st.BudgetRun = r.ID
	waitRunState(t, c, r.ID, "budget_exceeded")
	return st
}

// waitModel waits for run id to succeed and its model version to be
// registered with a report.
func waitModel(t *testing.T, c *api.Client, model, id string) api.ModelVersion {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r, err := c.Run(ctx, id)
		must(t, err)
		if r.State == "failed" || r.State == "canceled" {
			t.Fatalf("run %s %s: %s", id, r.State, r.Error)
		}
		if r.State != "succeeded" {
			continue
		}
		// The server registers the version just after the run succeeds:
		// until then the model is not found.
		vs, err := c.Models(ctx, model)
		if se := (*api.StatusError)(nil); err != nil && !(errors.As(err, &se) && se.Status == 404) {
			t.Fatal(err)
		}
		for _, v := range vs {
			if v.RunID == id && len(v.Reports) > 0 {
				return v
			}
		}
	}
	t.Fatalf("run %s: no model version registered in 3 minutes", id)
	return api.ModelVersion{}
}

// waitRunState waits up to 3 minutes for run id to reach state.
func waitRunState(t *testing.T, c *api.Client, id, state string) api.Run {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r, err := c.Run(context.Background(), id)
		must(t, err)
		if r.State == state {
			return r
		}
		switch r.State {
		case "failed", "canceled", "succeeded", "budget_exceeded": // ended, not in state
			t.Fatalf("run %s %s, want %s: %s", id, r.State, state, r.Error)
		}
	}
	t.Fatalf("run %s: not %s in 3 minutes", id, state)
	return api.Run{}
}

// writeTinyBase writes a 2-layer, 32-wide Llama with a tokenizer trained
// on text: small enough to train 30 steps in seconds.
func writeTinyBase(t *testing.T, dir, text string) {
	t.Helper()
	tok, err := tokenizer.Train(func(yield func(string) bool) {
		for _, l := range strings.Split(text, "\n") {
			if !yield(l) {
				return
			}
		}
	}, tokenizer.TrainOptions{VocabSize: 300, MinFrequency: 1, SpecialTokens: []string{"<|endoftext|>"}})
	must(t, err)
	tj, err := tok.MarshalJSON()
	must(t, err)
	cfg := engine.Config{Arch: "LlamaForCausalLM", VocabSize: tok.VocabSize(), Hidden: 32, Intermediate: 64, Layers: 2, Heads: 4, KVHeads: 2,
		HeadDim: 8, MaxPositions: 128, RopeTheta: 10000, NormEps: 1e-5, Activation: "silu", BOSTokenID: -1, EOSTokenID: -1, TorchDtype: "float32"}
	must(t, seedmodel.Write(dir, cfg, tj, 5))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
