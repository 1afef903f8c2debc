package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

// fixturePrediction is the test fixture line: a Prediction with the
// latency in milliseconds and the slice field flattened.
type fixturePrediction struct {
	ID         string             `json:"id"`
	Gold       string             `json:"gold"`
	Output     string             `json:"output"`
	Probs      map[string]float64 `json:"probs"`
	Lang       string             `json:"lang"`
	LatencyMs  float64            `json:"latency_ms"`
	CPUSeconds float64            `json:"cpu_seconds"`
}

func loadPredictions(t *testing.T, path string) []Prediction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Prediction
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var p fixturePrediction
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		out = append(out, Prediction{
			ID: p.ID, Gold: p.Gold, Output: p.Output, Probs: p.Probs,
			Latency:    time.Duration(p.LatencyMs * float64(time.Millisecond)),
			CPUSeconds: p.CPUSeconds, Fields: map[string]string{"lang": p.Lang},
		})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// goldenInput is the evaluation the golden files pin.
func goldenInput(t *testing.T) (Input, Options) {
	in := Input{
		Inputs: Inputs{
			ModelID: "sentiment-lora@v3", DatasetID: "reviews@v7", Split: "test", ChampionID: "sentiment-lora@v2",
			Hashes: map[string]string{"dataset": "9f2c1e", "model": "4ab07d"},
		},
		Candidate: loadPredictions(t, "testdata/golden/candidate.jsonl"),
		Champion:  loadPredictions(t, "testdata/golden/champion.jsonl"),
		Train:     synthText(3, 120),
		Test:      synthText(4, 60),
	}
	opts := Options{
		Task: TaskClassify,
		// By gold label: slices of one class, whose macro-F1 the report
		// must not show as if it meant something.
		Slicers: []Slicer{ByField("lang"), {Name: "gold", Key: func(p Prediction) string { return p.Gold }}},
		Gates: []Gate{
			{Kind: GateThreshold, Metric: "macro_f1", Op: ">=", Value: 0.7},
			{Kind: GateThreshold, Metric: "accuracy", Op: ">=", Value: 0.8, Slice: "lang=de"},
			{Kind: GateNotWorse, Metric: "accuracy", Epsilon: 0.05},
			{Kind: GateLatency, Metric: "p95_ms", Value: 50},
			{Kind: GateCost, Metric: "cost_per_1k", Value: 0.001},
		},
		Bootstrap: BootstrapOptions{Seed: 7},
	}
	return in, opts
}

func TestReportGolden(t *testing.T) {
	in, opts := goldenInput(t)
	rep, err := Evaluate(in, opts)
	if err != nil {
		t.Fatal(err)
	}
	js, err := rep.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		file string
		got  []byte
	}{{"report.golden.md", []byte(rep.Markdown())}, {"report.golden.json", js}} {
		path := filepath.Join("testdata/golden", g.file)
		if *update {
			if err := os.WriteFile(path, g.got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestReportGolden -update to create it)", err)
		}
		if !bytes.Equal(g.got, want) {
			t.Errorf("%s differs; rerun with -update if intended:\n%s", path, g.got)
		}
	}
}

func TestReportRoundTripAndDigest(t *testing.T) {
	in, opts := goldenInput(t)
	a, err := Evaluate(in, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Evaluate(in, opts)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db || len(da) != 64 {
		t.Fatalf("same inputs, digests %q and %q", da, db)
	}
	js, err := a.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseReport(js)
	if err != nil {
		t.Fatal(err)
	}
	js2, err := back.MarshalCanonical()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, js2) {
		t.Errorf("round trip changed the JSON:\n%s\nvs\n%s", js, js2)
	}
	if back.Markdown() != a.Markdown() {
		t.Errorf("round trip changed the Markdown:\n%s\nvs\n%s", a.Markdown(), back.Markdown())
	}
	ia, _ := a.Inputs.Digest()
	in.Inputs.Hashes["model"] = "other"
	ib, _ := in.Inputs.Digest()
	if ia == ib {
		t.Error("inputs digest ignores the hashes")
	}
}

func TestParseReportErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"unknown field", `{"version":1,"bogus":2}`, `unknown field "bogus"`},
		{"wrong version", `{"version":9}`, "version 9"},
		{"not json", `{`, "eval report"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseReport([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error %v, want an invalid error containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`{"version":1,"task":"classify","slices":[{"slice":"all","n":2,"classify":{"n":2,"accuracy":0.5}}]}`))
	f.Add([]byte(`{"version":1,"verdict":{"pass":false,"gates":[{"gate":{"kind":"threshold","metric":"x","value":1e300},"observed":0.123456789012345}]}}`))
	f.Add([]byte(`{"version":1,"cost":{"n":3,"cost_per_1k":1e-20}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		a, err := r.MarshalCanonical()
		if err != nil {
			return // e.g. a huge integer count that re-encodes differently
		}
		r2, err := ParseReport(a)
		if err != nil {
			t.Fatalf("canonical JSON does not parse: %v\n%s", err, a)
		}
		b, err := r2.MarshalCanonical()
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("canonical JSON is not stable (%v):\n%s\nvs\n%s", err, a, b)
		}
	})
}
