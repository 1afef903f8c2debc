package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/data"
)

// loopRecipe is the incremental version of the promo recipe: it starts from
// the champion, trains on the accumulated feedback plus a replay of the
// frozen dataset, and its forgetting gate is loose (tiny models: the test
// is about durability, not quality).
const loopRecipe = `name: promo
task: classify
base: tiny
data:
  dataset: promo-feedback
method:
  kind: lora
  lora:
    rank: 2
    alpha: 4
    targets: [q_proj, v_proj]
train:
  max_steps: 8
  batch_size: 4
  learning_rate: 0.003
  checkpoint_every: 2
  max_seq_len: 24
seed: 11
eval:
  suite:
    - metric: accuracy
  gates:
    - metric: accuracy
      op: ">="
      value: 0
incremental:
  from: champion
  replay:
    dataset: frozen
    ratio: 1.0
  forgetting:
    dataset: frozen
    split: test
    metric: accuracy
    epsilon: 1.0
region: local
`

const loopMonitor = `name: promo-watch
model: promo
alias: champion
window:
  kind: count
  size: 50
feedback:
  dataset: promo-feedback
  every: 10
`

const loopTrigger = `name: promo-retrain
on:
  event: feedback
  model: promo
when:
  min_new_records: 5
do:
  - retrain: {recipe: promo}
  - promote_if_pass: {alias: champion}
`

