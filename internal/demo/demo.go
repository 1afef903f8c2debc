// Package demo runs Tailor's end-to-end demo on the embedded defaults: an
// in-process server on a loopback port, driven through the public client
// exactly as the CLI drives a remote one. Every step is idempotent: a second
// run finds the same dataset version, base fingerprint, recipe version and
// run key, and reuses the earlier result.
//
// Until the SpamAssassin demo lands (issue 4), it runs the smallest real
// flow: a generated support-ticket dataset, a byte-level BPE tokenizer
// trained on it, a small randomly initialized Llama base, and a LoRA +
// classification-head run trained by the engine in a worker process.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/seedmodel"
)

// Options configure the demo.
type Options struct {
	DataDir       string
	EngineVersion string
	Out           io.Writer // progress and summary
	Logger        *slog.Logger
	// Follow shows a run's progress until it ends (the CLI's progress bar).
	Follow func(ctx context.Context, c *api.Client, runID string) error
}

// Run runs the demo.
func Run(ctx context.Context, o Options) error {
	start := time.Now()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return err
	}
	a, err := app.Open(app.Options{DataDir: filepath.Join(dataDir, "server"), EngineVersion: o.EngineVersion, Logger: o.Logger})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		a.Close()
	}()
	if err := a.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: httpapi.New(httpapi.Options{Service: a, Logger: o.Logger, Inference: a.Inference()})}
	go srv.Serve(ln)
	defer srv.Close()
	c := api.NewClient(ln.Addr().String(), nil)
	step := func(format string, args ...any) { fmt.Fprintf(o.Out, "==> "+format+"\n", args...) }

	step("generating the support-ticket dataset (deterministic, %d records)", ticketCount)
	inputs := filepath.Join(dataDir, "inputs")
	if err := os.MkdirAll(inputs, 0o755); err != nil {
		return err
	}
	dsFile := filepath.Join(inputs, "tickets.jsonl")
	text := tickets()
	if err := os.WriteFile(dsFile, []byte(text), 0o644); err != nil {
		return err
	}
	f, err := os.Open(dsFile)
	if err != nil {
		return err
	}
	ds, err := c.ImportDataset(ctx, f, api.DatasetImportOptions{Name: "tickets", Task: "classify", FileName: "tickets.jsonl"})
	f.Close()
	if err != nil {
		return err
	}
	step("dataset tickets %s: %d records, splits %v (%s)", ds.Version.ID[:12], ds.Version.Records, ds.Version.Splits, created(ds.Created))

	step("building base model tailor-seed: byte-level BPE tokenizer trained on the tickets + a random-initialized Llama")
	baseDir := filepath.Join(inputs, "tailor-seed")
	if err := writeBase(baseDir, text); err != nil {
		return err
	}
	bi, err := c.ImportBaseDir(ctx, "tailor-seed", "", baseDir)
	if err != nil {
		return err
	}
	step("base tailor-seed v%d %s: %s, %d parameters (%s)", bi.Version.Version, bi.Version.ID[:12], bi.Version.Arch, bi.Version.Params, created(bi.Created))

	ra, err := c.ApplyRecipe(ctx, "tickets-lora.yaml", []byte(recipeYAML))
	if err != nil {
		return err
	}
	step("recipe tickets-lora v%d %s (%s)", ra.Version.Version, ra.Version.ID[:12], created(ra.Created))

	r, err := c.StartRun(ctx, api.RunStart{Recipe: "tickets-lora"})
	if err != nil {
		return err
	}
	if r.Reused {
		step("run %s with the same key already succeeded: reusing its adapter", r.ID)
	} else {
		step("training run %s (key %s)", r.ID, r.Key[:12])
		if err := o.Follow(ctx, c, r.ID); err != nil {
			return err
		}
		if r, err = c.Run(ctx, r.ID); err != nil {
			return err
		}
	}
	if r.State != "succeeded" {
		return fmt.Errorf("demo run %s %s: %s", r.ID, r.State, r.Error)
	}
	mv, err := promote(ctx, c, r, step)
	if err != nil {
		return err
	}
	lin, err := c.Lineage(ctx, r.ID)
	if err != nil {
		return err
	}
	rep, err := c.Fsck(ctx)
	if err != nil {
		return err
	}
	if err := summary(o.Out, r, mv, lin, rep, time.Since(start), dataDir); err != nil {
		return err
	}
	if len(mv.Reports) > 0 {
		body, err := c.EvalReport(ctx, mv.Reports[len(mv.Reports)-1].Digest)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "\n%s", body.Markdown)
	}
	return nil
}

