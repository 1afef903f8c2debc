package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/mail"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/monitor"
	"github.com/tailor-ml/tailor/internal/trigger"
	"github.com/tailor-ml/tailor/recipes"
)

// Act two's fixed inputs.
const (
	monitorName     = "spam-watch"
	monitorFile     = "monitors/spam-watch.yaml"
	incrementalFile = "spam-lora-incremental.yaml"
	triggerFile     = "triggers/spam-retrain.yaml"
	triggerName     = "spam-retrain"
	feedbackLag     = 50 // requests between an answer and its label
)

// DriftOptions shape act two.
type DriftOptions struct {
	// LabelShare is the share of period-2 requests whose true label
	// arrives later through /v1/feedback (default 0.3).
	LabelShare float64
	// Seed picks the labelled requests.
	Seed uint64
	// Wait bounds how long act two waits for the loop to end (default 90 min).
	Wait time.Duration
}

func (o DriftOptions) withDefaults() DriftOptions {
	if o.LabelShare <= 0 {
		o.LabelShare = 0.3
	}
	if o.Seed == 0 {
		o.Seed = 20021010
	}
	if o.Wait <= 0 {
		o.Wait = 90 * time.Minute
	}
	return o
}

// mailRecord is one stored corpus record as the records endpoint streams it.
type mailRecord struct {
	ID       string         `json:"id"`
	Text     string         `json:"text"`
	Label    string         `json:"label"`
	Metadata map[string]any `json:"metadata"`
	date     time.Time
}

// served is one answered request of the replayed traffic.
type served struct {
	index    int
	period   int
	request  string
	version  string
	label    string
	truth    string
	labelled bool
}

