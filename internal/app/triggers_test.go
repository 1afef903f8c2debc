package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/store"
)

// openEnv is newEnv without the cleanup: the caller closes it (and
// cancels the context it started it with first), so a test can close one
// App and open another on the same data directory.
func openEnv(t *testing.T, dir string) (*env, func()) {
	t.Helper()
	a, err := app.Open(app.Options{DataDir: dir, EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Auth: a.Authority(auth.Options{InsecureLocal: true}), Service: a, Inference: a.Inference()}))
	return &env{t: t, app: a, client: api.NewClient(srv.URL, nil), dataDir: dir}, func() {
		srv.Close()
		a.Close()
	}
}

// start starts the App until the test ends.
func (e *env) start() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel) // runs before newEnv's Close
	if err := e.app.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// withRecipe imports a tiny base, a dataset and the recipe "once".
func (e *env) withRecipe() {
	e.t.Helper()
	ctx := context.Background()
	dir := e.t.TempDir()
	writeTinyBase(e.t, dir)
	if _, err := importBaseDir(e, "tiny", dir, nil); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.client.ImportDataset(ctx, strings.NewReader(record("a")+record("b")), api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "a.jsonl"}); err != nil {
		e.t.Fatal(err)
	}
	const recipe = "name: once\ntask: classify\nbase: tiny\ndata:\n  dataset: mail\nmethod:\n  kind: head\ntrain:\n  epochs: 1\nseed: 1\nregion: local\n"
	if _, err := e.client.ApplyRecipe(ctx, "once.yaml", []byte(recipe)); err != nil {
		e.t.Fatal(err)
	}
}

// label records n served predictions of model m from request first on,
// labels them through the API and accumulates them: one
// feedback.accumulated event with records = n.
func (e *env) label(first, n int) {
	e.t.Helper()
	ctx := context.Background()
	var ps []store.Prediction
	for i := first; i < first+n; i++ {
		ps = append(ps, store.Prediction{RequestID: fmt.Sprintf("req-%d", i), Time: time.Now(), Model: "m", VersionID: "v1",
			Variant: "primary", Label: "ham", Text: fmt.Sprintf("message %d", i)})
	}
	if err := e.app.Store().PutPredictions(ctx, ps); err != nil {
		e.t.Fatal(err)
	}
	for i := first; i < first+n; i++ {
		if _, err := e.client.PostFeedback(ctx, api.Feedback{RequestID: fmt.Sprintf("req-%d", i), Label: "spam"}); err != nil {
			e.t.Fatal(err)
		}
	}
	if v, err := e.client.AccumulateFeedback(ctx, "m"); err != nil || v == nil {
		e.t.Fatalf("accumulate: %+v, %v", v, err)
	}
}