func created(b bool) string {
	if b {
		return "new"
	}
	return "unchanged, reused"
}

const ticketCount = 1200

// tickets generates a four-class support-ticket dataset. Classes share
// filler words and differ in a few topic words, with label noise-free text.
func tickets() string {
	topics := map[string][]string{
		"billing":   {"invoice", "charged", "refund", "payment", "billing", "price", "card", "receipt"},
		"technical": {"error", "crash", "login", "bug", "install", "slow", "update", "server"},
		"shipping":  {"delivery", "package", "tracking", "courier", "arrived", "shipped", "address", "late"},
		"account":   {"password", "email", "profile", "username", "delete", "settings", "verify", "account"},
	}
	labels := []string{"account", "billing", "shipping", "technical"}
	fillers := []string{"hello", "please", "help", "my", "the", "is", "not", "working", "since", "yesterday", "thanks", "urgent", "again", "today"}
	var b strings.Builder
	x := uint64(12345)
	next := func(n int) int {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return int(x % uint64(n))
	}
	for i := 0; i < ticketCount; i++ {
		label := labels[next(len(labels))]
		words := make([]string, 0, 10)
		for k := 0; k < 8; k++ {
			if next(3) == 0 {
				words = append(words, topics[label][next(8)])
			} else {
				words = append(words, fillers[next(len(fillers))])
			}
		}
		words = append(words, topics[label][next(8)])
		rec, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("t%04d", i), "text": strings.Join(words, " "), "label": label})
		b.Write(rec)
		b.WriteByte('\n')
	}
	return b.String()
}

