package meter

import (
	"sync"
	"time"
)

// Tracker meters one process from Track until Finish: its CPU-seconds and
// peak RSS from /proc/<pid>, its wall time from the clock, and its energy
// from RAPL or the estimate. Safe for concurrent use.
type Tracker struct {
	m     *Meter
	pid   int
	start time.Time

	mu    sync.Mutex
	cpu   float64 // CPU-seconds seen so far
	peak  int64
	flops float64
	wall  float64
	// RAPL state: nil zones means the estimate is used.
	zones    []Zone
	busy     uint64  // machine busy ticks at the last reading
	procCPU  float64 // the process's CPU-seconds at the last reading
	joules   float64 // measured energy apportioned to the process so far
	measured bool
}

// Track starts metering pid, which started at start. It reads RAPL once:
// where RAPL is readable (and not disabled) the energy is measured,
// otherwise estimated, for the whole life of the tracker.
func (m *Meter) Track(pid int, start time.Time) *Tracker {
	t := &Tracker{m: m, pid: pid, start: start}
	if !m.opts.NoRAPL {
		if zones, err := ReadRAPL(m.opts.SysRoot); err == nil {
			if busy, _, err := ReadStatCPU(m.opts.ProcRoot); err == nil {
				t.zones, t.busy, t.measured = zones, busy, true
				if cpu, _, err := ReadProc(m.opts.ProcRoot, pid); err == nil {
					t.procCPU = cpu.Seconds()
				}
			}
		}
	}
	return t
}

// Measured reports whether the tracker reads RAPL.
func (t *Tracker) Measured() bool { return t.measured }

// SetFLOPs records the FLOPs the process has counted so far.
func (t *Tracker) SetFLOPs(f float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flops = max(t.flops, f)
}

// Sample reads the process's counters now and returns its usage so far.
// A process that has exited keeps its last reading.
func (t *Tracker) Sample(now time.Time) Usage {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cpu, rss, err := ReadProc(t.m.opts.ProcRoot, t.pid); err == nil {
		t.cpu = max(t.cpu, cpu.Seconds())
		t.peak = max(t.peak, rss)
	}
	t.wall = max(t.wall, now.Sub(t.start).Seconds())
	t.readEnergy()
	return t.usage()
}

// Finish records the process's final counters, from its rusage after it
// exited (CPU-seconds of it and its children, peak RSS in bytes), and
// returns its usage.
func (t *Tracker) Finish(now time.Time, cpuSeconds float64, maxRSS int64) Usage {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cpu = max(t.cpu, cpuSeconds)
	t.peak = max(t.peak, maxRSS)
	t.wall = max(t.wall, now.Sub(t.start).Seconds())
	t.readEnergy()
	return t.usage()
}

// readEnergy adds the process's share of the package energy used since
// the last reading: ΔE × Δcpu(process) / Δbusy(machine), capped at ΔE.
// t.mu is held.
func (t *Tracker) readEnergy() {
	if !t.measured {
		return
	}
	zones, err := ReadRAPL(t.m.opts.SysRoot)
	if err != nil {
		return
	}
	busy, _, err := ReadStatCPU(t.m.opts.ProcRoot)
	if err != nil {
		return
	}
	dE := EnergyDelta(t.zones, zones)
	dBusy := float64(busy-min(busy, t.busy)) / ClockTicks
	dProc := t.cpu - t.procCPU
	if dBusy > 0 && dProc > 0 {
		t.joules += dE * min(1, dProc/dBusy)
	}
	t.zones, t.busy, t.procCPU = zones, busy, t.cpu
}

// usage builds the Usage of the readings so far; t.mu is held.
func (t *Tracker) usage() Usage {
	u := Usage{CPUSeconds: t.cpu, WallSeconds: t.wall, FLOPs: t.flops, PeakRSSBytes: t.peak}
	if t.measured {
		u.EnergyKWh, u.EnergySource = t.joules/joulesPerKWh, Measured
	} else {
		u.EnergyKWh, u.EnergySource = t.m.EstimateKWh(t.cpu), Estimated
	}
	return t.m.Price(u)
}
