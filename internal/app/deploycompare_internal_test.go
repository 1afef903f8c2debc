package app

import (
	"testing"

	"github.com/tailor-ml/tailor/internal/serve/reqlog"
	"github.com/tailor-ml/tailor/internal/store"
)

// compareRecords on completions and failures: text agreement, errors kept
// out of latency, agreement and accuracy, and a canary never paired.
func TestCompareRecords(t *testing.T) {
	rec := func(id, variant string, status int, out string, ms float64) reqlog.Record {
		return reqlog.Record{RequestID: id, Endpoint: "completion", Model: "chat", Version: "chat@v1", Variant: variant, Output: out, Status: status, LatencyMS: ms}
	}
	recs := []reqlog.Record{
		rec("a", "primary", 200, "yes", 10), rec("a", "shadow", 200, "yes", 1),
		rec("b", "primary", 200, "no", 20), rec("b", "shadow", 200, "yes", 2),
		rec("c", "primary", 200, "maybe", 30), rec("c", "shadow", 429, "", 3),
		rec("d", "primary", 500, "", 1000), rec("d", "shadow", 200, "no", 4),
		rec("e", "canary", 200, "yes", 5), rec("e", "shadow", 200, "yes", 6),
		rec("f", "primary", 200, "x", 40),
	}
	fb := map[string]store.Feedback{"a": {Completion: "yes"}, "b": {Completion: "yes"}, "d": {Completion: "no"}, "e": {Completion: "yes"}}
	canary, shadow := compareRecords(recs, fb)
	p := canary.Primary
	if p.Requests != 5 || p.Errors != 1 || p.LatencyP50MS != 20 || p.LatencyP95MS != 40 || p.Labelled != 2 || p.Correct != 1 || *p.Accuracy != 0.5 {
		t.Errorf("canary.primary %+v", p)
	}
	if c := canary.Other; c.Requests != 1 || c.Labelled != 1 || c.Correct != 1 || canary.Paired != 0 || canary.Agreement != nil {
		t.Errorf("canary %+v", canary)
	}
	// Shadow pairs: a (agree), b (disagree), c (shadow dropped), d (primary failed); e was the canary's, f has no shadow.
	if shadow.Primary.Requests != 4 || shadow.Other.Requests != 4 || shadow.Other.Errors != 1 || shadow.Paired != 2 || shadow.Agreed != 1 || *shadow.Agreement != 0.5 {
		t.Errorf("shadow %+v", shadow)
	}
	if s := shadow.Other; s.Labelled != 3 || s.Correct != 3 || s.LatencyP50MS != 2 || s.LatencyP95MS != 4 {
		t.Errorf("shadow.other %+v", s)
	}
}
