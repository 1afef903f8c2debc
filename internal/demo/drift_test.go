package demo

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
)

// traffic is 250 answered requests: 100 period-1 ones all right, then 150
// period-2 ones of which v1 gets every other wrong until v2 takes over at
// request 200 and gets them right.
func traffic() []served {
	var log []served
	for i := range 250 {
		s := served{index: i, period: 1, version: "spam-lora@v1", label: "ham", truth: "ham"}
		if i >= 100 {
			s.period = 2
			if i%2 == 0 {
				s.truth = "spam"
			}
		}
		if i >= 200 {
			s.version, s.label = "spam-lora@v2", s.truth
		}
		log = append(log, s)
	}
	return log
}

func window(t *testing.T, index int64, count int, drifted bool, expected float64, detectors string) api.MonitorWindow {
	t.Helper()
	raw := json.RawMessage(`{"detectors": ` + detectors + `, "performance": {"expected_accuracy": ` + jsonNum(expected) + `}}`)
	if !json.Valid(raw) {
		t.Fatalf("fixture window %d: invalid JSON %s", index, raw)
	}
	return api.MonitorWindow{Index: index, Count: count, Drifted: drifted, Result: raw}
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

func TestWindowAccuracy(t *testing.T) {
	rows := windowAccuracy(traffic(), 100)
	want := []windowRow{
		{from: 0, to: 100, period: 1, versions: "spam-lora@v1", acc: 1},
		{from: 100, to: 200, period: 2, versions: "spam-lora@v1", acc: 0.5},
		{from: 200, to: 250, period: 2, versions: "spam-lora@v2", acc: 1},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
}

func TestTimelineNamesTheFirstDriftAndTheSwap(t *testing.T) {
	ws := []api.MonitorWindow{
		window(t, 0, 100, true, 0.95, `[]`),
		window(t, 1, 100, true, 0.7, `[]`),
	}
	start := time.Now()
	evs := []api.Event{
		{Type: "run.state.changed", Subject: "run-1", Time: start.Add(time.Minute), Data: []byte(`{"from":"queued","to":"running","attempt":1}`)},
		{Type: "model.version.registered", Subject: "id", Time: start.Add(2 * time.Minute), Data: []byte(`{"name":"spam-lora","run_id":"run-1"}`)},
		{Type: "model.report.attached", Subject: "id", Time: start.Add(2 * time.Minute), Data: []byte(`{"name":"spam-lora","version":2,"split":"validation","verdict":"fail"}`)},
	}
	var b strings.Builder
	timeline(&b, evs, ws, traffic(), 100, start)
	out := b.String()
	if strings.Contains(out, "<nil>") {
		t.Errorf("timeline prints a missing field:\n%s", out)
	}
	for _, want := range []string{"first drift event after the switch: window 1, at request 200 (100 requests after the switch)",
		"drifted before the switch (false alarms on period-1 traffic in Date order): window 0",
		"hot swap: request 199 answered by spam-lora@v1, request 200 by spam-lora@v2",
		"run run-1 queued → running", "model spam-lora: new version from run run-1", "model spam-lora v2: eval report on validation, verdict fail"} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q:\n%s", want, out)
		}
	}
}

func TestDriftPlotIsWellFormedSVG(t *testing.T) {
	ws := []api.MonitorWindow{
		window(t, 0, 100, false, 0.95, `[{"name": "ks_length", "statistic": 0.1, "threshold": 0.005, "adjusted_pvalue": 0.5},
			{"name": "psi_unigrams", "statistic": 0.2, "threshold": 0.4}, {"name": "mmd", "skipped": "no embeddings"}]`),
		window(t, 1, 100, true, 0.7, `[{"name": "ks_length", "statistic": 0.6, "threshold": 0.005, "adjusted_pvalue": 1e-9},
			{"name": "psi_unigrams", "statistic": 2, "threshold": 0.4}]`),
	}
	panels, markers := driftPlot(traffic(), ws, 100)
	if len(panels) != 2 || len(markers) != 3 {
		t.Fatalf("%d panels and %d markers, want 2 and 3", len(panels), len(markers))
	}
	ratio := panels[1].series[0].y
	// Window 0: max(log 0.5 / log 0.005, 0.2/0.4) = 0.5; window 1: clipped at 4.
	if len(ratio) != 2 || ratio[0] != 0.5 || ratio[1] != 4 {
		t.Errorf("alarm ratios %v, want [0.5 4]", ratio)
	}
	path := filepath.Join(t.TempDir(), "drift.svg")
	if err := writeSVG(path, "spam-lora <v1 & v2>", 250, panels, markers); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var polylines int
	var texts []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("drift.svg is not well-formed XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if el.Name.Local == "polyline" {
				polylines++
			}
		case xml.CharData:
			texts = append(texts, string(el))
		}
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"spam-lora <v1 & v2>", "period 2 starts", "first drift", "hot swap to spam-lora@v2", "alarm"} {
		if !strings.Contains(all, want) {
			t.Errorf("plot lacks the text %q", want)
		}
	}
	if polylines != 3 {
		t.Errorf("%d polylines, want 3 (accuracy, CBPE, alarm ratio)", polylines)
	}
}

func TestSettled(t *testing.T) {
	f := func(states ...string) []api.Firing {
		var out []api.Firing
		for _, s := range states {
			out = append(out, api.Firing{State: s})
		}
		return out
	}
	tests := []struct {
		fs   []api.Firing
		want bool
	}{
		{nil, false},                             // not fired yet
		{f("skipped"), false},                    // only debounced: nothing acted
		{f("done", "skipped", "done"), true},     // every firing finished
		{f("done", "failed"), true},              // a failure is an end too
		{f("done", "running"), false},            // a retrain is still going
		{f("pending", "done", "skipped"), false}, // waiting for a slot
	}
	for i, tt := range tests {
		if got := settled(tt.fs); got != tt.want {
			t.Errorf("%d: settled(%v) = %v", i, tt.fs, got)
		}
	}
}

func TestCountsReadAsWords(t *testing.T) {
	if got := counts(map[string]int{"spam-1": 500, "easy-ham-1": 2500}); got != "easy-ham-1 2500, spam-1 500" {
		t.Errorf("counts = %q", got)
	}
	if got := counts(map[string]int64{}); got != "none" {
		t.Errorf("counts of nothing = %q", got)
	}
}
