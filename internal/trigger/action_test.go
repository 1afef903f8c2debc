package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

// fakeOps records calls; runs end as states says (default succeeded) and
// a succeeded training run registers version 3 of its recipe's model.
type fakeOps struct {
	calls      []string
	states     map[string]string
	gatesFail  bool
	noChampion bool // evaluating name@champion is not found
	webhooks   [][]byte
	next       int
	evals      map[string]string // eval run id → model
}

func (f *fakeOps) StartRun(_ context.Context, recipe, base string) (RunInfo, error) {
	f.next++
	id := fmt.Sprintf("run-%d", f.next)
	on := ""
	if base != "" {
		on = " on " + base
	}
	f.calls = append(f.calls, "start "+recipe+on+" "+id)
	return RunInfo{ID: id, State: "queued"}, nil
}

func (f *fakeOps) StartEval(_ context.Context, model, dataset, split string) (RunInfo, error) {
	if f.noChampion && strings.HasSuffix(model, "@champion") {
		return RunInfo{}, errs.NotFound("model %s: no such alias", model)
	}
	f.next++
	id := fmt.Sprintf("eval-%d", f.next)
	f.calls = append(f.calls, fmt.Sprintf("eval %s %s %s %s", model, dataset, split, id))
	if f.evals == nil {
		f.evals = map[string]string{}
	}
	f.evals[id] = model
	return RunInfo{ID: id, State: "queued"}, nil
}

func (f *fakeOps) WaitRun(_ context.Context, id string) (RunInfo, error) {
	f.calls = append(f.calls, "wait "+id)
	st := f.states[id]
	if st == "" {
		st = "succeeded"
	}
	ri := RunInfo{ID: id, State: st}
	if st == "failed" {
		ri.Error = "worker exited 1"
	} else {
		ri.Model, ri.Version, ri.VersionID = "spam-lora", 3, "vid3"
		ri.Dataset, ri.Base = "spam@d1", "tailor-tiny@v2"
	}
	// An eval of the champion: version 2 on the old base.
	if m := f.evals[id]; strings.HasSuffix(m, "@champion") {
		ri.Version, ri.VersionID, ri.Base = 2, "vid2", "tailor-tiny@v1"
		ri.Metrics = map[string]float64{"accuracy": 0.95, "macro_f1": 0.90}
	} else if m != "" {
		ri.Metrics = map[string]float64{"accuracy": 0.96, "macro_f1": 0.92}
	}
	return ri, nil
}

func (f *fakeOps) Promote(_ context.Context, model string, version int, alias, reason string) (string, error) {
	f.calls = append(f.calls, fmt.Sprintf("promote %s v%d %s", model, version, alias))
	if f.gatesFail {
		return "", errs.Forbidden("promote %s v%d to %q: refused by gates: accuracy 0.6 < 0.9", model, version, alias)
	}
	return "", nil
}

func (f *fakeOps) Rollback(_ context.Context, model, alias, reason string) (string, error) {
	f.calls = append(f.calls, "rollback "+model+" "+alias)
	return "vid2", nil
}

func (f *fakeOps) Webhook(_ context.Context, url string, allow bool, body []byte) (int, error) {
	f.calls = append(f.calls, "webhook "+url)
	f.webhooks = append(f.webhooks, body)
	return 200, nil
}

// runAll drives a firing the way the app does: every step's result is
// saved before the next, partial results as they come.
func runAll(t *testing.T, ops Ops, spec *Spec, f Firing, from int) ([]Result, error) {
	t.Helper()
	for i := from; i < len(spec.Do); i++ {
		r, err := Do(context.Background(), ops, spec, f, i, func(r Result) error {
			if i < len(f.Results) {
				f.Results[i] = r
			} else {
				f.Results = append(f.Results, r)
			}
			return nil
		})
		if i < len(f.Results) {
			f.Results[i] = r
		} else {
			f.Results = append(f.Results, r)
		}
		if err != nil {
			return f.Results, err
		}
	}
	return f.Results, nil
}

var feedbackEvent = Event{Seq: 42, Type: "feedback.accumulated", Subject: "dv1", Data: json.RawMessage(`{"model":"spam-lora","records":120}`)}

