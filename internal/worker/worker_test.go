package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/blob/blobstore"
	"github.com/tailor-ml/tailor/internal/blob/local"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/internal/seedmodel"
)

// setup stores a dataset and a tiny base in a blob store and returns a spec
// for recipe src.
func setup(t *testing.T, task, records, src string) run.Spec {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	blobs, err := local.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := data.Import(ctx, strings.NewReader(records), data.ImportOptions{Name: "d", Task: task, FileName: "d.jsonl"}, blobs)
	if err != nil {
		t.Fatal(err)
	}
	md := putJSON(t, blobs, m)
	if task == "text" {
		r, err := recipe.Parse("r.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		norm, _ := r.Normalize()
		return run.Spec{RunID: "run-t", Key: "k", Recipe: norm, Blob: fileURL(t, blobs.Dir()), WorkDir: filepath.Join(dir, "work"),
			Inputs: run.Inputs{Dataset: run.InputRef{Name: "d", ID: m.ID, Manifest: md}}}
	}
	tok, err := tokenizer.Train(func(yield func(string) bool) { yield(records) }, tokenizer.TrainOptions{VocabSize: 300, MinFrequency: 1, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	tj, _ := tok.MarshalJSON()
	baseDir := filepath.Join(dir, "base")
	cfg := engine.Config{Arch: "LlamaForCausalLM", VocabSize: tok.VocabSize(), Hidden: 32, Intermediate: 64, Layers: 1, Heads: 2, KVHeads: 1,
		HeadDim: 16, MaxPositions: 128, RopeTheta: 10000, NormEps: 1e-5, Activation: "silu", BOSTokenID: -1, EOSTokenID: -1, TorchDtype: "float32"}
	if err := seedmodel.Write(baseDir, cfg, tj, 3); err != nil {
		t.Fatal(err)
	}
	fs, err := basemodel.NewDirSource(baseDir)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	bm, err := basemodel.Import(ctx, fs, basemodel.ImportOptions{Name: "b"}, blobs)
	if err != nil {
		t.Fatal(err)
	}
	bd := putJSON(t, blobs, bm)
	r, err := recipe.Parse("r.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	norm, _ := r.Normalize()
	return run.Spec{RunID: "run-t", Key: "k", Recipe: norm, Blob: fileURL(t, blobs.Dir()), WorkDir: filepath.Join(dir, "work"),
		Inputs: run.Inputs{Dataset: run.InputRef{Name: "d", ID: m.ID, Manifest: md}, Base: run.InputRef{Name: "b", ID: bm.Fingerprint, Manifest: bd}}}
}

// fileURL is the address of the local store in dir.
func fileURL(t *testing.T, dir string) string {
	t.Helper()
	u, err := blobstore.FileURL(dir)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// openBlobs opens the store a spec names, as the worker does.
func openBlobs(t *testing.T, spec run.Spec) blob.Store {
	t.Helper()
	s, err := blobstore.Open(context.Background(), spec.Blob, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func putJSON(t *testing.T, s blob.Store, v any) string {
	t.Helper()
	b, _ := json.Marshal(v)
	d, _, err := s.Put(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// runWorker runs a worker in-process and returns its messages.
func runWorker(t *testing.T, spec run.Spec) []run.Message {
	t.Helper()
	line, _ := json.Marshal(spec)
	var out bytes.Buffer
	// A stdin that stays open for the worker's life, like the server's pipe.
	stdin := &blockingReader{first: append(line, '\n'), done: make(chan struct{})}
	defer close(stdin.done)
	if err := Train(context.Background(), stdin, &out, Options{}); err != nil {
		t.Fatalf("worker: %v", err)
	}
	var msgs []run.Message
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var m run.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

type blockingReader struct {
	first []byte
	done  chan struct{}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	<-b.done
	return 0, fmt.Errorf("closed")
}

func result(t *testing.T, msgs []run.Message) run.Message {
	t.Helper()
	for _, m := range msgs {
		if m.Type == run.MsgResult {
			return m
		}
	}
	t.Fatalf("no result among %d messages", len(msgs))
	return run.Message{}
}

func TestSFTTrainsDeterministically(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 80; i++ {
		fmt.Fprintf(&b, "{\"id\":\"s%d\",\"prompt\":\"From: user%d@example.com Subject: hi %d\",\"completion\":\"{\\\"sender\\\":\\\"user%d@example.com\\\"}\"}\n", i, i%7, i, i%7)
	}
	src := `name: headers-sft
task: sft
base: b
data:
  dataset: d
method:
  kind: lora
  lora:
    rank: 4
train:
  max_steps: 12
  batch_size: 4
  learning_rate: 0.01
  checkpoint_every: 4
seed: 5
region: local
`
	spec := setup(t, "sft", b.String(), src)
	first := runWorker(t, spec)
	res := result(t, first)
	var metrics map[string]float64
	json.Unmarshal(res.Metrics, &metrics)
	var gen struct {
		Report   string  `json:"report"`
		Examples int     `json:"eval_examples"`
		JSON     float64 `json:"eval_json_valid"`
	}
	json.Unmarshal(res.Metrics, &gen)
	if gen.Report == "" || gen.Examples == 0 {
		t.Fatalf("SFT run was not evaluated by generation: %s", res.Metrics)
	}
	if res.Step != 12 || metrics["steps"] != 12 || !(metrics["final_loss"] > 0) {
		t.Fatalf("result %+v metrics %v", res, metrics)
	}
	ckpts := 0
	for _, m := range first {
		if m.Type == run.MsgCheckpoint {
			ckpts++
		}
	}
	if ckpts != 3 {
		t.Fatalf("%d checkpoints, want 3 (steps 4, 8, 12)", ckpts)
	}
	// FLOPs grow with every checkpoint, and the result's are
	// (4·params + 2·trainable) × the tokens trained on: an even whole
	// multiple of them.
	var flops float64
	for _, m := range first {
		if m.Type == run.MsgCheckpoint {
			if m.FLOPs <= flops {
				t.Fatalf("checkpoint at step %d counts %g FLOPs after %g", m.Step, m.FLOPs, flops)
			}
			flops = m.FLOPs
		}
	}
	if perToken := res.FLOPs / metrics["tokens"]; res.FLOPs != flops || perToken != math.Trunc(perToken) || int64(perToken)%2 != 0 {
		t.Fatalf("result counts %g FLOPs over %g tokens (last checkpoint %g)", res.FLOPs, metrics["tokens"], flops)
	}
	spec.RunID = "run-t2"
	if again := result(t, runWorker(t, spec)); again.Digest != res.Digest {
		t.Fatalf("same spec gave adapters %s and %s", res.Digest, again.Digest)
	}
	// Killed right after its last checkpoint, the run resumes with no step
	// left: it must still succeed, with the same adapter (it once failed
	// encoding a NaN final loss).
	var last string
	for _, m := range first {
		if m.Type == run.MsgCheckpoint {
			last = m.Digest
		}
	}
	spec.RunID, spec.Resume = "run-t3", last
	resumed := result(t, runWorker(t, spec))
	if resumed.Digest != res.Digest || resumed.Step != 12 {
		t.Fatalf("resumed at the last checkpoint: step %d adapter %s, want step 12 and %s", resumed.Step, resumed.Digest, res.Digest)
	}
}

func TestPretrainFromScratch(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "{\"id\":\"p%d\",\"text\":\"Call me Ishmael. Some years ago, never mind how long precisely, number %d.\"}\n", i, i)
	}
	src := `name: tiny-scratch
task: pretrain
model:
  arch: LlamaForCausalLM
  vocab_size: 320
  hidden_size: 32
  intermediate_size: 64
  num_hidden_layers: 1
  num_attention_heads: 2
  num_key_value_heads: 1
  max_position_embeddings: 64
tokenizer:
  train:
    vocab_size: 300
    min_frequency: 1
data:
  dataset: d
method:
  kind: full
train:
  max_steps: 8
  batch_size: 4
  learning_rate: 0.003
  max_seq_len: 32
seed: 1
region: local
`
	spec := setup(t, "text", b.String(), src)
	spec.Inputs.Base = run.InputRef{}
	res := result(t, runWorker(t, spec))
	var metrics map[string]float64
	json.Unmarshal(res.Metrics, &metrics)
	if res.Step != 8 || !(metrics["eval_perplexity"] > 1) || metrics["params"] == 0 {
		t.Fatalf("result %+v metrics %v", res, metrics)
	}
	blobs := openBlobs(t, spec)
	rc, err := blobs.Open(context.Background(), res.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var bm basemodel.Manifest
	json.NewDecoder(rc).Decode(&bm)
	rc.Close()
	if bm.Arch != "LlamaForCausalLM" || bm.Fingerprint == "" || len(bm.Files) != 3 || bm.Config.VocabSize != 320 {
		t.Fatalf("trained model manifest %+v", bm)
	}
	spec.RunID = "run-t2"
	if again := result(t, runWorker(t, spec)); again.Digest != res.Digest {
		t.Fatalf("same pretrain spec gave %s and %s", res.Digest, again.Digest)
	}
}

// TestClassifyReport: long texts are cut to the model's length for training
// and evaluation alike, and the run ends with a stored eval report whose
// failing gate is named.
func TestClassifyReport(t *testing.T) {
	// Two classes told apart by a few topic words among shared fillers;
	// every text is longer than the model's 128 positions.
	topics := [][]string{{"meeting", "notes", "project", "lunch"}, {"prize", "winner", "cash", "offer"}}
	fillers := []string{"the", "a", "please", "today", "about", "my", "again", "now", "here", "and"}
	var b strings.Builder
	x := uint64(7)
	next := func(n int) int { x = x*6364136223846793005 + 1442695040888963407; return int((x >> 33) % uint64(n)) }
	for i := 0; i < 400; i++ {
		c := i % 2
		var words []string
		for k := 0; k < 160; k++ {
			if k < 12 && next(4) == 0 {
				words = append(words, topics[c][next(4)])
			} else {
				words = append(words, fillers[next(len(fillers))])
			}
		}
		words[next(12)] = topics[c][next(4)]
		fmt.Fprintf(&b, "{\"id\":\"c%d\",\"text\":%q,\"label\":%q,\"metadata\":{\"group\":\"g%d\"}}\n", i, strings.Join(words, " "), []string{"ham", "spam"}[c], i%3)
	}
	src := `name: long-cls
task: classify
base: b
data:
  dataset: d
method:
  kind: lora
  lora:
    rank: 4
train:
  max_steps: 60
  batch_size: 16
  learning_rate: 0.01
  max_seq_len: 64
seed: 2
eval:
  suite:
    - metric: macro_f1
      split: test
  gates:
    - metric: macro_f1
      op: ">"
      value: 0.5
    - latency_p95_ms: 0.00001
region: local
`
	spec := setup(t, "classify", b.String(), src) // max positions 128 < 150+ tokens
	res := result(t, runWorker(t, spec))
	var m struct {
		Accuracy    float64  `json:"eval_accuracy"`
		Report      string   `json:"report"`
		Verdict     string   `json:"verdict"`
		FailedGates []string `json:"failed_gates"`
		EvalSplit   string   `json:"eval_split"`
	}
	json.Unmarshal(res.Metrics, &m)
	// The training-quality check: LoRA + head on a 1-layer random-init
	// Llama learns the two-word task to at least 95% test accuracy.
	if m.Accuracy < 0.95 {
		t.Errorf("test accuracy %.3f < 0.95", m.Accuracy)
	}
	if m.Report == "" || m.Verdict != "fail" || len(m.FailedGates) != 1 || !strings.Contains(m.FailedGates[0], "p95_ms") || m.EvalSplit != "test" {
		t.Fatalf("metrics %s", res.Metrics)
	}
	blobs := openBlobs(t, spec)
	rc, err := blobs.Open(context.Background(), m.Report)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	rep, err := eval.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rep.Slice("group=g1"); !ok || len(rep.Baselines) == 0 {
		t.Fatalf("report lacks the metadata slice or baselines: %s", raw)
	}
}