// waitFirings polls a trigger's history until done says it is complete.
func (e *env) waitFirings(name string, done func([]api.Firing) bool) []api.Firing {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		fs, err := e.client.TriggerHistory(context.Background(), name)
		if err != nil {
			e.t.Fatal(err)
		}
		if done(fs) {
			return fs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("trigger %s: firings never got there: %+v", name, fs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// events returns the committed events of type typ.
func (e *env) events(typ string) []api.Event {
	e.t.Helper()
	var out []api.Event
	if err := e.client.Events(context.Background(), 0, false, func(ev api.Event) error {
		if ev.Type == typ {
			out = append(out, ev)
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func terminal(fs []api.Firing, n int) bool {
	if len(fs) < n {
		return false
	}
	for _, f := range fs {
		if f.State == "pending" || f.State == "running" {
			return false
		}
	}
	return true
}

// A feedback.accumulated event fires the trigger; its retrain runs (the
// worker is /bin/false, so the run fails) and the firing records the
// failure cleanly: the run, the error, the events, no promotion tried.
// A trigger whose condition the event does not meet does not fire.
func TestTriggerFeedbackRetrainFailureRecorded(t *testing.T) {
	e := newEnv(t, app.Options{})
	e.withRecipe()
	e.start()
	ctx := context.Background()
	res, err := e.client.ApplyTrigger(ctx, "retrain.yaml", []byte(
		"name: retrain-m\non: {event: feedback, model: m}\nwhen: {min_new_records: 3}\ndo:\n  - retrain: {recipe: once}\n  - promote_if_pass: {alias: champion}\n"))
	if err != nil || !res.Created || res.Version.Version != 1 {
		t.Fatalf("apply: %+v, %v", res, err)
	}
	if _, err := e.client.ApplyTrigger(ctx, "big.yaml", []byte("name: big\non: {event: feedback}\nwhen: {min_new_records: 50}\ndo:\n  - retrain: {recipe: once}\n")); err != nil {
		t.Fatal(err)
	}
	e.label(0, 3)
	fs := e.waitFirings("retrain-m", func(fs []api.Firing) bool { return terminal(fs, 1) })
	if len(fs) != 1 {
		t.Fatalf("%d firings, want 1: %+v", len(fs), fs)
	}
	f := fs[0]
	if f.State != "failed" || f.Step != 0 || len(f.Results) != 1 || f.EventType != "feedback.accumulated" {
		t.Fatalf("firing %+v", f)
	}
	r := f.Results[0]
	if r.Action != "retrain" || r.RunID == "" || !strings.Contains(r.Error, "run "+r.RunID+" failed") || !strings.Contains(f.Error, "step 0 (retrain)") {
		t.Errorf("retrain result %+v, firing error %q", r, f.Error)
	}
	run, err := e.client.Run(ctx, r.RunID)
	if err != nil || run.State != "failed" {
		t.Errorf("the firing's run: %+v, %v", run, err)
	}
	if n := len(e.events("trigger.fired")); n != 1 {
		t.Errorf("%d trigger.fired events, want 1", n)
	}
	if n := len(e.events("trigger.action.failed")); n != 1 {
		t.Errorf("%d trigger.action.failed events, want 1", n)
	}
	done := e.events("trigger.done")
	if len(done) != 1 || !strings.Contains(string(done[0].Data), `"state":"failed"`) {
		t.Errorf("trigger.done events: %+v", done)
	}
	if big, err := e.client.TriggerHistory(ctx, "big"); err != nil || len(big) != 0 {
		t.Errorf("3 records fired a trigger wanting 50: %+v, %v", big, err)
	}
	st, err := e.client.Trigger(ctx, "retrain-m")
	if err != nil || st.Firings != 1 || st.Failed != 1 || st.Last == nil || st.Event != "feedback" {
		t.Errorf("status %+v, %v", st, err)
	}
	list, err := e.client.Triggers(ctx)
	if err != nil || len(list) != 2 {
		t.Errorf("list: %d, %v", len(list), err)
	}
}

// hookServer records the bodies POSTed to it.
func hookServer(t *testing.T) (*httptest.Server, chan []byte) {
	got := make(chan []byte, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// A webhook to a loopback server is refused without allow_private and
// delivered, as JSON naming the event, with it.
func TestTriggerWebhookLoopback(t *testing.T) {
	e := newEnv(t, app.Options{})
	e.start()
	ctx := context.Background()
	srv, got := hookServer(t)
	spec := "name: hook\non: {event: feedback, model: m}\ndo:\n  - webhook: {url: \"" + srv.URL + "/tailor\"%s}\n"
	_, err := e.client.ApplyTrigger(ctx, "hook.yaml", []byte(fmt.Sprintf(spec, "")))
	var se *api.StatusError
	if !errors.As(err, &se) || se.Err.Kind != "forbidden" || !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "allow_private") {
		t.Fatalf("loopback webhook without allow_private: %v; want forbidden, naming loopback and allow_private", err)
	}
	if _, err := e.client.ApplyTrigger(ctx, "hook.yaml", []byte(fmt.Sprintf(spec, ", allow_private: true"))); err != nil {
		t.Fatal(err)
	}
	e.label(0, 2)
	var body struct {
		Trigger string `json:"trigger"`
		Event   struct {
			Seq  int64           `json:"seq"`
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		} `json:"event"`
	}
	select {
	case b := <-got:
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("webhook body %s: %v", b, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook delivered")
	}
	if body.Trigger != "hook" || body.Event.Type != "feedback.accumulated" || body.Event.Seq == 0 || !strings.Contains(string(body.Event.Data), `"records":2`) {
		t.Errorf("webhook body %+v", body)
	}
	fs := e.waitFirings("hook", func(fs []api.Firing) bool { return terminal(fs, 1) })
	if fs[0].State != "done" || fs[0].Results[0].Status != http.StatusOK || fs[0].EventSeq != body.Event.Seq {
		t.Errorf("firing %+v", fs[0])
	}
	if n := len(e.events("trigger.action.done")); n != 1 {
		t.Errorf("%d trigger.action.done events, want 1", n)
	}
}

// Within the debounce of its last firing, a trigger skips an event and
// records why; the webhook is not sent again.
func TestTriggerDebounce(t *testing.T) {
	e := newEnv(t, app.Options{})
	e.start()
	ctx := context.Background()
	srv, got := hookServer(t)
	if _, err := e.client.ApplyTrigger(ctx, "hook.yaml", []byte("name: hook\non: {event: feedback}\ndo:\n  - webhook: {url: \""+srv.URL+"\", allow_private: true}\nlimits: {debounce: 1h}\n")); err != nil {
		t.Fatal(err)
	}
	e.label(0, 2)
	e.waitFirings("hook", func(fs []api.Firing) bool { return terminal(fs, 1) })
	e.label(2, 2)
	fs := e.waitFirings("hook", func(fs []api.Firing) bool { return terminal(fs, 2) })
	if len(fs) != 2 || fs[0].State != "done" || fs[1].State != "skipped" || !strings.Contains(fs[1].Reason, "debounced") ||
		!strings.Contains(fs[1].Reason, "debounce of 1h0m0s") || len(fs[1].Results) != 0 {
		t.Fatalf("firings %+v", fs)
	}
	<-got
	select {
	case b := <-got:
		t.Fatalf("a debounced firing sent a webhook: %s", b)
	case <-time.After(200 * time.Millisecond):
	}
	if n, m := len(e.events("trigger.fired")), len(e.events("trigger.skipped")); n != 1 || m != 1 {
		t.Errorf("%d trigger.fired and %d trigger.skipped events, want 1 and 1", n, m)
	}
}

// A crash after a firing was claimed and its retrain recorded its run:
// the next server resumes the firing at that step, waits for that run
// rather than starting another, and claims the event again without a
// second trigger.fired.
func TestTriggerResumesAfterCrash(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e1, close1 := openEnv(t, dir)
	e1.withRecipe()
	applied, err := e1.client.ApplyTrigger(ctx, "retrain.yaml", []byte("name: retrain-m\non: {event: feedback}\ndo:\n  - retrain: {recipe: once}\n  - promote_if_pass: {alias: champion}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e1.label(0, 2) // not started: no trigger loop sees it
	acc := e1.events("feedback.accumulated")
	run, err := e1.client.StartRun(ctx, api.RunStart{Recipe: "once"})
	if err != nil {
		t.Fatal(err)
	}
	// A second run with the same key: a start of the recipe now would get
	// this newer one, so only a resume that waits for the recorded run
	// ends up with run.ID.
	if newer, err := e1.client.StartRun(ctx, api.RunStart{Recipe: "once", Force: true}); err != nil || newer.ID == run.ID {
		t.Fatal(newer, err)
	}
	// What the crashed server had stored: the claim with its
	// trigger.fired, and step 0's run id.
	st := e1.app.Store()
	fired, _ := json.Marshal(map[string]any{"trigger": "retrain-m", "event_seq": acc[0].Seq})
	_, created, _, err := st.ClaimFiring(ctx, store.Firing{Trigger: "retrain-m", EventSeq: acc[0].Seq, EventType: acc[0].Type,
		SpecID: applied.Version.ID, SpecVersion: 1, State: store.FiringRunning, Step: 0,
		Results: json.RawMessage(`[{"action":"retrain","run_id":"` + run.ID + `"}]`)},
		[]store.Event{{Type: "trigger.fired", Subject: "retrain-m", Data: fired}})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	close1()

	e2, close2 := openEnv(t, dir)
	ctx2, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		close2()
	}()
	if err := e2.app.Start(ctx2); err != nil {
		t.Fatal(err)
	}
	fs := e2.waitFirings("retrain-m", func(fs []api.Firing) bool { return terminal(fs, 1) })
	if len(fs) != 1 || fs[0].State != "failed" || fs[0].Results[0].RunID != run.ID || !strings.Contains(fs[0].Error, run.ID) {
		t.Fatalf("firings after the restart: %+v", fs)
	}
	runs, err := e2.client.Runs(ctx, "")
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs after the restart: %+v, %v; want the two from before, no new one", runs, err)
	}
	// The loop has handled the event again (its cursor passed it) and
	// claimed nothing new.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cur, err := e2.app.Store().TriggerCursor(ctx)
		if err == nil && cur >= acc[0].Seq {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trigger cursor %d, %v; never passed event %d", cur, err, acc[0].Seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(e2.events("trigger.fired")); n != 1 {
		t.Errorf("%d trigger.fired events, want 1", n)
	}
}