// drift is act two: the champion is watched while period-2 mail replaces
// period-1 mail as traffic, late labels arrive, and the loop (monitor →
// feedback dataset → trigger → incremental retrain → gates → promotion →
// hot swap) runs with no human step. It prints the timeline and writes a
// plot of the monitored statistics.
func drift(ctx context.Context, c *api.Client, o Options, dataDir string, step func(string, ...any)) error {
	d := o.Drift.withDefaults()
	before, err := c.Model(ctx, modelName, "champion")
	if err != nil {
		return fmt.Errorf("act two needs act one's champion: %w", err)
	}
	step("act two: continuous adaptation of %s v%d (champion)", modelName, before.Version)
	if m, err := c.Monitor(ctx, monitorName); err == nil && m.Windows > 0 {
		step("act two ran on this data dir already (monitor %s has %d windows, %d drifted); start from a fresh --data-dir to replay it", monitorName, m.Windows, m.Drifted)
		return nil
	}
	evs, err := events(ctx, c, 0)
	if err != nil {
		return err
	}
	var since int64
	if len(evs) > 0 {
		since = evs[len(evs)-1].Seq
	}
	for _, f := range []struct{ file, what string }{{incrementalFile, "recipe"}} {
		src, err := recipes.Read(f.file)
		if err != nil {
			return err
		}
		ra, err := c.ApplyRecipe(ctx, f.file, src)
		if err != nil {
			return err
		}
		step("%s %s v%d (%s)", f.what, ra.Version.Name, ra.Version.Version, created(ra.Created))
	}
	src, err := recipes.Specs.ReadFile(monitorFile)
	if err != nil {
		return err
	}
	ma, err := c.ApplyMonitor(ctx, monitorFile, src)
	if err != nil {
		return err
	}
	step("monitor %s v%d (%s): count windows of %d requests", ma.Version.Name, ma.Version.Version, created(ma.Created), 100)
	if err := applyTrigger(ctx, c, step); err != nil {
		return err
	}
	step("waiting for the monitor's reference profile (a profile run over the training data)")
	if err := waitFor(ctx, 30*time.Minute, func() (bool, error) {
		m, err := c.Monitor(ctx, monitorName)
		return m.Profile != "" && m.VersionID == before.ID, err
	}); err != nil {
		return fmt.Errorf("monitor %s reference: %w", monitorName, err)
	}
	startWindows, err := c.MonitorWindows(ctx, monitorName, -1)
	if err != nil {
		return err
	}

	p1val, err := mailRecords(ctx, c, "spam", "validation")
	if err != nil {
		return err
	}
	p1test, err := mailRecords(ctx, c, "spam", "test")
	if err != nil {
		return err
	}
	p1 := append(p1val, p1test...)
	p2train, err := mailRecords(ctx, c, "spam-period2", "train")
	if err != nil {
		return err
	}
	p2val, err := mailRecords(ctx, c, "spam-period2", "validation")
	if err != nil {
		return err
	}
	p2 := append(p2train, p2val...)
	byDate := func(a, b mailRecord) int {
		if c := a.date.Compare(b.date); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	}
	slices.SortStableFunc(p1, byDate)
	slices.SortStableFunc(p2, byDate)
	step("traffic: %d period-1 validation and test messages, then %d period-2 messages in Date order; %.0f %% of period-2 labels arrive %d requests late",
		len(p1), len(p2), 100*d.LabelShare, feedbackLag)

	// #nosec G404 -- seeded for reproducible demo traffic; not a secret
	rng := rand.New(rand.NewPCG(d.Seed, 0x7a))
	var log []served
	var pending []served
	var pool []answer // the period-1 answers, to measure false alarms on
	start := time.Now()
	sendLabels := func(upTo int) error {
		for len(pending) > 0 && pending[0].index <= upTo {
			s := pending[0]
			pending = pending[1:]
			if _, err := c.PostFeedback(ctx, api.Feedback{RequestID: s.request, Label: s.truth}); err != nil {
				return fmt.Errorf("feedback for request %d: %w", s.index, err)
			}
		}
		return nil
	}
	for period, recs := range [][]mailRecord{p1, p2} {
		for _, r := range recs {
			res, err := c.Classify(ctx, api.ClassifyRequest{Model: modelName, Input: []string{r.Text}})
			if err != nil {
				return fmt.Errorf("classify request %d (%s): %w", len(log), r.ID, err)
			}
			s := served{index: len(log), period: period + 1, request: res.RequestID, version: res.ModelVersion, label: res.Data[0].Label, truth: r.Label}
			if period == 0 {
				pool = append(pool, answer{r.Text, r.Label, res.Data[0].Probabilities})
			}
			if period == 1 && rng.Float64() < d.LabelShare {
				s.labelled = true
				pending = append(pending, s)
			}
			log = append(log, s)
			if err := sendLabels(s.index - feedbackLag); err != nil {
				return err
			}
		}
	}
	if err := sendLabels(len(log)); err != nil {
		return err
	}
	step("replayed %d requests in %s", len(log), time.Since(start).Round(time.Second))
	if err := falseAlarms(ctx, c, src, pool, d.Seed, step); err != nil {
		return err
	}

	step("waiting for the loop (up to %s): drift → labels → retrain → gates → promotion", d.Wait)
	after, err := waitLoop(ctx, c, before, d.Wait)
	if err != nil {
		return err
	}
	evs, err = events(ctx, c, since)
	if err != nil {
		return err
	}
	ws, err := c.MonitorWindows(ctx, monitorName, -1)
	if err != nil {
		return err
	}
	ws = ws[len(startWindows):]
	timeline(o.Out, evs, ws, log, len(p1), start)
	if after.ID == before.ID {
		return refused(ctx, c, o, before, log, ws, len(p1), filepath.Join(dataDir, "drift.svg"), step)
	}
	return compare(ctx, c, o, before, after, log, ws, len(p1), filepath.Join(dataDir, "drift.svg"), step)
}

