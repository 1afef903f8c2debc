package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/registry"
	"github.com/tailor-ml/tailor/internal/residency"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/store"
)

// runOutcome is what a finished training run reports in its metrics about
// its adapter's evaluation (see internal/worker).
type runOutcome struct {
	Report      string   `json:"report"`
	Verdict     string   `json:"verdict"`
	FailedGates []string `json:"failed_gates"`
	EvalDataset string   `json:"eval_dataset"`
	EvalSplit   string   `json:"eval_split"`
}

// adapterHead is the part of a worker's adapter manifest the app reads.
type adapterHead struct {
	Format string `json:"format"`
	Task   string `json:"task"`
}

// registerRun records the adapter of a succeeded run as a model version
// named after its recipe, with its eval report. It is idempotent, so it runs
// both when a run succeeds and when the server starts (to catch runs whose
// registration a crash interrupted).
func (a *App) registerRun(ctx context.Context, r store.Run) error {
	if r.State != store.RunSucceeded || r.Result == "" {
		return nil
	}
	var in run.Inputs
	if err := json.Unmarshal(r.Inputs, &in); err != nil {
		return fmt.Errorf("run %s inputs: %w", r.ID, err)
	}
	if in.Kind == run.KindEval {
		return a.attachEvalRun(ctx, r, in)
	}
	var raw json.RawMessage
	if err := a.readJSON(ctx, r.Result, &raw); err != nil {
		return nil
	}
	var head adapterHead
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil
	}
	mv := store.ModelVersion{Name: in.Recipe.Name, BaseID: r.BaseID, Adapter: r.Result, RunID: r.ID, Task: head.Task, Lineage: r.Inputs,
		Region: a.opts.Region} // the run computed here and wrote its adapter and report here
	if head.Format != "peft-lora" {
		bv, task, err := a.fullFineTune(ctx, r, in, raw)
		if err != nil || bv.ID == "" {
			return err // "": a pretraining run's model becomes a base only when asked (tailor base import --from-run)
		}
		mv.BaseID, mv.Adapter, mv.Task = bv.ID, "", task
	}
	v, _, err := a.registry.Register(ctx, mv)
	if err != nil {
		return fmt.Errorf("register run %s: %w", r.ID, err)
	}
	var out runOutcome
	if len(r.Metrics) == 0 || json.Unmarshal(r.Metrics, &out) != nil || out.Report == "" {
		return nil
	}
	return a.attachReport(ctx, v.ID, out)
}

// fullFineTune stores the whole model a full fine-tune (method kind full,
// task sft) produced as a version of a base named after its recipe, and
// returns it with the run's task: the model version is that base alone. A
// pretraining run's model gives the zero base: it becomes a base only when
// someone names it (ImportBaseFromRun). result is the run's result blob,
// as registerRun read it.
func (a *App) fullFineTune(ctx context.Context, r store.Run, in run.Inputs, result json.RawMessage) (store.BaseVersion, string, error) {
	var m basemodel.Manifest
	if err := json.Unmarshal(result, &m); err != nil || m.Fingerprint == "" {
		return store.BaseVersion{}, "", nil
	}
	rv, err := a.store.RecipeVersionByID(ctx, r.RecipeID)
	if err != nil {
		return store.BaseVersion{}, "", fmt.Errorf("run %s recipe: %w", r.ID, err)
	}
	rec, err := recipe.Parse(rv.Name+"@v"+fmt.Sprint(rv.Version), rv.Normalized)
	if err != nil {
		return store.BaseVersion{}, "", fmt.Errorf("stored recipe %s no longer parses: %w", rv.ID, err)
	}
	if rec.Task != recipe.TaskSFT {
		return store.BaseVersion{}, "", nil
	}
	from := fmt.Sprintf("%s@v%d", in.Base.Name, in.Base.Version)
	bv, _, err := a.putRunBase(ctx, in.Recipe.Name, r.ID, r.Result, &m, from)
	return bv, string(rec.Task), err
}

