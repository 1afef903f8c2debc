package meter

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// fakeSys copies testdata/sys/<name> into a temporary directory, turning
// "_" in zone directory names into ":" (the fixtures avoid ':' in paths so
// the module stays zip-safe), and returns the copy's root.
func fakeSys(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join("testdata", "sys", name)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		parts := strings.Split(rel, string(filepath.Separator))
		for i, s := range parts {
			if strings.Contains(s, "rapl_") {
				parts[i] = strings.ReplaceAll(s, "_", ":")
			}
		}
		out := filepath.Join(dst, filepath.Join(parts...))
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestReadRAPL(t *testing.T) {
	tests := []struct {
		fixture string
		names   []string
		uj      []uint64
		kind    error // want an error of this kind
	}{
		{fixture: "two-packages", names: []string{"package-0", "package-1"}, uj: []uint64{1000000, 2500000}},
		{fixture: "amd", names: []string{"package-0"}, uj: []uint64{42}},
		{fixture: "no-zones", kind: errs.ErrNotFound},
		{fixture: "missing", kind: errs.ErrNotFound},
		{fixture: "bad-counter", kind: errs.ErrInvalid},
		{fixture: "no-counter", kind: errs.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "missing")
			if tt.fixture != "missing" {
				root = fakeSys(t, tt.fixture)
			}
			zones, err := ReadRAPL(root)
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) {
					t.Fatalf("err = %v, want kind %v", err, tt.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(zones) != len(tt.names) {
				t.Fatalf("got %d zones %+v, want %v (sub-zones left out)", len(zones), zones, tt.names)
			}
			for i, z := range zones {
				if z.Name != tt.names[i] || z.EnergyUJ != tt.uj[i] {
					t.Errorf("zone %d = %s %d µJ, want %s %d", i, z.Name, z.EnergyUJ, tt.names[i], tt.uj[i])
				}
			}
		})
	}
}

func TestEnergyDelta(t *testing.T) {
	z := func(path string, uj, maxUJ uint64) Zone { return Zone{Path: path, EnergyUJ: uj, MaxUJ: maxUJ} }
	tests := []struct {
		name          string
		before, after []Zone
		joules        float64
	}{
		{"two packages", []Zone{z("a", 1e6, 0), z("b", 2e6, 0)}, []Zone{z("a", 3e6, 0), z("b", 2.5e6, 0)}, 2.5},
		{"wrap", []Zone{z("a", 9e6, 10e6)}, []Zone{z("a", 1e6, 10e6)}, 2},
		{"down without range is skipped", []Zone{z("a", 9e6, 0)}, []Zone{z("a", 1e6, 0)}, 0},
		{"zone only after", nil, []Zone{z("a", 1e6, 0)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EnergyDelta(tt.before, tt.after); math.Abs(got-tt.joules) > 1e-9 {
				t.Errorf("EnergyDelta = %v J, want %v", got, tt.joules)
			}
		})
	}
}

// TestEstimatedEnergy: without RAPL, energy = CPU-seconds × watts per core
// and cost = CPU-hours × rate + kWh × rate.
func TestEstimatedEnergy(t *testing.T) {
	tests := []struct {
		name                 string
		opts                 Options
		cpuSeconds, kwh, usd float64
	}{
		{"defaults: 1 CPU-hour", Options{}, 3600, 0.01, 0.04 + 0.01*0.15},
		{"12 W per core", Options{WattsPerCore: 12, CostCPUHourUSD: 0.1, CostKWhUSD: 0.3}, 1800, 0.006, 0.05 + 0.006*0.3},
		{"idle", Options{}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(tt.opts)
			kwh := m.EstimateKWh(tt.cpuSeconds)
			if math.Abs(kwh-tt.kwh) > 1e-12 {
				t.Errorf("EstimateKWh(%v) = %v, want %v", tt.cpuSeconds, kwh, tt.kwh)
			}
			if usd := m.Cost(tt.cpuSeconds, kwh); math.Abs(usd-tt.usd) > 1e-12 {
				t.Errorf("Cost = %v, want %v", usd, tt.usd)
			}
		})
	}
}

