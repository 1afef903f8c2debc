package registry

import (
	"context"
	"fmt"
	"regexp"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

var (
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	idRE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// checkVersion validates the caller's fields of a version to register.
func checkVersion(v store.ModelVersion) error {
	if err := CheckName(v.Name); err != nil {
		return err
	}
	what := fmt.Sprintf("register model %q", v.Name)
	if !idRE.MatchString(v.BaseID) {
		return errs.Invalid("%s: base_id %q: want the base version's 64-hex fingerprint (see `tailor base list`)", what, v.BaseID)
	}
	if v.Adapter != "" && !digestRE.MatchString(v.Adapter) {
		return errs.Invalid("%s: adapter %q: want a blob digest sha256:<64 hex>, or none to serve the base alone", what, v.Adapter)
	}
	if v.Task == "" {
		return errs.Invalid("%s: task is empty: want the task the model was trained for (classify, sft)", what)
	}
	for k := range v.Labels {
		if k == "" {
			return errs.Invalid("%s: labels: a label has an empty key", what)
		}
	}
	if v.ID != "" && v.ID != ContentID(v.BaseID, v.Adapter) {
		return errs.Invalid("%s: id %q is not the content id of base %s and adapter %q; leave id empty", what, v.ID, v.BaseID, v.Adapter)
	}
	return nil
}

// versionEvent is the data of model.version.registered. The version number
// is assigned inside the store's transaction, so the event names the
// version by its content id (the event subject) and name.
type versionEvent struct {
	Name    string `json:"name"`
	BaseID  string `json:"base_id"`
	Adapter string `json:"adapter,omitempty"`
	RunID   string `json:"run_id,omitempty"`
	Task    string `json:"task"`
}

// Register stores v as the next version of v.Name. ID, Version and
// CreatedAt are filled in; registering the same base and adapter under the
// same name again returns the existing version with created false.
func (r *Registry) Register(ctx context.Context, v store.ModelVersion) (Version, bool, error) {
	if err := checkVersion(v); err != nil {
		return Version{}, false, err
	}
	v.ID = ContentID(v.BaseID, v.Adapter)
	v.Version = 0
	v.CreatedAt = r.now()
	existing, err := r.Version(ctx, v.Name, v.ID)
	if err == nil {
		return existing, false, nil
	}
	if errs.Kind(err) != "not_found" {
		return Version{}, false, err
	}
	ev := r.event(EventVersionRegistered, v.ID, versionEvent{Name: v.Name, BaseID: v.BaseID, Adapter: v.Adapter,
		RunID: v.RunID, Task: v.Task})
	stored, evs, err := r.opts.Store.PutModelVersion(ctx, v, []store.Event{ev})
	if errs.Kind(err) == "conflict" { // registered concurrently
		existing, gerr := r.Version(ctx, v.Name, v.ID)
		return existing, false, gerr
	}
	if err != nil {
		return Version{}, false, err
	}
	r.publish(evs)
	r.opts.Logger.Info("model version registered", "model", stored.Name, "version", stored.Version, "id", stored.ID,
		"adapter", stored.Adapter)
	return Version{ModelVersion: stored, Reports: []store.EvalReport{}}, true, nil
}

// reportEvent is the data of model.report.attached.
type reportEvent struct {
	Name    string        `json:"name"`
	Version int           `json:"version"`
	Digest  string        `json:"digest"`
	Dataset string        `json:"dataset_id"`
	Split   string        `json:"split"`
	Verdict store.Verdict `json:"verdict"`
}

// AttachReport attaches an eval report to the model version with content id
// versionID (rep.ModelVersionID is set to it). Attaching the same report
// digest twice is a conflict.
func (r *Registry) AttachReport(ctx context.Context, versionID string, rep store.EvalReport) (store.EvalReport, error) {
	what := fmt.Sprintf("attach report %q to model version %q", rep.Digest, versionID)
	v, err := r.opts.Store.ModelVersionByID(ctx, versionID)
	if err != nil {
		return store.EvalReport{}, fmt.Errorf("attach report: %w", err)
	}
	if !digestRE.MatchString(rep.Digest) {
		return store.EvalReport{}, errs.Invalid("%s: digest: want a blob digest sha256:<64 hex>", what)
	}
	if rep.Verdict != store.VerdictPass && rep.Verdict != store.VerdictFail {
		return store.EvalReport{}, errs.Invalid("%s: verdict %q: want pass or fail", what, rep.Verdict)
	}
	if rep.DatasetID == "" {
		return store.EvalReport{}, errs.Invalid("%s: dataset_id is empty: name the eval dataset version", what)
	}
	if rep.Split == "" {
		return store.EvalReport{}, errs.Invalid("%s: split is empty: name the split the report scored (e.g. test)", what)
	}
	rep.ModelVersionID = versionID
	rep.CreatedAt = r.now()
	ev := r.event(EventReportAttached, versionID, reportEvent{Name: v.Name, Version: v.Version, Digest: rep.Digest,
		Dataset: rep.DatasetID, Split: rep.Split, Verdict: rep.Verdict})
	stored, evs, err := r.opts.Store.PutEvalReport(ctx, rep, []store.Event{ev})
	if errs.Kind(err) == "conflict" {
		return store.EvalReport{}, errs.Conflict("%s: already attached; a report is attached once", what)
	}
	if err != nil {
		return store.EvalReport{}, err
	}
	r.publish(evs)
	r.opts.Logger.Info("eval report attached", "model", v.Name, "version", v.Version, "digest", rep.Digest, "verdict", rep.Verdict)
	return stored, nil
}
