package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
)

// TestFullFineTuneIsAModelVersion trains an SFT recipe with method kind
// full in a real worker process. Its weights are stored as a version of a
// base named after the recipe, the model version is that base alone (no
// adapter), the base's event says it is a fine-tune (so base triggers skip
// it), and an eval run of the version generates with those weights and
// names the base it was trained on.
func TestFullFineTuneIsAModelVersion(t *testing.T) {
	a, ctx := openWithWorkers(t)
	b1 := importSeedBase(t, a, "tiny", 5)
	var b strings.Builder
	for i := range 80 {
		fmt.Fprintf(&b, "{\"id\":\"s%d\",\"prompt\":\"the fox %d\",\"completion\":\"dog %d\"}\n", i, i%7, i%7)
	}
	if _, err := a.ImportDataset(ctx, strings.NewReader(b.String()), api.DatasetImportOptions{Name: "pairs", Task: "sft", FileName: "pairs.jsonl"}); err != nil {
		t.Fatal(err)
	}
	const recipe = "name: chat\ntask: sft\nbase: tiny\ndata: {dataset: pairs}\nmethod: {kind: full}\n" +
		"train: {max_steps: 6, batch_size: 8, learning_rate: 0.003, max_seq_len: 32}\nseed: 3\nregion: local\n" +
		"eval: {suite: [{metric: json_valid, split: test}, {metric: exact_match, split: test}]}\n"
	if _, err := a.ApplyRecipe(ctx, "chat.yaml", []byte(recipe)); err != nil {
		t.Fatal(err)
	}
	r, err := a.StartRun(ctx, api.RunStart{Recipe: "chat"})
	if err != nil {
		t.Fatal(err)
	}
	v := waitModelVersion(t, a, "chat", r.ID)
	if v.Adapter != "" || v.BaseID == b1 || v.Task != "sft" {
		t.Fatalf("version %+v: want no adapter, a base of its own (not %s) and task sft", v, b1)
	}
	bases, err := a.Bases(ctx, "chat")
	if err != nil || len(bases) != 1 || bases[0].ID != v.BaseID {
		t.Fatalf("bases named chat: %+v, %v; want one, %s", bases, err, v.BaseID)
	}
	evs, err := a.store.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Name       string `json:"name"`
		Run        string `json:"run"`
		FineTuneOf string `json:"fine_tune_of"`
	}
	for _, ev := range evs {
		if ev.Type == "base.version.created" && ev.Subject == v.BaseID {
			if err := json.Unmarshal(ev.Data, &created); err != nil {
				t.Fatal(err)
			}
		}
	}
	if created.Name != "chat" || created.Run != r.ID || created.FineTuneOf != "tiny@v1" {
		t.Fatalf("base.version.created of %s: %+v; want name chat, run %s, fine_tune_of tiny@v1", v.BaseID, created, r.ID)
	}

	er, err := a.StartEval(ctx, api.EvalStart{Model: "chat@v1", Dataset: "pairs"})
	if err != nil {
		t.Fatal(err)
	}
	ops := &triggerOps{a: a}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	info, err := ops.WaitRun(wctx, er.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "succeeded" || info.Model != "chat" || info.Version != 1 || info.Base != "tiny@v1" {
		t.Fatalf("eval run %+v: want succeeded, chat v1, trained on tiny@v1", info)
	}
	if _, ok := info.Metrics["exact_match"]; !ok {
		t.Fatalf("eval run metrics %v: no exact_match", info.Metrics)
	}
}
