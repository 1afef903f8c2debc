package eval

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestTokenF1(t *testing.T) {
	tests := []struct {
		ref, out string
		want     float64
	}{
		{"The cat sat", "a cat sat down", 0.8},
		{"Hello, World!", "hello world", 1},
		{"dog dog cat", "dog cat cat", 2.0 / 3},
		{"", "", 1},
		{"the", "a", 1}, // both normalise to no tokens
		{"abc", "", 0},
		{"", "abc", 0},
		{"Paris", "The answer is Paris.", 0.5},
		{"rock-n-roll", "rocknroll", 1}, // punctuation is removed, not split on
		{"apple", "orange", 0},
	}
	for _, tc := range tests {
		t.Run(tc.ref+"|"+tc.out, func(t *testing.T) {
			if got := TokenF1(tc.ref, tc.out); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("TokenF1(%q, %q) = %v, want %v", tc.ref, tc.out, got, tc.want)
			}
		})
	}
}

func TestNormalizeAnswer(t *testing.T) {
	got := NormalizeAnswer("  The  Theory of an Apple's (a) fall!  ")
	want := []string{"theory", "of", "apples", "fall"}
	if !slices.Equal(got, want) {
		t.Errorf("NormalizeAnswer = %q, want %q", got, want)
	}
}

func TestGenerate(t *testing.T) {
	preds := []Prediction{
		{Gold: "42", Output: " 42 "},
		{Gold: `{"a":1}`, Output: `{"a": 1}`}, // token F1 0: "a1" vs "1" (the "a" is an article)
		{Gold: "Paris", Output: "The answer is Paris."},
	}
	tests := []struct {
		name                        string
		opts                        GenOptions
		exact, contains, f1, jsonOK float64
		regex, schema               *float64
	}{
		{
			name:  "no options",
			exact: 1.0 / 3, contains: 2.0 / 3, f1: (1 + 0 + 0.5) / 3, jsonOK: 2.0 / 3,
		},
		{
			name:  "regex and schema",
			opts:  GenOptions{Regex: `^\s*\d+\s*$`, Schema: []byte(`{"type":"integer"}`)},
			exact: 1.0 / 3, contains: 2.0 / 3, f1: (1 + 0 + 0.5) / 3, jsonOK: 2.0 / 3,
			regex: ptr(1.0 / 3), schema: ptr(1.0 / 3),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Generate(preds, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if m.N != 3 || !near(m.ExactMatch, tc.exact) || !near(m.Contains, tc.contains) ||
				!near(m.TokenF1, tc.f1) || !near(m.JSONValid, tc.jsonOK) {
				t.Errorf("got %+v", m)
			}
			if !optNear(m.RegexMatch, tc.regex) || !optNear(m.SchemaValid, tc.schema) {
				t.Errorf("regex %v schema %v, want %v %v", m.RegexMatch, m.SchemaValid, tc.regex, tc.schema)
			}
		})
	}
}

func ptr(v float64) *float64 { return &v }

func optNear(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return near(*a, *b)
}

func TestGenerateErrors(t *testing.T) {
	one := []Prediction{{Gold: "a", Output: "a"}}
	tests := []struct {
		name  string
		preds []Prediction
		opts  GenOptions
		want  string
	}{
		{"empty", nil, GenOptions{}, "no predictions"},
		{"bad regex", one, GenOptions{Regex: "a(b"}, "regex \"a(b\""},
		{"bad schema", one, GenOptions{Schema: []byte(`{"minimum": 3}`)}, "$.minimum: keyword not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Generate(tc.preds, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error %v, want an invalid error containing %q", err, tc.want)
			}
		})
	}
}

func TestLatencyOf(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		want LatencyStats
	}{
		// h = 9q: p50 at 4.5 → 5.5, p95 at 8.55 → 9.55, p99 at 8.91 → 9.91.
		{"one to ten", ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), LatencyStats{N: 10, MeanMs: 5.5, P50Ms: 5.5, P95Ms: 9.55, P99Ms: 9.91, MaxMs: 10}},
		{"single", ms(7), LatencyStats{N: 1, MeanMs: 7, P50Ms: 7, P95Ms: 7, P99Ms: 7, MaxMs: 7}},
		// h = 1q: p50 0.5 → 150, p95 0.95 → 195.
		{"two", ms(100, 200), LatencyStats{N: 2, MeanMs: 150, P50Ms: 150, P95Ms: 195, P99Ms: 199, MaxMs: 200}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LatencyOf(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			if got.N != w.N || math.Abs(got.MeanMs-w.MeanMs) > 1e-9 || math.Abs(got.P50Ms-w.P50Ms) > 1e-9 ||
				math.Abs(got.P95Ms-w.P95Ms) > 1e-9 || math.Abs(got.P99Ms-w.P99Ms) > 1e-9 || got.MaxMs != w.MaxMs {
				t.Errorf("got %+v, want %+v", got, w)
			}
		})
	}
	if _, err := LatencyOf(nil); err == nil {
		t.Error("no durations: want an error")
	}
	if _, err := LatencyOf(ms(1, -2)); err == nil || !strings.Contains(err.Error(), "latency 1") {
		t.Errorf("negative duration: error %v, want one naming latency 1", err)
	}
}

func TestCostOf(t *testing.T) {
	tests := []struct {
		name               string
		cpu                float64
		n                  int
		model              EnergyModel
		cpu1k, wh1k, usd1k float64
	}{
		// 2 CPU-s over 4 predictions: 500 CPU-s per 1k; ×10 W / 3600 = 1.3889 Wh; /1000 × 0.15.
		{"defaults", 2, 4, EnergyModel{}, 500, 500 * 10.0 / 3600, 500 * 10.0 / 3600 / 1000 * 0.15},
		{"explicit", 2, 4, EnergyModel{WattsPerCore: 20, PricePerKWh: 0.3, Currency: "EUR"}, 500, 500 * 20.0 / 3600, 500 * 20.0 / 3600 / 1000 * 0.3},
		{"zero cpu", 0, 10, EnergyModel{}, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := CostOf(tc.cpu, tc.n, tc.model)
			if err != nil {
				t.Fatal(err)
			}
			if !near(c.CPUSecondsPer1k, tc.cpu1k) || !near(c.EnergyWhPer1k, tc.wh1k) || !near(c.CostPer1k, tc.usd1k) {
				t.Errorf("got %+v, want %v %v %v", c, tc.cpu1k, tc.wh1k, tc.usd1k)
			}
		})
	}
	for _, bad := range []struct {
		cpu   float64
		n     int
		model EnergyModel
	}{{1, 0, EnergyModel{}}, {-1, 1, EnergyModel{}}, {math.NaN(), 1, EnergyModel{}}, {1, 1, EnergyModel{WattsPerCore: -5}}} {
		if _, err := CostOf(bad.cpu, bad.n, bad.model); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("CostOf(%v, %d, %+v): error %v, want invalid", bad.cpu, bad.n, bad.model, err)
		}
	}
}
