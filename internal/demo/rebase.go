package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/corpus"
	"github.com/tailor-ml/tailor/recipes"
)

const (
	sftName           = "email-headers-sft"
	sftRecipeFile     = "email-headers-sft.yaml"
	sftDataset        = "email-headers"
	rebaseTriggerFile = "triggers/tailor-tiny-rebase.yaml"
	rebaseTriggerName = "tailor-tiny-rebase"
)

// rebase is act three: tailor-tiny v2 (pretrained by the same recipe on
// more text, adding the period-1 train split's ham bodies) arrives as a
// new version of base tailor-tiny, and the rebase trigger re-applies
// spam-lora's full recipe and the SFT example to it, compares each with
// its version on the old base, and promotes where the gates pass. The SFT
// example is first trained on the current base, so the rebase has it to
// compare with.
func rebase(ctx context.Context, c *api.Client, o Options, files map[string]string, step func(string, ...any)) error {
	step("act three: rebase onto %s", o.RebaseDir)
	if _, err := os.Stat(filepath.Join(o.RebaseDir, "config.json")); err != nil {
		return fmt.Errorf("act three needs the new base model folder (run scripts/make-tailor-tiny.sh --email, or pass --rebase-dir): %w", err)
	}
	f, err := os.Open(files[corpus.HeadersSFTFile])
	if err != nil {
		return err
	}
	res, err := c.ImportDataset(ctx, f, api.DatasetImportOptions{Name: sftDataset, Task: "sft", FileName: corpus.HeadersSFTFile})
	// #nosec G104 -- closing a file opened for reading; the import result is checked
	f.Close()
	if err != nil {
		return err
	}
	step("dataset %s %s: %d records, splits %s (%s)", sftDataset, res.Version.ID[:12], res.Version.Records, res.Version.SplitSummary(), created(res.Created))
	src, err := recipes.Read(sftRecipeFile)
	if err != nil {
		return err
	}
	ra, err := c.ApplyRecipe(ctx, sftRecipeFile, src)
	if err != nil {
		return err
	}
	step("recipe %s v%d (%s)", ra.Version.Name, ra.Version.Version, created(ra.Created))
	r, err := c.StartRun(ctx, api.RunStart{Recipe: fmt.Sprintf("%s@v%d", sftName, ra.Version.Version), Base: "tailor-tiny@v1"})
	if err != nil {
		return err
	}
	if !r.Reused {
		step("training run %s: %s on tailor-tiny v1", r.ID, sftName)
		if err := o.Follow(ctx, c, r.ID); err != nil {
			return err
		}
	}
	if r, err = waitRun(ctx, c, r.ID); err != nil {
		return err
	}
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		vs, err := c.Models(ctx, sftName)
		for _, v := range vs {
			if v.RunID == r.ID && len(v.Reports) > 0 {
				step("%s v%d on tailor-tiny v1: gates %s%s", sftName, v.Version, v.Verdict, failedGates(v))
				return true, err
			}
		}
		return false, err
	}); err != nil {
		return fmt.Errorf("%s: run %s registered no version with a report: %w", sftName, r.ID, err)
	}

	tsrc, err := recipes.Specs.ReadFile(rebaseTriggerFile)
	if err != nil {
		return err
	}
	ta, err := c.ApplyTrigger(ctx, rebaseTriggerFile, tsrc)
	if err != nil {
		return err
	}
	step("trigger %s v%d (%s): on a new tailor-tiny version, rebase spam-lora and %s, promote where the gates pass", ta.Version.Name, ta.Version.Version, created(ta.Created), sftName)
	bi, err := c.ImportBaseDir(ctx, "tailor-tiny", "", o.RebaseDir)
	if err != nil {
		return err
	}
	step("base tailor-tiny v%d %s from %s (%s)", bi.Version.Version, bi.Version.ID[:12], o.RebaseDir, created(bi.Created))
	var firing api.Firing
	seen := map[string]bool{}
	if err := waitFor(ctx, 3*time.Hour, func() (bool, error) {
		fs, err := c.TriggerHistory(ctx, rebaseTriggerName)
		if err != nil || len(fs) == 0 {
			return false, err
		}
		firing = fs[len(fs)-1]
		for _, res := range firing.Results {
			if res.RunID != "" && !seen[res.RunID] {
				seen[res.RunID] = true
				step("rebase run %s started", res.RunID)
			}
		}
		return firing.State == "done" || firing.State == "failed", nil
	}); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "\nrebase firing (event %d): %s\n", firing.EventSeq, firing.State)
	for _, res := range firing.Results {
		fmt.Fprintf(o.Out, "  %s\n", res.Line())
	}
	for _, res := range firing.Results {
		if res.Compare == nil {
			continue
		}
		fmt.Fprintf(o.Out, "\n%s: ", res.Model)
		res.Compare.WriteTable(o.Out)
		if res.Model == modelName {
			if err := versusBaselines(ctx, c, o, res); err != nil {
				return err
			}
		}
	}
	if firing.State == "failed" {
		return fmt.Errorf("the rebase firing failed: %s", firing.Error)
	}
	return nil
}

// versusBaselines prints the rebased spam filter against the TF-IDF and
// majority baselines of its own report (same test split).
func versusBaselines(ctx context.Context, c *api.Client, o Options, res api.ActionResult) error {
	mv, err := c.Model(ctx, res.Model, fmt.Sprintf("v%d", res.Version))
	if err != nil || len(mv.Reports) == 0 {
		return fmt.Errorf("%s v%d: no report (%v)", res.Model, res.Version, err)
	}
	rep, all, err := reportAll(ctx, c, mv.Reports[0].Digest)
	if err != nil {
		return fmt.Errorf("%s v%d: %w", res.Model, res.Version, err)
	}
	acc, _ := all.Value("accuracy")
	f1, _ := all.Value("macro_f1")
	fmt.Fprintf(o.Out, "\n%s v%d on %s against the baselines (period-1 test split, n=%d)\n", res.Model, res.Version, res.Base, all.N)
	fmt.Fprintf(o.Out, "%-30s %9s %9s\n", "model", "macro-F1", "accuracy")
	fmt.Fprintf(o.Out, "%-30s %9.4f %9.4f\n", fmt.Sprintf("%s v%d", res.Model, res.Version), f1, acc)
	for _, b := range rep.Baselines {
		beats := "beats it on both"
		if f1 <= b.Metrics.MacroF1 || acc <= b.Metrics.Accuracy {
			beats = "does not beat it on both"
		}
		fmt.Fprintf(o.Out, "%-30s %9.4f %9.4f   %s\n", "baseline "+b.Name, b.Metrics.MacroF1, b.Metrics.Accuracy, beats)
	}
	return nil
}

// failedGates is ": " and the failed gates, or "" when none failed.
func failedGates(v api.ModelVersion) string {
	for _, r := range v.Reports {
		if len(r.Failed) > 0 {
			return fmt.Sprintf(" (%v)", r.Failed)
		}
	}
	return ""
}
