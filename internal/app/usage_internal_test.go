package app

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/meter"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/store/sqlite"
)

func TestAggregateUsage(t *testing.T) {
	runs := []store.RunUsage{
		{RunID: "run-1", Project: "a", Model: "spam", Day: "2026-12-06", CPUSeconds: 10, WallSeconds: 5, FLOPs: 1e9, PeakRSSBytes: 100,
			EnergyKWh: 0.001, EnergySource: "measured", CostUSD: 0.01},
		{RunID: "run-2", Project: "b", Model: "spam", Day: "2026-12-07", CPUSeconds: 20, WallSeconds: 8, FLOPs: 3e9, PeakRSSBytes: 300,
			EnergyKWh: 0.002, EnergySource: "estimated", CostUSD: 0.02},
	}
	reqs := []store.RequestUsage{
		{Project: "a", Model: "spam", Day: "2026-12-06", Requests: 4, TokensIn: 40, TokensOut: 4, LatencyMSSum: 100, LatencyMSMax: 40,
			EnergyKWh: 0.0005, EnergySource: "measured", CostUSD: 0.001},
		{Project: "a", Model: "chat", Day: "2026-12-07", Requests: 1, TokensIn: 10, TokensOut: 20, LatencyMSSum: 300, LatencyMSMax: 300,
			EnergyKWh: 0.0001, EnergySource: "measured", CostUSD: 0.002},
	}
	tests := []struct {
		by   string
		want []api.UsageRow
	}{
		{"project", []api.UsageRow{
			{Key: "a", Runs: 1, CPUSeconds: 10, WallSeconds: 5, FLOPs: 1e9, PeakRSSBytes: 100, Requests: 5, TokensIn: 50, TokensOut: 24,
				LatencyMSAvg: 80, LatencyMSMax: 300, EnergyKWh: 0.0016, EnergySource: "measured", CostUSD: 0.013},
			{Key: "b", Runs: 1, CPUSeconds: 20, WallSeconds: 8, FLOPs: 3e9, PeakRSSBytes: 300, EnergyKWh: 0.002, EnergySource: "estimated", CostUSD: 0.02},
		}},
		{"model", []api.UsageRow{
			{Key: "chat", Requests: 1, TokensIn: 10, TokensOut: 20, LatencyMSAvg: 300, LatencyMSMax: 300, EnergyKWh: 0.0001, EnergySource: "measured",
				CostUSD: 0.002},
			{Key: "spam", Runs: 2, CPUSeconds: 30, WallSeconds: 13, FLOPs: 4e9, PeakRSSBytes: 300, Requests: 4, TokensIn: 40, TokensOut: 4,
				LatencyMSAvg: 25, LatencyMSMax: 40, EnergyKWh: 0.0035, EnergySource: "estimated", CostUSD: 0.031},
		}},
		{"day", []api.UsageRow{
			{Key: "2026-12-06", Runs: 1, CPUSeconds: 10, WallSeconds: 5, FLOPs: 1e9, PeakRSSBytes: 100, Requests: 4, TokensIn: 40, TokensOut: 4,
				LatencyMSAvg: 25, LatencyMSMax: 40, EnergyKWh: 0.0015, EnergySource: "measured", CostUSD: 0.011},
			{Key: "2026-12-07", Runs: 1, CPUSeconds: 20, WallSeconds: 8, FLOPs: 3e9, PeakRSSBytes: 300, Requests: 1, TokensIn: 10, TokensOut: 20,
				LatencyMSAvg: 300, LatencyMSMax: 300, EnergyKWh: 0.0021, EnergySource: "estimated", CostUSD: 0.022},
		}},
	}
	total := api.UsageRow{Key: "total", Runs: 2, CPUSeconds: 30, WallSeconds: 13, FLOPs: 4e9, PeakRSSBytes: 300, Requests: 5, TokensIn: 50,
		TokensOut: 24, LatencyMSAvg: 80, LatencyMSMax: 300, EnergyKWh: 0.0036, EnergySource: "estimated", CostUSD: 0.033}
	for _, tt := range tests {
		t.Run(tt.by, func(t *testing.T) {
			rep := aggregateUsage(tt.by, runs, reqs)
			if rep.By != tt.by || len(rep.Rows) != len(tt.want) {
				t.Fatalf("report %+v", rep)
			}
			for i, w := range tt.want {
				if !sameRow(rep.Rows[i], w) {
					t.Errorf("row %d:\n got %+v\nwant %+v", i, rep.Rows[i], w)
				}
			}
			if !sameRow(rep.Total, total) {
				t.Errorf("total:\n got %+v\nwant %+v", rep.Total, total)
			}
		})
	}
	if empty := aggregateUsage("day", nil, nil); empty.Rows == nil || len(empty.Rows) != 0 || empty.Total.Key != "total" {
		t.Errorf("empty report %+v: want rows [] and a zero total", empty)
	}
}