// events reads the event log after seq.
func events(ctx context.Context, c *api.Client, after int64) ([]api.Event, error) {
	var out []api.Event
	err := c.Events(ctx, after, false, func(e api.Event) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// answer is one classification with its input and true label.
type answer struct {
	text, truth string
	probs       map[string]float64
}

// falseAlarms resamples 500 windows of the monitor's window size from the
// period-1 answers (unshifted traffic) and reports the share that alarmed
// under the monitor's own detector settings.
func falseAlarms(ctx context.Context, c *api.Client, spec []byte, answers []answer, seed uint64, step func(string, ...any)) error {
	s, err := monitor.ParseSpec(monitorFile, spec)
	if err != nil {
		return err
	}
	raw, err := c.MonitorProfile(ctx, monitorName)
	if err != nil {
		return err
	}
	p, err := monitor.DecodeProfile(raw)
	if err != nil {
		return err
	}
	pool := make([]monitor.Request, len(answers))
	for i, a := range answers {
		pool[i] = monitor.Request{Text: a.text, Label: a.truth, Probs: make([]float64, len(p.Labels))}
		for k, l := range p.Labels {
			pool[i].Probs[k] = a.probs[l]
		}
	}
	rep, err := monitor.MeasureAlarms(p, pool, monitor.FalseAlarmOptions{Windows: 500, WindowSize: s.Window.Size, Seed: seed, Detect: s.Options()})
	if err != nil {
		return err
	}
	step("false alarms on unshifted traffic: %d of %d windows of %d resampled from the %d period-1 answers (%.2f %%); by detector: %s",
		rep.Alarmed, rep.Windows, rep.WindowSize, len(pool), 100*rep.Fraction, counts(rep.ByDetector))
	return nil
}

// mailRecords reads one split of a dataset's latest version, with each
// record's Date header parsed.
func mailRecords(ctx context.Context, c *api.Client, name, split string) ([]mailRecord, error) {
	var buf bytes.Buffer
	if err := c.DatasetRecords(ctx, name, "latest", split, &buf); err != nil {
		return nil, err
	}
	var out []mailRecord
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var r mailRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s@latest %s record %d: %w", name, split, line, err)
		}
		if s, ok := r.Metadata["date"].(string); ok {
			r.date, _ = mail.ParseDate(s) // undated mail sorts first
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// waitFor polls ok every 500 ms until it holds, fails, or limit passes.
func waitFor(ctx context.Context, limit time.Duration, ok func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		done, err := ok()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// settled reports whether the trigger has finished acting: it has fired,
// and none of its firings is pending or running.
func settled(fs []api.Firing) bool {
	fired := false
	for _, f := range fs {
		switch f.State {
		case "pending", "running":
			return false
		case "done", "failed":
			fired = true
		}
	}
	return fired
}

// waitLoop waits until the champion moves off before, or the trigger has
// settled for three polls in a row (every label is sent by then, so no
// firing can come), or limit passes, and returns the champion then.
func waitLoop(ctx context.Context, c *api.Client, before api.ModelVersion, limit time.Duration) (api.ModelVersion, error) {
	now := before
	calm := 0
	err := waitFor(ctx, limit, func() (bool, error) {
		var err error
		if now, err = c.Model(ctx, modelName, "champion"); err != nil || now.ID != before.ID {
			return true, err
		}
		fs, err := c.TriggerHistory(ctx, triggerName)
		if err != nil {
			return false, err
		}
		if !settled(fs) {
			calm = 0
			return false, nil
		}
		calm++
		return calm >= 3, nil
	})
	if err != nil && !errors.Is(err, ctx.Err()) && now.ID == before.ID {
		return now, nil // the caller reports that nothing was promoted
	}
	return now, err
}

// timeline prints what the loop did, in order, with the request index each
// monitor window ended at.
func timeline(w io.Writer, evs []api.Event, ws []api.MonitorWindow, log []served, switchAt int, start time.Time) {
	fmt.Fprintf(w, "\ntimeline (t from the first request; period 2 starts at request %d)\n", switchAt)
	ends := windowEnds(ws)
	// The first drifted window with period-2 traffic in it is the
	// detection; drifted windows before the switch are false alarms.
	firstDrift := -1
	var before []string
	for i, wn := range ws {
		if !wn.Drifted {
			continue
		}
		if ends[i] <= switchAt {
			before = append(before, fmt.Sprint(i))
			continue
		}
		firstDrift = i
		break
	}
	if firstDrift >= 0 {
		k := ends[firstDrift]
		fmt.Fprintf(w, "  first drift event after the switch: window %d, at request %d (%d requests after the switch)\n", firstDrift, k, k-switchAt)
	} else {
		fmt.Fprintf(w, "  no window with period-2 traffic drifted\n")
	}
	if len(before) > 0 {
		fmt.Fprintf(w, "  drifted before the switch (false alarms on period-1 traffic in Date order): window %s\n", strings.Join(before, ", "))
	}
	for _, e := range evs {
		var d map[string]any
		_ = json.Unmarshal(e.Data, &d)
		var what string
		switch e.Type {
		case "monitor.drift.detected":
			what = fmt.Sprintf("drift detected in window %v (severity %.2f)", d["window"], num(d["severity"]))
		case "feedback.accumulated":
			what = fmt.Sprintf("feedback dataset %v: +%v labels, %v in all", d["dataset"], d["records"], d["total_records"])
		case "run.created":
			what = fmt.Sprintf("run %s created", e.Subject)
		case "run.state.changed":
			what = fmt.Sprintf("run %s %v → %v", e.Subject, d["from"], d["to"])
		case "model.version.registered":
			what = fmt.Sprintf("model %v: new version from run %v", d["name"], d["run_id"])
		case "model.report.attached":
			what = fmt.Sprintf("model %v v%v: eval report on %v, verdict %v", d["name"], num(d["version"]), d["split"], d["verdict"])
		case "model.alias.moved":
			what = fmt.Sprintf("%v@%v moved %v → %v (%v)", d["name"], d["alias"], d["from"], d["to"], d["reason"])
		case "monitor.reference.changed":
			what = "monitor reference changed to the new champion"
		default:
			if !strings.HasPrefix(e.Type, "trigger.") {
				continue
			}
			what = fmt.Sprintf("%s %s", e.Type, e.Subject)
		}
		fmt.Fprintf(w, "  %8s  %s\n", e.Time.Sub(start).Round(time.Second), what)
	}
	var swapped string
	for i := 1; i < len(log); i++ {
		if log[i].version != log[i-1].version {
			swapped = fmt.Sprintf("  hot swap: request %d answered by %s, request %d by %s\n", i-1, log[i-1].version, i, log[i].version)
			break
		}
	}
	if swapped != "" {
		fmt.Fprint(w, swapped)
	}
}

// windowEnds gives, per window, the request count at its end.
func windowEnds(ws []api.MonitorWindow) []int {
	ends := make([]int, len(ws))
	n := 0
	for i, w := range ws {
		n += int(w.Count)
		ends[i] = n
	}
	return ends
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// compare evaluates the old and the new champion on both periods' test
// splits, prints accuracy per window before and after, and writes the plot.
func compare(ctx context.Context, c *api.Client, o Options, before, after api.ModelVersion, log []served, ws []api.MonitorWindow, switchAt int, plotPath string, step func(string, ...any)) error {
	type cell struct{ acc, f1 float64 }
	results := map[string]cell{}
	for _, mv := range []api.ModelVersion{before, after} {
		for _, ds := range []string{"spam", "spam-period2"} {
			r, err := c.StartEval(ctx, api.EvalStart{Model: fmt.Sprintf("%s@v%d", modelName, mv.Version), Dataset: ds, Split: "test"})
			if err != nil {
				return err
			}
			if r, err = waitRun(ctx, c, r.ID); err != nil {
				return err
			}
			m := mv
			acc, f1, err := evalMetrics(ctx, c, r)
			if err != nil {
				return fmt.Errorf("%s v%d on %s: %w", modelName, m.Version, ds, err)
			}
			results[fmt.Sprintf("v%d/%s", mv.Version, ds)] = cell{acc, f1}
		}
	}
	fmt.Fprintf(o.Out, "\ntest splits          %-22s %-22s\n", fmt.Sprintf("v%d (before)", before.Version), fmt.Sprintf("v%d (after)", after.Version))
	for _, ds := range []string{"spam", "spam-period2"} {
		b, a := results[fmt.Sprintf("v%d/%s", before.Version, ds)], results[fmt.Sprintf("v%d/%s", after.Version, ds)]
		fmt.Fprintf(o.Out, "  %-18s acc %.3f  F1 %.3f    acc %.3f  F1 %.3f\n", ds, b.acc, b.f1, a.acc, a.f1)
	}
	title := fmt.Sprintf("%s: period-1 then period-2 mail; v%d before, v%d after the loop", modelName, before.Version, after.Version)
	return servedReport(o, log, ws, switchAt, plotPath, title, step)
}

// servedReport prints the accuracy per window of the served traffic and
// writes the plot of the monitored statistics and accuracy.
func servedReport(o Options, log []served, ws []api.MonitorWindow, switchAt int, plotPath, title string, step func(string, ...any)) error {
	fmt.Fprintf(o.Out, "\naccuracy per window of served traffic (true labels)\n")
	for _, row := range windowAccuracy(log, 100) {
		fmt.Fprintf(o.Out, "  requests %4d–%4d  period %d  %-24s accuracy %.3f\n", row.from, row.to-1, row.period, row.versions, row.acc)
	}
	panels, markers := driftPlot(log, ws, switchAt)
	if err := writeSVG(plotPath, title, len(log), panels, markers); err != nil {
		return err
	}
	step("plot of the monitored statistics and accuracy over requests: %s", plotPath)
	return nil
}

// waitRun waits for a run to end and returns it; a run that did not
// succeed is an error.
func waitRun(ctx context.Context, c *api.Client, id string) (api.Run, error) {
	var r api.Run
	err := waitFor(ctx, time.Hour, func() (bool, error) {
		var err error
		r, err = c.Run(ctx, id)
		return r.State == "succeeded" || r.State == "failed" || r.State == "canceled", err
	})
	if err == nil && r.State != "succeeded" {
		err = fmt.Errorf("run %s %s: %s", r.ID, r.State, r.Error)
	}
	return r, err
}

// evalMetrics reads the accuracy and macro-F1 of an eval run's report.
func evalMetrics(ctx context.Context, c *api.Client, r api.Run) (acc, f1 float64, err error) {
	var out struct {
		Report string `json:"report"`
	}
	if err := json.Unmarshal(r.Metrics, &out); err != nil || out.Report == "" {
		return 0, 0, fmt.Errorf("eval run %s has no report (%v)", r.ID, err)
	}
	_, all, err := reportAll(ctx, c, out.Report)
	if err != nil {
		return 0, 0, err
	}
	acc, _ = all.Value("accuracy")
	f1, _ = all.Value("macro_f1")
	return acc, f1, nil
}

// reportAll reads a stored eval report and its all-records slice.
func reportAll(ctx context.Context, c *api.Client, digest string) (*eval.Report, eval.SliceMetrics, error) {
	body, err := c.EvalReport(ctx, digest)
	if err != nil {
		return nil, eval.SliceMetrics{}, err
	}
	var rep eval.Report
	if err := json.Unmarshal(body.Report, &rep); err != nil {
		return nil, eval.SliceMetrics{}, fmt.Errorf("report %s: %w", digest, err)
	}
	all, ok := rep.Slice("all")
	if !ok {
		return nil, eval.SliceMetrics{}, fmt.Errorf("report %s has no slice \"all\"", digest)
	}
	return &rep, all, nil
}

// windowRow is the true accuracy of one window of served requests.
type windowRow struct {
	from, to int // request indices [from, to)
	period   int // the period of its last request
	versions string
	acc      float64
}

// windowAccuracy cuts the served traffic into windows of size requests and
// scores each against the true labels.
func windowAccuracy(log []served, size int) []windowRow {
	var rows []windowRow
	for from := 0; from < len(log); from += size {
		to := min(from+size, len(log))
		row := windowRow{from: from, to: to, period: log[to-1].period}
		var vs []string
		right := 0
		for _, s := range log[from:to] {
			if s.label == s.truth {
				right++
			}
			if !slices.Contains(vs, s.version) {
				vs = append(vs, s.version)
			}
		}
		row.versions = strings.Join(vs, "+")
		row.acc = float64(right) / float64(to-from)
		rows = append(rows, row)
	}
	return rows
}

// applyTrigger stores the trigger that closes the loop: each accumulation
// of enough new labels (the spec says how many) retrains spam-lora
// incrementally and promotes the result to champion only if its gates pass.
func applyTrigger(ctx context.Context, c *api.Client, step func(string, ...any)) error {
	src, err := recipes.Specs.ReadFile(triggerFile)
	if err != nil {
		return err
	}
	spec, err := trigger.ParseSpec(triggerFile, src)
	if err != nil {
		return err
	}
	ta, err := c.ApplyTrigger(ctx, triggerFile, src)
	if err != nil {
		return err
	}
	step("trigger %s v%d (%s): on %d new labels, retrain incrementally, promote if the gates pass", ta.Version.Name, ta.Version.Version,
		created(ta.Created), spec.When.MinNewRecords)
	return nil
}

// refused ends act two when the loop settled without a promotion: the
// gates kept every candidate out of production. It prints why, the
// accuracy per window and the plot, and is not an error: refusing a worse
// model is the loop working.
func refused(ctx context.Context, c *api.Client, o Options, champ api.ModelVersion, log []served, ws []api.MonitorWindow, switchAt int, plotPath string, step func(string, ...any)) error {
	fs, err := c.TriggerHistory(ctx, triggerName)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "\nthe loop settled without a promotion: %s v%d stays champion; what each firing did:\n", modelName, champ.Version)
	for _, f := range fs {
		fmt.Fprintf(o.Out, "  event %d (%s): %s\n", f.EventSeq, f.State, firingOutcome(f))
	}
	return servedReport(o, log, ws, switchAt, plotPath, fmt.Sprintf("%s: period-1 then period-2 mail; no candidate passed its gates", modelName), step)
}

// firingOutcome is one line of what a firing's actions did.
func firingOutcome(f api.Firing) string {
	if f.State == "skipped" {
		return f.Reason
	}
	var parts []string
	for _, r := range f.Results {
		parts = append(parts, r.Action+": "+r.Outcome)
	}
	if f.Error != "" {
		parts = append(parts, "error: "+f.Error)
	}
	return strings.Join(parts, "; ")
}