// putRunBase records the model a run produced (manifest m, stored at digest)
// as version m.Fingerprint of base name, unless that version exists.
// fineTuneOf names the base a full fine-tune started from ("" for a
// pretraining run's model); base triggers skip such versions, which are a
// model's weights, not a new base to build on.
func (a *App) putRunBase(ctx context.Context, name, runID, digest string, m *basemodel.Manifest, fineTuneOf string) (store.BaseVersion, bool, error) {
	if existing, err := a.store.BaseVersion(ctx, name, m.Fingerprint); err == nil {
		return existing, false, nil
	}
	if err := a.residency().write(residency.Object{Kind: "base", Name: name, Region: a.opts.Region}); err != nil {
		return store.BaseVersion{}, false, fmt.Errorf("base %q from run %s: %w", name, runID, err)
	}
	v := store.BaseVersion{ID: m.Fingerprint, Name: name, Arch: m.Arch, Params: m.Params, Manifest: digest, Region: a.opts.Region,
		CreatedAt: a.opts.Now().UTC()}
	data := map[string]any{"name": name, "id": v.ID, "arch": v.Arch, "run": runID}
	if fineTuneOf != "" {
		data["fine_tune_of"] = fineTuneOf
	}
	v, evs, err := a.store.PutBaseVersion(ctx, v, []store.Event{a.event("base.version.created", v.ID, data)})
	if errors.Is(err, errs.ErrConflict) { // recorded concurrently
		existing, gerr := a.store.BaseVersion(ctx, name, m.Fingerprint)
		return existing, false, gerr
	}
	if err != nil {
		return store.BaseVersion{}, false, err
	}
	a.publish(evs)
	return v, true, nil
}

// attachReport attaches a run's eval report to a model version, once.
func (a *App) attachReport(ctx context.Context, modelVersionID string, out runOutcome) error {
	verdict := store.Verdict(out.Verdict)
	if verdict == "" {
		verdict = "pass" // no gates: nothing failed
	}
	_, err := a.registry.AttachReport(ctx, modelVersionID, store.EvalReport{Digest: out.Report, DatasetID: out.EvalDataset, Split: out.EvalSplit,
		Verdict: verdict, Failed: out.FailedGates})
	if errors.Is(err, errs.ErrConflict) {
		return nil // attached already (a restart registers again)
	}
	return err
}

// reconcile registers every succeeded run that is not yet a model
// version, in every project, each in its own.
func (a *App) reconcile(ctx context.Context) error {
	return store.InProjects(ctx, a.store, func(ctx context.Context, project string) error {
		runs, err := a.store.Runs(ctx, store.RunFilter{States: []store.RunState{store.RunSucceeded}})
		if err != nil {
			return err
		}
		for _, r := range runs {
			if err := a.registerRun(ctx, r); err != nil {
				a.logger.Error("register succeeded run", "project", project, "run", r.ID, "err", err)
			}
		}
		return nil
	})
}

// champion resolves the model version a new run of recipe name is compared
// with: the one behind the "champion" alias, with its base.
func (a *App) champion(ctx context.Context, name string) (run.InputRef, run.InputRef, error) {
	v, err := a.registry.Version(ctx, name, "champion")
	if errors.Is(err, errs.ErrNotFound) {
		return run.InputRef{}, run.InputRef{}, nil
	}
	if err != nil {
		return run.InputRef{}, run.InputRef{}, err
	}
	// The run compares with the champion: it reads its adapter and base.
	bv, err := a.residency().readableModel(ctx, a.store, v.ModelVersion)
	if err != nil {
		return run.InputRef{}, run.InputRef{}, fmt.Errorf("champion %s v%d: %w", name, v.Version, err)
	}
	return run.InputRef{Name: fmt.Sprintf("%s@v%d", name, v.Version), ID: v.ID, Version: v.Version, Manifest: v.Adapter},
		run.InputRef{Name: bv.Name, ID: bv.ID, Version: bv.Version, Manifest: bv.Manifest}, nil
}