func TestDoRetrainPromote(t *testing.T) {
	spec := mustParse(t, string(fixture(t, "feedback.good.yaml")))
	ops := &fakeOps{}
	rs, err := runAll(t, ops, spec, Firing{Trigger: spec.Name, Event: feedbackEvent}, 0)
	must(t, err)
	want := []string{"start spam-lora-incremental run-1", "wait run-1", "promote spam-lora v3 champion"}
	if strings.Join(ops.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %q, want %q", ops.calls, want)
	}
	if rs[0].RunID != "run-1" || rs[0].Model != "spam-lora" || rs[0].Version != 3 || !strings.Contains(rs[0].Outcome, "succeeded") {
		t.Errorf("retrain result %+v", rs[0])
	}
	if !rs[1].Promoted || rs[1].Alias != "champion" || rs[1].VersionID != "vid3" || rs[1].Error != "" {
		t.Errorf("promote result %+v", rs[1])
	}
}

func TestDoGatesFailedIsAnOutcome(t *testing.T) {
	spec := mustParse(t, string(fixture(t, "feedback.good.yaml")))
	ops := &fakeOps{gatesFail: true}
	rs, err := runAll(t, ops, spec, Firing{Trigger: spec.Name, Event: feedbackEvent}, 0)
	if err != nil {
		t.Fatalf("gates failing is an outcome, not a step failure: %v", err)
	}
	if rs[1].Promoted || !strings.HasPrefix(rs[1].Outcome, "gates failed") {
		t.Errorf("promote result %+v", rs[1])
	}
}

func TestDoRunFailed(t *testing.T) {
	spec := mustParse(t, string(fixture(t, "feedback.good.yaml")))
	ops := &fakeOps{states: map[string]string{"run-1": "failed"}}
	rs, err := runAll(t, ops, spec, Firing{Trigger: spec.Name, Event: feedbackEvent}, 0)
	if err == nil || len(rs) != 1 || !strings.Contains(rs[0].Error, "run run-1 failed: worker exited 1") {
		t.Fatalf("results %+v, err %v; want the retrain to fail naming the run", rs, err)
	}
	for _, c := range ops.calls {
		if strings.HasPrefix(c, "promote") {
			t.Fatal("promoted after a failed retrain")
		}
	}
}

// A firing resumed after a crash whose retrain had recorded its run waits
// for that run rather than starting another.
func TestDoResumesRecordedRun(t *testing.T) {
	spec := mustParse(t, string(fixture(t, "drift.good.yaml")))
	ops := &fakeOps{next: 10}
	ev := Event{Seq: 9, Type: "monitor.drift.detected", Data: json.RawMessage(`{"model":"spam-lora","severity":1}`)}
	rs, err := runAll(t, ops, spec, Firing{Trigger: spec.Name, Event: ev, Results: []Result{{Action: ActRetrain, RunID: "run-7"}}}, 0)
	must(t, err)
	want := []string{"wait run-7", "eval spam-lora@v3 spam-holdout validation eval-11", "wait eval-11", "promote spam-lora v3 champion",
		"webhook https://hooks.example.com/tailor"}
	if strings.Join(ops.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls\n %q\nwant\n %q", ops.calls, want)
	}
	var body WebhookBody
	must(t, json.Unmarshal(ops.webhooks[0], &body))
	if body.Trigger != "spam-drift" || body.Event.Seq != 9 || len(body.Results) != 3 || !body.Results[2].Promoted {
		t.Errorf("webhook body %s", ops.webhooks[0])
	}
	if rs[3].Status != 200 {
		t.Errorf("webhook result %+v", rs[3])
	}
}

func TestDoRollbackDefaultsToEventModel(t *testing.T) {
	spec := mustParse(t, "name: r\non: {event: drift}\ndo:\n  - rollback: {alias: champion}\n")
	ops := &fakeOps{}
	rs, err := runAll(t, ops, spec, Firing{Trigger: "r", Event: Event{Type: "monitor.drift.detected", Data: json.RawMessage(`{"model":"spam-lora"}`)}}, 0)
	must(t, err)
	if ops.calls[0] != "rollback spam-lora champion" || rs[0].VersionID != "vid2" {
		t.Errorf("calls %q results %+v", ops.calls, rs)
	}
	_, err = runAll(t, ops, spec, Firing{Trigger: "r", Event: Event{Type: "monitor.drift.detected"}}, 0)
	if !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("rollback with no model anywhere: %v", err)
	}
}

const rebaseSpec = `name: tailor-tiny-rebase
on:
  event: base
  base: tailor-tiny
do:
  - rebase:
      recipe: spam-lora@v1
  - promote_if_pass:
      alias: champion
`

var baseEvent = Event{Seq: 7, Type: "base.version.created", Subject: "bv2", Data: json.RawMessage(`{"name":"tailor-tiny","id":"bv2"}`)}