// TestTrackerEstimated meters a fake process with no RAPL: CPU time and
// peak RSS from its /proc files, energy estimated and labelled so.
func TestTrackerEstimated(t *testing.T) {
	m := New(Options{ProcRoot: filepath.Join("testdata", "proc", "busy"), SysRoot: fakeSys(t, "no-zones")})
	start := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	tr := m.Track(42, start)
	if tr.Measured() {
		t.Fatal("Measured() with no RAPL zone")
	}
	tr.SetFLOPs(6e9)
	u := tr.Sample(start.Add(10 * time.Second))
	// utime 250 + stime 50 + cutime 10 + cstime 5 ticks = 3.15 s.
	want := Usage{CPUSeconds: 3.15, WallSeconds: 10, FLOPs: 6e9, PeakRSSBytes: 123456 * 1024, EnergyKWh: 3.15 * 10 / 3.6e6,
		EnergySource: Estimated}
	want.CostUSD = 3.15/3600*0.04 + want.EnergyKWh*0.15
	if !close(u, want) {
		t.Errorf("Sample = %+v\nwant     %+v", u, want)
	}
	// At exit rusage has the last word when it saw more.
	u = tr.Finish(start.Add(12*time.Second), 4, 200<<20)
	if u.CPUSeconds != 4 || u.WallSeconds != 12 || u.PeakRSSBytes != 200<<20 || u.EnergySource != Estimated {
		t.Errorf("Finish = %+v", u)
	}
}

// TestTrackerMeasured meters a fake process on a fake machine whose RAPL
// counters move: the process gets ΔE × its share of the busy CPU time.
func TestTrackerMeasured(t *testing.T) {
	sys := fakeSys(t, "two-packages")
	proc := t.TempDir()
	write := func(path, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stat := func(busyUser int) string {
		return "cpu  " + itoa(busyUser) + " 0 0 10000 0 0 0 0 0 0\n"
	}
	pidStat := func(utime int) string {
		return "7 (w) R 1 7 7 0 -1 0 0 0 0 0 " + itoa(utime) + " 0 0 0 20 0 1 0 1 1 1\n"
	}
	write(filepath.Join(proc, "stat"), stat(1000))
	write(filepath.Join(proc, "7", "stat"), pidStat(0))
	write(filepath.Join(proc, "7", "status"), "VmHWM:\t 1024 kB\n")
	m := New(Options{ProcRoot: proc, SysRoot: sys})
	start := time.Unix(0, 0)
	tr := m.Track(7, start)
	if !tr.Measured() {
		t.Fatal("not Measured() over a readable RAPL tree")
	}
	// The machine was busy 400 ticks, 100 of them this process: a quarter
	// of the 8 J the two packages used.
	write(filepath.Join(proc, "stat"), stat(1400))
	write(filepath.Join(proc, "7", "stat"), pidStat(100))
	write(filepath.Join(sys, "class", "powercap", "intel-rapl:0", "energy_uj"), "4000000")
	write(filepath.Join(sys, "class", "powercap", "intel-rapl:1", "energy_uj"), "7500000")
	u := tr.Sample(start.Add(time.Second))
	if u.EnergySource != Measured || math.Abs(u.EnergyKWh-2/3.6e6) > 1e-15 || u.CPUSeconds != 1 {
		t.Errorf("Sample = %+v, want 2 J measured over 1 CPU-second", u)
	}
	// NoRAPL forces the estimate on the same tree.
	if New(Options{ProcRoot: proc, SysRoot: sys, NoRAPL: true}).Track(7, start).Measured() {
		t.Error("NoRAPL tracker reads RAPL")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func close(a, b Usage) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y)) }
	return eq(a.CPUSeconds, b.CPUSeconds) && eq(a.WallSeconds, b.WallSeconds) && eq(a.FLOPs, b.FLOPs) && a.PeakRSSBytes == b.PeakRSSBytes &&
		eq(a.EnergyKWh, b.EnergyKWh) && a.EnergySource == b.EnergySource && eq(a.CostUSD, b.CostUSD)
}