func sameRow(a, b api.UsageRow) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) <= 1e-12*math.Max(1, math.Abs(y)) }
	return a.Key == b.Key && a.Runs == b.Runs && eq(a.CPUSeconds, b.CPUSeconds) && eq(a.WallSeconds, b.WallSeconds) && eq(a.FLOPs, b.FLOPs) &&
		a.PeakRSSBytes == b.PeakRSSBytes && a.Requests == b.Requests && a.TokensIn == b.TokensIn && a.TokensOut == b.TokensOut &&
		eq(a.LatencyMSAvg, b.LatencyMSAvg) && eq(a.LatencyMSMax, b.LatencyMSMax) && eq(a.EnergyKWh, b.EnergyKWh) &&
		a.EnergySource == b.EnergySource && eq(a.CostUSD, b.CostUSD)
}

func TestApportion(t *testing.T) {
	tests := []struct {
		name   string
		rows   []store.RequestUsage
		used   meter.Usage
		energy []float64
	}{
		{"by tokens", []store.RequestUsage{{Requests: 1, TokensIn: 30, TokensOut: 10}, {Requests: 3, TokensIn: 60}},
			meter.Usage{EnergyKWh: 1, CostUSD: 2, EnergySource: "estimated"}, []float64{0.4, 0.6}},
		{"by requests without tokens", []store.RequestUsage{{Requests: 1}, {Requests: 3}},
			meter.Usage{EnergyKWh: 1, CostUSD: 2, EnergySource: "measured"}, []float64{0.25, 0.75}},
		{"nothing used", []store.RequestUsage{{Requests: 1, TokensIn: 5}}, meter.Usage{EnergySource: "estimated"}, []float64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apportion(tt.rows, tt.used)
			for i, r := range tt.rows {
				if math.Abs(r.EnergyKWh-tt.energy[i]) > 1e-12 || math.Abs(r.CostUSD-2*tt.energy[i]) > 1e-12 || r.EnergySource != tt.used.EnergySource {
					t.Errorf("row %d: %+v, want energy %v", i, r, tt.energy[i])
				}
			}
		})
	}
}

// TestRequestMeterBounded: a thousand requests over two projects, two
// models and two days, plus names that resolved to no model, are stored as
// four rows whose counts add up; a second flush adds into the same rows.
func TestRequestMeterBounded(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := newRequestMeter(st, meter.New(meter.Options{}), slog.New(slog.DiscardHandler), time.Hour, time.Now)
	day1 := time.Date(2026, 12, 6, 23, 59, 0, 0, time.UTC)
	send := func(n int) {
		for i := range n {
			m.record(serve.Usage{Tag: []string{"a", "b"}[i%2], Time: day1.Add(time.Duration(i%4/2) * time.Hour), Model: []string{"spam", "chat"}[i%3%2],
				TokensIn: 3, TokensOut: 1, Latency: time.Duration(i%10) * time.Millisecond, Status: 200})
			m.record(serve.Usage{Model: "", Time: day1, TokensIn: 100}) // unknown-model-<i>: left out
		}
	}
	send(1000)
	m.flush(context.Background())
	send(1000)
	m.flush(context.Background())
	rows, err := st.RequestUsages(context.Background(), store.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var n, in int64
	keys := map[string]bool{}
	for _, r := range rows {
		n += r.Requests
		in += r.TokensIn
		keys[fmt.Sprint(r.Project, r.Model, r.Day)] = true
		if r.EnergySource != "measured" && r.EnergySource != "estimated" {
			t.Errorf("row %+v has no energy label", r)
		}
	}
	if len(rows) > 8 || len(keys) != len(rows) || n != 2000 || in != 6000 {
		t.Fatalf("%d rows (%d keys) hold %d requests and %d tokens in; want at most 8 rows holding 2000 and 6000", len(rows), len(keys), n, in)
	}
}