func TestDoRebase(t *testing.T) {
	spec := mustParse(t, rebaseSpec)
	ops := &fakeOps{}
	rs, err := runAll(t, ops, spec, Firing{Trigger: spec.Name, Event: baseEvent}, 0)
	must(t, err)
	want := []string{
		"start spam-lora@v1 on tailor-tiny@bv2 run-1", "wait run-1",
		"eval spam-lora@champion spam@d1 test eval-2", "wait eval-2",
		"eval spam-lora@v3 spam@d1 test eval-3", "wait eval-3",
		"promote spam-lora v3 champion",
	}
	if strings.Join(ops.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls\n%q\nwant\n%q", ops.calls, want)
	}
	r := rs[0]
	c := r.Compare
	if r.Model != "spam-lora" || r.Version != 3 || r.Base != "tailor-tiny@v2" || c == nil {
		t.Fatalf("rebase result %+v", r)
	}
	if c.Alias != "champion" || c.Dataset != "spam@d1" || c.Split != "test" ||
		c.Old.Version != 2 || c.Old.Base != "tailor-tiny@v1" || c.Old.RunID != "eval-2" || c.Old.Metrics["macro_f1"] != 0.90 ||
		c.New.Version != 3 || c.New.Base != "tailor-tiny@v2" || c.New.RunID != "eval-3" || c.New.Metrics["macro_f1"] != 0.92 {
		t.Errorf("comparison %+v", c)
	}
	for _, w := range []string{"v2 on tailor-tiny@v1 vs v3 on tailor-tiny@v2", "accuracy 0.9500 → 0.9600", "macro_f1 0.9000 → 0.9200"} {
		if !strings.Contains(r.Outcome, w) {
			t.Errorf("outcome %q lacks %q", r.Outcome, w)
		}
	}
	if !rs[1].Promoted || rs[1].Version != 3 {
		t.Errorf("promote after rebase %+v", rs[1])
	}
}

// A firing that crashed after the old side's eval run was recorded
// resumes: it waits for the recorded runs and starts only the new side's.
func TestDoRebaseResumes(t *testing.T) {
	spec := mustParse(t, rebaseSpec)
	ops := &fakeOps{next: 2, evals: map[string]string{"eval-2": "spam-lora@champion"}}
	partial := Result{Action: ActRebase, RunID: "run-1", Compare: &Comparison{Alias: "champion", Dataset: "spam@d1", Split: "test", Old: Side{RunID: "eval-2"}}}
	rs, err := runAll(t, ops, spec, Firing{Trigger: spec.Name, Event: baseEvent, Results: []Result{partial}}, 0)
	must(t, err)
	want := []string{"wait run-1", "wait eval-2", "eval spam-lora@v3 spam@d1 test eval-3", "wait eval-3", "promote spam-lora v3 champion"}
	if strings.Join(ops.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("calls\n%q\nwant\n%q", ops.calls, want)
	}
	if rs[0].Compare.Old.Metrics["macro_f1"] != 0.90 || rs[0].Compare.New.Metrics["macro_f1"] != 0.92 {
		t.Errorf("comparison %+v", rs[0].Compare)
	}
}

// With no version behind the alias the version before the new one is
// compared instead, and the promotion still goes to the gates.
func TestDoRebaseNoChampion(t *testing.T) {
	spec := mustParse(t, rebaseSpec)
	ops := &fakeOps{noChampion: true}
	rs, err := runAll(t, ops, spec, Firing{Trigger: spec.Name, Event: baseEvent}, 0)
	must(t, err)
	if c := rs[0].Compare; c == nil || c.Alias != "v2" || c.Old.RunID != "eval-2" || !strings.Contains(rs[0].Outcome, "no spam-lora@champion, compared with spam-lora@v2") || !rs[1].Promoted {
		t.Fatalf("results %+v", rs)
	}
	if want := "eval spam-lora@v2 spam@d1 test eval-2"; ops.calls[2] != want {
		t.Fatalf("calls %q, want %q third", ops.calls, want)
	}
}

// A rebase action that names its base runs there, whatever the event.
func TestDoRebaseNamedBase(t *testing.T) {
	spec := mustParse(t, strings.Replace(strings.Replace(rebaseSpec, "event: base\n  base: tailor-tiny", "event: feedback", 1),
		"recipe: spam-lora@v1", "recipe: spam-lora@v1\n      base: tailor-tiny@v2\n      compare: prod", 1))
	ops := &fakeOps{}
	_, err := runAll(t, ops, spec, Firing{Trigger: spec.Name, Event: feedbackEvent}, 0)
	must(t, err)
	if ops.calls[0] != "start spam-lora@v1 on tailor-tiny@v2 run-1" || ops.calls[2] != "eval spam-lora@prod spam@d1 test eval-2" {
		t.Fatalf("calls %q", ops.calls)
	}
}
