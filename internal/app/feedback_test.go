package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/store"
)

// A crash between importing the accumulated labels and marking them leaves
// the records in the feedback dataset and the labels pending. The next
// accumulation must skip what the dataset already has, not fail on the
// duplicate ids (the kill -9 history found this), and must not add a
// version for records it already holds.
func TestAccumulateFeedbackAfterCrashBeforeMarking(t *testing.T) {
	e := newEnv(t, app.Options{})
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var ps []store.Prediction
	for i := range 5 {
		ps = append(ps, store.Prediction{RequestID: fmt.Sprintf("req-%d", i), Time: now, Model: "m", VersionID: "v1",
			Variant: "primary", Label: "ham", Text: fmt.Sprintf("message %d", i)})
	}
	if err := e.app.Store().PutPredictions(ctx, ps); err != nil {
		t.Fatal(err)
	}
	label := func(i int) {
		t.Helper()
		if _, err := e.client.PostFeedback(ctx, api.Feedback{RequestID: fmt.Sprintf("req-%d", i), Label: "spam"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		label(i)
	}
	// What the crashed accumulation had written before it died.
	var crashed strings.Builder
	for i := range 3 {
		fmt.Fprintf(&crashed, `{"id":"req-%d","text":"message %d","label":"spam"}`+"\n", i, i)
	}
	first, err := e.client.ImportDataset(ctx, strings.NewReader(crashed.String()),
		api.DatasetImportOptions{Name: "m-feedback", Task: "classify", FileName: "m-feedback.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.client.AccumulateFeedback(ctx, "m")
	if err != nil {
		t.Fatalf("accumulate after the crash: %v", err)
	}
	if v == nil || v.ID != first.Version.ID || v.Records != 3 {
		t.Fatalf("accumulate after the crash = %+v, want the version the crash left (%s, 3 records)", v, first.Version.ID)
	}
	// They are marked now: nothing is pending, and new labels append.
	if v, err := e.client.AccumulateFeedback(ctx, "m"); err != nil || v != nil {
		t.Fatalf("second accumulate = %+v, %v; want nothing pending", v, err)
	}
	label(3)
	label(4)
	v, err = e.client.AccumulateFeedback(ctx, "m")
	if err != nil || v == nil || v.Records != 5 || v.Parent != first.Version.ID {
		t.Fatalf("accumulate of two new labels = %+v, %v; want 5 records on top of %s", v, err, first.Version.ID)
	}
	versions, err := e.client.Datasets(ctx, "m-feedback")
	if err != nil || len(versions) != 2 {
		t.Fatalf("feedback dataset versions = %d, %v; want 2", len(versions), err)
	}
}