func baseByID(ctx context.Context, st store.Store, id string) (store.BaseVersion, error) {
	vs, err := st.BaseVersions(ctx, "")
	if err != nil {
		return store.BaseVersion{}, err
	}
	for _, v := range vs {
		if v.ID == id {
			return v, nil
		}
	}
	return store.BaseVersion{}, errs.NotFound("base version %s", id)
}

func toAPIModel(v registry.Version) api.ModelVersion {
	out := api.ModelVersion{ID: v.ID, Name: v.Name, Version: v.Version, BaseID: v.BaseID, Adapter: v.Adapter, RunID: v.RunID, Task: v.Task,
		Labels: v.Labels, Lineage: v.Lineage, Region: v.Region, CreatedAt: v.CreatedAt, Verdict: string(v.Verdict), Aliases: v.Aliases, Reports: []api.EvalReportRef{}}
	for _, r := range v.Reports {
		out.Reports = append(out.Reports, api.EvalReportRef{Digest: r.Digest, DatasetID: r.DatasetID, Split: r.Split, Verdict: string(r.Verdict),
			Failed: r.Failed, CreatedAt: r.CreatedAt})
	}
	return out
}

// Models lists model versions.
func (a *App) Models(ctx context.Context, name string) ([]api.ModelVersion, error) {
	vs, err := a.registry.Versions(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]api.ModelVersion, len(vs))
	for i, v := range vs {
		out[i] = toAPIModel(v)
	}
	return out, nil
}

// Model returns one model version by ref or alias.
func (a *App) Model(ctx context.Context, name, ref string) (api.ModelVersion, error) {
	v, err := a.registry.Version(ctx, name, ref)
	if err != nil {
		return api.ModelVersion{}, err
	}
	out := toAPIModel(v)
	if out.CopiedFrom, err = a.copiedFrom(ctx, store.CopyModel, v.Name, v.ID); err != nil {
		return api.ModelVersion{}, err
	}
	return out, nil
}

// Promote points an alias at a version, subject to its gates and approvals.
func (a *App) Promote(ctx context.Context, name string, p api.Promote) (api.Promotion, error) {
	if err := freeText(ident.Text("reason", p.Reason), ident.Text("override_reason", p.OverrideReason)); err != nil {
		return api.Promotion{}, err
	}
	pr, err := a.registry.Promote(ctx, registry.PromoteRequest{Name: name, Version: p.Version, Alias: p.Alias, Reason: p.Reason,
		Actor: actorOf(ctx), Override: p.Override, OverrideReason: p.OverrideReason})
	if err != nil {
		return api.Promotion{}, err
	}
	var out api.Promotion
	if pr.Move != nil {
		m := toAPIMove(*pr.Move)
		out.Move = &m
	}
	if pr.Approval != nil {
		ap := toAPIApproval(*pr.Approval)
		out.Approval = &ap
	}
	return out, nil
}

// Rollback moves an alias back to its previous target.
func (a *App) Rollback(ctx context.Context, name string, r api.Rollback) (api.AliasMove, error) {
	if err := ident.Text("reason", r.Reason); err != nil {
		return api.AliasMove{}, err
	}
	m, err := a.registry.Rollback(ctx, name, r.Alias, r.Reason, actorOf(ctx))
	if err != nil {
		return api.AliasMove{}, err
	}
	return toAPIMove(m), nil
}

// AliasHistory lists alias moves.
func (a *App) AliasHistory(ctx context.Context, name, alias string) ([]api.AliasMove, error) {
	ms, err := a.registry.History(ctx, name, alias)
	if err != nil {
		return nil, err
	}
	out := make([]api.AliasMove, len(ms))
	for i, m := range ms {
		out[i] = toAPIMove(m)
	}
	return out, nil
}

// Approvals lists approvals of a model.
func (a *App) Approvals(ctx context.Context, name, state string) ([]api.Approval, error) {
	as, err := a.registry.Approvals(ctx, name, store.ApprovalState(state))
	if err != nil {
		return nil, err
	}
	out := make([]api.Approval, len(as))
	for i, ap := range as {
		out[i] = toAPIApproval(ap)
	}
	return out, nil
}

