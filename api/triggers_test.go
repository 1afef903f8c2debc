package api

import (
	"strings"
	"testing"
)

func TestComparisonTable(t *testing.T) {
	c := &Comparison{Alias: "champion", Dataset: "spam@7ef38b2207e9", Split: "test",
		Old: ComparisonSide{Model: "spam-lora", Version: 1, Base: "tailor-tiny@v1", Verdict: "pass", Metrics: map[string]float64{"accuracy": 0.951, "macro_f1": 0.9031, "ece": 0.02}},
		New: ComparisonSide{Model: "spam-lora", Version: 4, Base: "tailor-tiny@v2", Verdict: "fail", Metrics: map[string]float64{"accuracy": 0.96, "macro_f1": 0.91}}}
	var b strings.Builder
	c.WriteTable(&b)
	want := `champion test split of spam@7ef38b2207e9
METRIC    spam-lora v1 on tailor-tiny@v1  spam-lora v4 on tailor-tiny@v2  CHANGE
accuracy  0.9510                          0.9600                          +0.0090
macro_f1  0.9031                          0.9100                          +0.0069
verdict   pass                            fail                            
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestActionResultLine(t *testing.T) {
	for _, tc := range []struct {
		r    ActionResult
		want string
	}{
		{ActionResult{Action: "retrain", Outcome: "run r succeeded"}, "retrain: run r succeeded"},
		{ActionResult{Action: "webhook", Outcome: "ignored", Error: "503"}, "webhook: error: 503"},
	} {
		if got := tc.r.Line(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}