// TestLoopSurvivesKill9 runs the continuous-adaptation loop through the
// real binary — served answers, late labels, feedback accumulation, a
// trigger, an incremental retrain, promotion — and kills the server three
// times at failpoints (TAILOR_FAILPOINTS), each SIGKILL on itself: after
// the feedback was appended but before its labels were marked; at the
// retrain's first checkpoint; after the retrain action finished but before
// its result was stored. After the restarts no label is lost or doubled,
// the feedback event fired the trigger once, one run was trained (resumed,
// not repeated), and the champion moved once, to the retrained version.
func TestLoopSurvivesKill9(t *testing.T) {
	dataDir, w := template(t)
	srv := startServer(t, dataDir, "TAILOR_FAILPOINTS=feedback.imported")
	ctx := context.Background()
	c := api.NewClient("http://"+srv.Addr(), nil)
	before, err := c.AliasHistory(ctx, w.Model, w.Alias)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		fn   func() error
	}{
		{"monitor", func() error { _, err := c.ApplyMonitor(ctx, "promo-watch.yaml", []byte(loopMonitor)); return err }},
		{"recipe", func() error { _, err := c.ApplyRecipe(ctx, "promo.yaml", []byte(loopRecipe)); return err }},
		{"trigger", func() error { _, err := c.ApplyTrigger(ctx, "promo-retrain.yaml", []byte(loopTrigger)); return err }},
	} {
		if err := f.fn(); err != nil {
			t.Fatalf("apply %s: %v", f.name, err)
		}
	}

	// Ten answers labelled late; the tenth label makes the accumulation,
	// which dies between the import and the marking. Two of the ten fall in
	// the validation split (a fixed function of the request id), so the
	// retrained version gets an eval report to be gated on.
	type answer struct{ id, label string }
	var val, other []answer
	for i := 0; len(val) < 2 || len(other) < 8; i++ {
		if i == 200 {
			t.Fatalf("200 answers gave %d in the validation split", len(val))
		}
		text, label := fmt.Sprintf("free cash offer about item %d", 500+i), "spam"
		if i%2 == 0 {
			text, label = fmt.Sprintf("meeting notes project about item %d", 500+i), "ham"
		}
		id, err := classify(ctx, "http://"+srv.Addr(), w.Model, text)
		if err != nil {
			t.Fatalf("classify %d: %v", i, err)
		}
		if data.SplitOf(id, data.DefaultSplit()) == data.SplitValidation {
			val = append(val, answer{id, label})
		} else {
			other = append(other, answer{id, label})
		}
	}
	labels := map[string]string{}
	var last api.Feedback
	died := false
	for _, a := range append(val[:2], other[:8]...) {
		labels[a.id] = a.label
		last = api.Feedback{RequestID: a.id, Label: a.label, Actor: "loop-test"}
		if _, err := c.PostFeedback(ctx, last); err != nil {
			died = true
			t.Logf("label %d: %v (the server died at the failpoint)", len(labels), err)
			break
		}
	}
	if !died {
		t.Fatal("the accumulation did not reach the failpoint feedback.imported")
	}
	if _, err := srv.restartAfterCrash(time.Minute, "TAILOR_FAILPOINTS=run.checkpointed"); err != nil {
		t.Fatal(err)
	}
	// The client retries the label whose answer it lost; it is stored once,
	// and the accumulation it makes skips the records the dead one appended.
	if _, err := c.PostFeedback(ctx, last); err != nil {
		t.Fatalf("retry the last label: %v", err)
	}
	if _, err := srv.restartAfterCrash(3*time.Minute, "TAILOR_FAILPOINTS=trigger.acted"); err != nil {
		t.Fatalf("waiting for the retrain's checkpoint: %v", err)
	}
	if _, err := srv.restartAfterCrash(3 * time.Minute); err != nil {
		t.Fatalf("waiting for the retrain action: %v", err)
	}

	// The firing resumes and ends.
	var firings []api.Firing
	deadline := time.Now().Add(3 * time.Minute)
	for {
		firings, err = c.TriggerHistory(ctx, "promo-retrain")
		if err != nil {
			t.Fatal(err)
		}
		if len(firings) > 0 && (firings[0].State == "done" || firings[0].State == "failed") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(firings) != 1 || firings[0].State != "done" {
		t.Fatalf("firings %+v, want one, done", firings)
	}
	f := firings[0]
	if len(f.Results) != 2 || f.Results[0].RunID == "" || f.Results[1].VersionID == "" {
		t.Fatalf("firing results %+v", f.Results)
	}
	t.Logf("firing: %+v", f.Results)

	// No label lost or doubled: the feedback dataset holds each once.
	recs, err := records(ctx, c, "promo-feedback", "latest")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		if _, dup := got[r.ID]; dup {
			t.Errorf("feedback record %s twice", r.ID)
		}
		got[r.ID] = r.Label
	}
	for id, label := range labels {
		if got[id] != label {
			t.Errorf("label of %s: dataset has %q, sent %q", id, got[id], label)
		}
	}
	if len(got) != len(labels) {
		t.Errorf("feedback dataset has %d records, %d labels were sent", len(got), len(labels))
	}

	// One feedback event, one firing of it, one retrain run (resumed after
	// the kill at its checkpoint), one alias move, to the retrained version.
	var accumulated []api.Event
	if err := c.Events(ctx, 0, false, func(e api.Event) error {
		if e.Type == "feedback.accumulated" {
			accumulated = append(accumulated, e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(accumulated) != 1 || accumulated[0].Seq != f.EventSeq {
		t.Errorf("feedback.accumulated events %d (firing's event %d), want exactly the one the firing acted on", len(accumulated), f.EventSeq)
	}
	run, err := c.Run(ctx, f.Results[0].RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != "succeeded" || run.Attempt < 2 {
		t.Errorf("retrain run %s: %s, attempt %d; want succeeded after a resume (attempt ≥ 2)", run.ID, run.State, run.Attempt)
	}
	runs, err := c.Runs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	kind := func(r api.Run) string {
		var in struct{ Kind string }
		_ = json.Unmarshal(r.Inputs, &in)
		return in.Kind
	}
	n := 0
	for _, r := range runs {
		if r.RecipeID == run.RecipeID && kind(r) == kind(run) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d training runs of the incremental recipe, want 1", n)
	}
	after, err := c.AliasHistory(ctx, w.Model, w.Alias)
	if err != nil {
		t.Fatal(err)
	}
	moves := after[len(before):]
	if len(moves) != 1 || moves[0].To != f.Results[1].VersionID {
		t.Errorf("champion moves since the setup: %+v; want one, to %s", moves, f.Results[1].VersionID)
	}
	if !f.Results[1].Promoted && !strings.Contains(f.Results[1].Outcome, "already") {
		t.Errorf("promote_if_pass outcome %q", f.Results[1].Outcome)
	}
	if srv.Kills != 3 {
		t.Errorf("%d crashes, want 3", srv.Kills)
	}
}

// classify asks model for text's label and returns the request id.
func classify(ctx context.Context, base, model, text string) (string, error) {
	body, _ := json.Marshal(map[string]string{"model": model, "input": text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/classify", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", res.StatusCode, b)
	}
	return res.Header.Get("X-Tailor-Request-Id"), nil
}