// Decide approves or rejects a pending approval as the context's actor;
// the registry refuses an approval by the principal who requested it.
func (a *App) Decide(ctx context.Context, id string, d api.Decision) (api.Approval, error) {
	if err := ident.Text("reason", d.Reason); err != nil {
		return api.Approval{}, err
	}
	if d.Approve {
		if _, err := a.registry.Approve(ctx, id, actorOf(ctx), d.Reason); err != nil {
			return api.Approval{}, err
		}
		ap, err := a.registry.Approval(ctx, id)
		return toAPIApproval(ap), err
	}
	ap, err := a.registry.Reject(ctx, id, actorOf(ctx), d.Reason)
	return toAPIApproval(ap), err
}

// readableReport checks that this server may read the report: it lives
// where a model version it is attached to lives (a copy of that version
// in a readable region will do), and that ctx's project has it: a model
// version of the project it is attached to, or a succeeded run of the
// project whose metrics name it (an eval run's report, attached to none).
func (a *App) readableReport(ctx context.Context, digest string) error {
	vs, err := a.registry.Versions(ctx, "")
	if err != nil {
		return err
	}
	var refusal error
	for _, v := range vs {
		if !slices.ContainsFunc(v.Reports, func(r store.EvalReport) bool { return r.Digest == digest }) {
			continue
		}
		_, err := a.residency().readableModel(ctx, a.store, v.ModelVersion)
		if err == nil {
			return nil
		}
		if refusal == nil {
			refusal = fmt.Errorf("eval report %s of model %s@v%d: %w", short(strings.TrimPrefix(digest, "sha256:")), v.Name, v.Version, err)
		}
	}
	if refusal != nil {
		return refusal
	}
	// Not attached to a version: an eval run's report, which its run's
	// metrics name. Blobs are shared by every project; a report is read
	// only in a project one of whose runs or versions has it.
	rs, err := a.store.Runs(ctx, store.RunFilter{States: []store.RunState{store.RunSucceeded}})
	if err != nil {
		return err
	}
	for _, r := range rs {
		var m struct{ Report string }
		if json.Unmarshal(r.Metrics, &m) == nil && m.Report == digest {
			return nil
		}
	}
	return errs.NotFound("eval report %s: no model version or run of this project has it", digest)
}

// EvalReport returns a stored report with its Markdown rendering.
func (a *App) EvalReport(ctx context.Context, digest string) (api.EvalReportBody, error) {
	if err := a.readableReport(ctx, digest); err != nil {
		return api.EvalReportBody{}, err
	}
	rc, err := a.blobs.Open(ctx, digest)
	if err != nil {
		return api.EvalReportBody{}, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(rc)
	if err != nil {
		return api.EvalReportBody{}, err
	}
	rep, err := eval.ParseReport(raw)
	if err != nil {
		return api.EvalReportBody{}, errs.Invalid("blob %s is not an eval report: %v", digest, err)
	}
	return api.EvalReportBody{Digest: digest, Report: raw, Markdown: rep.Markdown()}, nil
}

func toAPIMove(m store.AliasMove) api.AliasMove {
	return api.AliasMove{Seq: m.Seq, Name: m.Name, Alias: m.Alias, From: m.From, To: m.To, Action: m.Action, Reason: m.Reason, Actor: m.Actor,
		Override: m.Override, OverrideReason: m.OverrideReason, ApprovalID: m.ApprovalID, Time: m.Time}
}

func toAPIApproval(ap store.Approval) api.Approval {
	return api.Approval{ID: ap.ID, Name: ap.Name, Alias: ap.Alias, Target: ap.Target, Reason: ap.Reason, Override: ap.Override,
		RequestedBy: ap.RequestedBy, RequestedAt: ap.RequestedAt, State: string(ap.State), DecidedBy: ap.DecidedBy, DecisionReason: ap.DecisionReason}
}