func writeBase(dir, text string) error {
	tok, err := tokenizer.Train(func(yield func(string) bool) {
		for _, l := range strings.Split(text, "\n") {
			var rec struct{ Text string }
			if json.Unmarshal([]byte(l), &rec) == nil && !yield(rec.Text) {
				return
			}
		}
	}, tokenizer.TrainOptions{VocabSize: 512, MinFrequency: 2, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		return err
	}
	tj, err := tok.MarshalJSON()
	if err != nil {
		return err
	}
	cfg := engine.Config{Arch: "LlamaForCausalLM", VocabSize: tok.VocabSize(), Hidden: 128, Intermediate: 256, Layers: 2, Heads: 4,
		KVHeads: 2, HeadDim: 32, MaxPositions: 256, RopeTheta: 10000, NormEps: 1e-5, Activation: "silu", BOSTokenID: -1, EOSTokenID: -1,
		TorchDtype: "float32"}
	return seedmodel.Write(dir, cfg, tj, 2026)
}

const recipeYAML = `# The demo's customization: LoRA on attention + a classification head.
name: tickets-lora
task: classify
base: tailor-seed
data:
  dataset: tickets
method:
  kind: lora
  lora:
    rank: 8
    alpha: 16
    targets: [q_proj, k_proj, v_proj, o_proj]
  head:
    pooling: mean
train:
  epochs: 3
  batch_size: 16
  learning_rate: 0.003
  schedule: cosine
  warmup_steps: 10
  checkpoint_every: 20
  max_seq_len: 48
seed: 7
eval:
  suite:
    - metric: accuracy
      split: test
    - metric: macro_f1
      split: test
  gates:
    - metric: macro_f1
      op: ">="
      value: 0.8
    - metric: macro_f1
      not_worse_than: champion
      epsilon: 0.02
    - latency_p95_ms: 50
region: local
`

// promote makes the run's model version the champion when its gates pass
// and it is not the champion already.
func promote(ctx context.Context, c *api.Client, r api.Run, step func(string, ...any)) (api.ModelVersion, error) {
	vs, err := c.Models(ctx, "tickets-lora")
	if err != nil {
		return api.ModelVersion{}, err
	}
	var mv api.ModelVersion
	for _, v := range vs {
		if v.RunID == r.ID {
			mv = v
		}
	}
	if mv.ID == "" {
		return mv, fmt.Errorf("demo: run %s was not registered as a model version", r.ID)
	}
	switch {
	case slices.Contains(mv.Aliases, "champion"):
		step("tickets-lora v%d is already the champion", mv.Version)
	case mv.Verdict != "pass":
		step("tickets-lora v%d failed its gates (%v): not promoted", mv.Version, mv.Reports)
	default:
		if _, err := c.Promote(ctx, "tickets-lora", api.Promote{Version: fmt.Sprintf("v%d", mv.Version), Alias: "champion",
			Reason: "demo: gates passed", Actor: "demo"}); err != nil {
			return mv, err
		}
		step("promoted tickets-lora v%d to champion (gates passed)", mv.Version)
		if mv, err = c.Model(ctx, "tickets-lora", fmt.Sprintf("v%d", mv.Version)); err != nil {
			return mv, err
		}
	}
	return mv, nil
}

func summary(w io.Writer, r api.Run, mv api.ModelVersion, lin api.LineageNode, rep api.FsckReport, took time.Duration, dataDir string) error {
	var m struct {
		Steps        int     `json:"steps"`
		FinalLoss    float64 `json:"final_loss"`
		EvalAccuracy float64 `json:"eval_accuracy"`
		EvalMacroF1  float64 `json:"eval_macro_f1"`
		EvalExamples int     `json:"eval_examples"`
		TokensPerS   float64 `json:"tokens_per_s"`
		ElapsedS     float64 `json:"elapsed_s"`
	}
	if err := json.Unmarshal(r.Metrics, &m); err != nil {
		return fmt.Errorf("demo: run metrics: %w", err)
	}
	fmt.Fprintf(w, "\n%-28s %s\n", "run", r.ID)
	fmt.Fprintf(w, "%-28s %s\n", "adapter", r.Result)
	fmt.Fprintf(w, "%-28s %d\n", "steps", m.Steps)
	fmt.Fprintf(w, "%-28s %.4f\n", "final training loss", m.FinalLoss)
	fmt.Fprintf(w, "%-28s %.3f accuracy, %.3f macro-F1 on %d examples\n", "test split", m.EvalAccuracy, m.EvalMacroF1, m.EvalExamples)
	fmt.Fprintf(w, "%-28s %s v%d, verdict %s, aliases %v\n", "model version", mv.Name, mv.Version, mv.Verdict, mv.Aliases)
	fmt.Fprintf(w, "%-28s %.3f (4 balanced classes)\n", "chance accuracy", 0.25)
	fmt.Fprintf(w, "%-28s %.1f s, %.0f tokens/s\n", "training time", m.ElapsedS, m.TokensPerS)
	fmt.Fprintf(w, "%-28s %d blobs verified, %d problems\n", "fsck", rep.Blobs, len(rep.Bad)+len(rep.Missing))
	fmt.Fprintf(w, "%-28s %s\n", "data directory", dataDir)
	fmt.Fprintf(w, "%-28s %.1f s\n", "demo wall time", took.Seconds())
	fmt.Fprintln(w, "\nlineage:")
	for _, c := range lin.Children {
		name := c.Name
		if name == c.ID {
			name = ""
		}
		fmt.Fprintf(w, "  %-10s %-22s %s\n", c.Kind, name, c.ID)
	}
	return nil
}
