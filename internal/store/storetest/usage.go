package storetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

// testUsage: run usage is one row per run whose project, model and day
// stay from the first save; request usage adds up per (project, model,
// day), so many saves make one row; filters and bad amounts.
func testUsage(t *testing.T, s store.Store) {
	if _, err := s.RunUsage(ctx, "run-1"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("RunUsage before a save = %v, want not found", err)
	}
	first := store.RunUsage{RunID: "run-1", Project: "team-a", Model: "spam", Day: "2026-12-06", UpdatedAt: t0}
	got, err := s.SaveRunUsage(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if got.Project != "team-a" || got.Model != "spam" || got.Day != "2026-12-06" || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("first save = %+v", got)
	}
	budget := json.RawMessage(`{"max_steps":10}`)
	exceeded := json.RawMessage(`{"limit":"max_steps","value":"3","measured":"step 3"}`)
	later := store.RunUsage{RunID: "run-1", Project: "other", Model: "other", Day: "2026-12-07", CPUSeconds: 12.5, WallSeconds: 4,
		FLOPs: 6e12, PeakRSSBytes: 1 << 30, EnergyKWh: 3.5e-5, EnergySource: "estimated", CostUSD: 0.0002, Budget: budget,
		Exceeded: exceeded, UpdatedAt: t0.Add(1e9)}
	if _, err := s.SaveRunUsage(ctx, later); err != nil {
		t.Fatal(err)
	}
	got, err = s.RunUsage(ctx, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	want := later
	want.Project, want.Model, want.Day = "team-a", "spam", "2026-12-06"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after second save:\n got %+v\nwant %+v", got, want)
	}
	if _, err := s.SaveRunUsage(ctx, store.RunUsage{RunID: "run-2", Model: "ner", Day: "2026-12-07", UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	all, err := s.RunUsages(ctx, store.UsageFilter{})
	if err != nil || len(all) != 2 || all[0].RunID != "run-1" || all[1].Project != store.DefaultProject {
		t.Fatalf("RunUsages = %+v, %v; want run-1 then run-2 in the default project", all, err)
	}
	if day, _ := s.RunUsages(ctx, store.UsageFilter{From: "2026-12-07"}); len(day) != 1 || day[0].RunID != "run-2" {
		t.Errorf("RunUsages from 2026-12-07 = %+v", day)
	}
	if p, _ := s.RunUsages(ctx, store.UsageFilter{Project: "team-a"}); len(p) != 1 || p[0].RunID != "run-1" {
		t.Errorf("RunUsages of team-a = %+v", p)
	}

	// Request usage: three adds for one key make one row.
	add := func(rows ...store.RequestUsage) {
		t.Helper()
		if err := s.AddRequestUsage(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}
	row := func(project, model, day string, n, in, out int64, lat float64, src string) store.RequestUsage {
		return store.RequestUsage{Project: project, Model: model, Day: day, Requests: n, TokensIn: in, TokensOut: out,
			LatencyMSSum: lat * float64(n), LatencyMSMax: lat, EnergyKWh: 1e-6 * float64(n), EnergySource: src, CostUSD: 1e-7 * float64(n)}
	}
	add(row("", "spam", "2026-12-06", 2, 20, 2, 10, "measured"), row("team-a", "spam", "2026-12-06", 1, 5, 1, 3, "estimated"))
	add(row("", "spam", "2026-12-06", 3, 30, 3, 40, "measured"))
	add(row("", "spam", "2026-12-06", 1, 1, 1, 5, "estimated"), row("", "chat", "2026-12-07", 1, 7, 9, 100, "estimated"))
	reqs, err := s.RequestUsages(ctx, store.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 3 {
		t.Fatalf("RequestUsages = %+v, want 3 rows (one per project, model, day)", reqs)
	}
	d := reqs[0] // 2026-12-06, default, spam
	if d.Project != store.DefaultProject || d.Model != "spam" || d.Requests != 6 || d.TokensIn != 51 || d.TokensOut != 6 ||
		d.LatencyMSSum != 20+120+5 || d.LatencyMSMax != 40 || d.EnergySource != "estimated" {
		t.Errorf("summed row = %+v", d)
	}
	if reqs[1].Project != "team-a" || reqs[1].Requests != 1 || reqs[1].EnergySource != "estimated" {
		t.Errorf("team-a row = %+v", reqs[1])
	}
	if reqs[2].Model != "chat" || reqs[2].Day != "2026-12-07" {
		t.Errorf("last row = %+v", reqs[2])
	}
	if got, _ := s.RequestUsages(ctx, store.UsageFilter{To: "2026-12-06", Project: "team-a"}); len(got) != 1 {
		t.Errorf("filtered RequestUsages = %+v", got)
	}

	// Bad input is refused and leaves nothing half-written.
	bad := []struct {
		name string
		fn   func() error
	}{
		{"run without id", func() error { _, err := s.SaveRunUsage(ctx, store.RunUsage{}); return err }},
		{"negative cpu", func() error {
			_, err := s.SaveRunUsage(ctx, store.RunUsage{RunID: "run-3", Day: "2026-12-06", CPUSeconds: -1})
			return err
		}},
		{"bad day", func() error {
			_, err := s.SaveRunUsage(ctx, store.RunUsage{RunID: "run-3", Day: "yesterday"})
			return err
		}},
		{"bad source", func() error {
			_, err := s.SaveRunUsage(ctx, store.RunUsage{RunID: "run-3", Day: "2026-12-06", EnergySource: "guessed"})
			return err
		}},
		{"bad budget JSON", func() error {
			_, err := s.SaveRunUsage(ctx, store.RunUsage{RunID: "run-3", Day: "2026-12-06", Budget: json.RawMessage("{")})
			return err
		}},
		{"request without model, after a good row", func() error {
			return s.AddRequestUsage(ctx, []store.RequestUsage{row("", "late", "2026-12-08", 1, 1, 1, 1, ""),
				{Day: "2026-12-08", Requests: 1}})
		}},
		{"negative tokens", func() error {
			return s.AddRequestUsage(ctx, []store.RequestUsage{{Model: "m", Day: "2026-12-08", TokensIn: -5}})
		}},
	}
	for _, b := range bad {
		if err := b.fn(); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("%s: err = %v, want invalid", b.name, err)
		}
	}
	if _, err := s.RunUsage(ctx, "run-3"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("a refused save left a row: %v", err)
	}
	if got, _ := s.RequestUsages(ctx, store.UsageFilter{From: "2026-12-08"}); len(got) != 0 {
		t.Errorf("a refused add left rows: %+v", got)
	}
}