func TestBudgetCheck(t *testing.T) {
	u := Usage{WallSeconds: 90, CostUSD: 0.5, EnergyKWh: 0.02, EnergySource: Estimated}
	tests := []struct {
		name string
		b    Budget
		step int64
		want string // "" = within budget
	}{
		{"no budget", Budget{}, 100, ""},
		{"steps reached", Budget{MaxSteps: 3}, 3, "budget max_steps 3 reached: measured step 3"},
		{"steps not yet", Budget{MaxSteps: 3}, 2, ""},
		{"duration", Budget{MaxDuration: time.Minute}, 1, "budget max_duration 1m0s reached: measured 1m30s"},
		{"cost", Budget{MaxCostUSD: 0.25}, 1, "budget max_cost_usd 0.25 reached: measured 0.5 USD (energy estimated)"},
		{"energy", Budget{MaxEnergyKWh: 0.01}, 1, "budget max_energy_kwh 0.01 reached: measured 0.02 kWh (energy estimated)"},
		{"first in order wins", Budget{MaxSteps: 1, MaxDuration: time.Second}, 1, "budget max_steps 1 reached: measured step 1"},
		{"all within", Budget{MaxSteps: 10, MaxDuration: time.Hour, MaxCostUSD: 1, MaxEnergyKWh: 1}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if e := tt.b.Check(u, tt.step); e != nil {
				got = e.Error()
			}
			if got != tt.want {
				t.Errorf("Check = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBudgetOverride(t *testing.T) {
	b := Budget{MaxSteps: 3, MaxDuration: time.Minute}
	got := b.Override(Budget{MaxSteps: 10, MaxCostUSD: 2})
	want := Budget{MaxSteps: 10, MaxDuration: time.Minute, MaxCostUSD: 2}
	if got != want {
		t.Errorf("Override = %+v, want %+v", got, want)
	}
	if s := got.String(); s != "max_steps=10 max_duration=1m0s max_cost_usd=2" {
		t.Errorf("String = %q", s)
	}
}

func TestUsageAdd(t *testing.T) {
	a := Usage{CPUSeconds: 1, WallSeconds: 2, FLOPs: 3, PeakRSSBytes: 10, EnergyKWh: 0.5, EnergySource: Measured, CostUSD: 1}
	b := Usage{CPUSeconds: 2, WallSeconds: 1, FLOPs: 1, PeakRSSBytes: 20, EnergyKWh: 0.25, EnergySource: Estimated, CostUSD: 2}
	got := a.Add(b)
	want := Usage{CPUSeconds: 3, WallSeconds: 3, FLOPs: 4, PeakRSSBytes: 20, EnergyKWh: 0.75, EnergySource: Estimated, CostUSD: 3}
	if got != want {
		t.Errorf("Add = %+v, want %+v", got, want)
	}
	if s := a.Add(Usage{}).EnergySource; s != Measured {
		t.Errorf("measured + nothing = %q, want measured", s)
	}
}

func TestTrainFLOPs(t *testing.T) {
	if got := TrainFLOPs(100, 100, 10); got != 6000 {
		t.Errorf("full fine-tune = %v, want 6·N·T = 6000", got)
	}
	if got := TrainFLOPs(100, 2, 10); got != 4040 {
		t.Errorf("LoRA = %v, want (4·100+2·2)·10 = 4040", got)
	}
	if got := InferFLOPs(100, 10); got != 2000 {
		t.Errorf("inference = %v, want 2000", got)
	}
}
