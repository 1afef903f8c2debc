package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/ident"
	"github.com/tailor-ml/tailor/internal/monitor"
	"github.com/tailor-ml/tailor/internal/store"
)

// PostFeedback records the true label of one served request, once per
// request id, and accumulates the pending labels of its model into a new
// version of the feedback dataset when the model's monitor policy says so.
func (a *App) PostFeedback(ctx context.Context, f api.Feedback) (api.FeedbackResult, error) {
	if strings.TrimSpace(f.RequestID) == "" {
		return api.FeedbackResult{}, errs.Invalid("feedback: request_id is required: the X-Tailor-Request-Id the answer carried")
	}
	if err := ident.Label("label", f.Label); err != nil {
		return api.FeedbackResult{}, err
	}
	fb := store.Feedback{RequestID: f.RequestID, Label: f.Label, Completion: f.Completion, Actor: actorOf(ctx), Time: a.opts.Now().UTC()}
	ev := a.event("feedback.received", f.RequestID, map[string]any{"request_id": f.RequestID, "label": f.Label})
	got, created, evs, err := a.store.PutFeedback(ctx, fb, []store.Event{ev})
	if errors.Is(err, errs.ErrNotFound) {
		// The answer may still sit in the recorder's queue.
		a.recorder.flush(ctx)
		got, created, evs, err = a.store.PutFeedback(ctx, fb, []store.Event{ev})
	}
	if err != nil {
		return api.FeedbackResult{}, err
	}
	a.publish(evs)
	out := api.FeedbackResult{RequestID: got.RequestID, Model: got.Model, Label: got.Label, Completion: got.Completion, Created: created}
	spec, err := a.monitorOf(ctx, got.Model)
	if err != nil || spec == nil {
		return out, err
	}
	st, err := a.store.FeedbackStats(ctx, got.Model)
	if err != nil {
		return out, err
	}
	if st.Pending-st.NoText >= int64(spec.Feedback.Every) {
		v, err := a.AccumulateFeedback(ctx, got.Model)
		if err != nil {
			return out, fmt.Errorf("feedback recorded; accumulating it failed: %w", err)
		}
		out.Accumulated = v
	}
	return out, nil
}

// monitorOf returns the (defaulted) spec of the first monitor watching
// model, or nil.
func (a *App) monitorOf(ctx context.Context, model string) (*monitor.Spec, error) {
	specs, err := a.monitorSpecs(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range specs {
		if s.spec.Model == model {
			d := s.spec.WithDefaults()
			return &d, nil
		}
	}
	return nil, nil
}

// feedbackRecord is one accumulated label as a dataset record: its id is
// the request id, so the dataset's lineage leads back to the requests.
type feedbackRecord struct {
	ID          string `json:"id"`
	Text        string `json:"text"`
	Label       string `json:"label"`
	ServedBy    string `json:"served_by"`
	RequestedAt string `json:"requested_at"`
}

// AccumulateFeedback appends every pending label of model (with its kept
// input) to the model's feedback dataset as a new version, and marks them.
// It is safe to repeat: after a crash between the import and the marking,
// the next call appends with SkipExisting, so the records already in the
// dataset are skipped (the version is unchanged) and then marked.
func (a *App) AccumulateFeedback(ctx context.Context, model string) (*api.DatasetVersion, error) {
	spec, err := a.monitorOf(ctx, model)
	if err != nil {
		return nil, err
	}
	dataset := model + "-feedback"
	if spec != nil {
		dataset = spec.Feedback.Dataset
	}
	unlock, err := a.feedback.lock(ctx, model)
	if err != nil {
		return nil, err
	}
	defer unlock()
	pending, err := a.store.PendingFeedback(ctx, model, 0)
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	ids := make([]string, len(pending))
	for i, l := range pending {
		ids[i] = l.Feedback.RequestID
		if l.Feedback.Label == "" {
			return nil, errs.Invalid("feedback for %s has a completion; accumulating completions into an sft dataset is not supported yet", l.Feedback.RequestID)
		}
		rec := feedbackRecord{ID: l.Feedback.RequestID, Text: l.Prediction.Text, Label: l.Feedback.Label,
			ServedBy: l.Prediction.VersionID, RequestedAt: l.Prediction.Time.UTC().Format("2006-01-02T15:04:05.000Z")}
		if err := enc.Encode(rec); err != nil {
			return nil, err
		}
	}
	o := api.DatasetImportOptions{Name: dataset, FileName: dataset + ".jsonl", Format: "jsonl"}
	if latest, err := a.store.DatasetVersion(ctx, dataset, "latest"); err == nil {
		// The new version stays where the dataset lives: the import
		// checks this server may write there (and read the parent).
		o.Append, o.SkipExisting, o.Region = true, true, latest.Region
	} else if errors.Is(err, errs.ErrNotFound) {
		o.Task = "classify"
	} else {
		return nil, err
	}
	res, err := a.ImportDataset(ctx, &buf, o)
	if err != nil {
		return nil, fmt.Errorf("accumulate feedback of %s into %s: %w", model, dataset, err)
	}
	a.failpoint("feedback.imported")
	ev := a.event("feedback.accumulated", res.Version.ID, map[string]any{"model": model, "dataset": dataset, "version": res.Version.ID,
		"records": len(ids), "first_request": ids[0], "last_request": ids[len(ids)-1], "total_records": res.Version.Records})
	evs, err := a.store.MarkFeedback(ctx, ids, res.Version.ID, []store.Event{ev})
	if err != nil {
		return nil, err
	}
	a.publish(evs)
	a.logger.Info("feedback accumulated", "model", model, "dataset", dataset, "version", res.Version.ID, "labels", len(ids))
	return &res.Version, nil
}
