// Package meter measures what a run or a served request uses and what it
// costs: CPU-seconds, wall time, peak resident memory, engine-counted
// FLOPs and energy, priced from configured rates, and checks a run's usage
// against its budget.
//
// Energy is measured from RAPL (/sys/class/powercap) where the counters are
// readable, and otherwise estimated from CPU time × watts per core; every
// figure says which ("measured" or "estimated"). docs/metering.md has the
// formulas. The /proc and /sys roots are parameters, so tests read fake
// trees from testdata/.
//
// This package imports only the standard library and internal/errs; the
// scheduler, the worker and the application import it.
package meter

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Energy sources.
const (
	Measured  = "measured"  // RAPL counters, apportioned by CPU time
	Estimated = "estimated" // CPU-seconds × watts per core
)

// Options configure a Meter. Zero values take the documented defaults.
type Options struct {
	// ProcRoot is where procfs is mounted (default "/proc").
	ProcRoot string
	// SysRoot is where sysfs is mounted (default "/sys"); RAPL is read
	// from SysRoot/class/powercap.
	SysRoot string
	// WattsPerCore is the estimate's power draw of one fully busy core
	// (default 10 W: a 200 W server CPU over 20 cores).
	WattsPerCore float64
	// CostCPUHourUSD prices one CPU-hour (default 0.04; negative: free).
	CostCPUHourUSD float64
	// CostKWhUSD prices one kilowatt-hour (default 0.15; negative: free).
	CostKWhUSD float64
	// NoRAPL forces the estimate even where RAPL is readable.
	NoRAPL bool
}

// Default rates.
const (
	DefaultWattsPerCore   = 10.0
	DefaultCostCPUHourUSD = 0.04
	DefaultCostKWhUSD     = 0.15
)

// Meter prices and tracks usage. It holds no mutable state: a Tracker
// holds one process's readings.
type Meter struct {
	opts Options
}

// New returns a meter with the defaults filled in.
func New(opts Options) *Meter {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/sys"
	}
	if opts.WattsPerCore <= 0 {
		opts.WattsPerCore = DefaultWattsPerCore
	}
	for _, r := range []struct {
		v   *float64
		def float64
	}{{&opts.CostCPUHourUSD, DefaultCostCPUHourUSD}, {&opts.CostKWhUSD, DefaultCostKWhUSD}} {
		switch {
		case *r.v == 0:
			*r.v = r.def
		case *r.v < 0:
			*r.v = 0
		}
	}
	return &Meter{opts: opts}
}

// Options returns the meter's options with defaults applied.
func (m *Meter) Options() Options { return m.opts }

// Usage is what one run (all its attempts) or one group of requests used.
type Usage struct {
	CPUSeconds   float64 `json:"cpu_seconds"`
	WallSeconds  float64 `json:"wall_seconds"`
	FLOPs        float64 `json:"flops"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	EnergyKWh    float64 `json:"energy_kwh"`
	// EnergySource is Measured or Estimated ("" while nothing was used).
	EnergySource string  `json:"energy_source,omitempty"`
	CostUSD      float64 `json:"cost_usd"`
}

// Add returns the sum of u and v: times, FLOPs, energy and cost add up,
// the peak is the larger one, and the energy is measured only when both
// parts were.
func (u Usage) Add(v Usage) Usage {
	out := Usage{CPUSeconds: u.CPUSeconds + v.CPUSeconds, WallSeconds: u.WallSeconds + v.WallSeconds, FLOPs: u.FLOPs + v.FLOPs,
		PeakRSSBytes: max(u.PeakRSSBytes, v.PeakRSSBytes), EnergyKWh: u.EnergyKWh + v.EnergyKWh, CostUSD: u.CostUSD + v.CostUSD}
	out.EnergySource = combineSource(u.EnergySource, v.EnergySource)
	return out
}

func combineSource(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "", a == b:
		return a
	}
	return Estimated
}

// joulesPerKWh converts joules to kilowatt-hours.
const joulesPerKWh = 3.6e6

// EstimateKWh is the energy model used without RAPL: every CPU-second
// draws WattsPerCore watts, so E = CPU-seconds × W / 3.6e6 kWh.
func (m *Meter) EstimateKWh(cpuSeconds float64) float64 {
	return cpuSeconds * m.opts.WattsPerCore / joulesPerKWh
}

// Cost prices CPU time and energy: CPU-hours × CostCPUHourUSD + kWh ×
// CostKWhUSD.
func (m *Meter) Cost(cpuSeconds, kwh float64) float64 {
	return cpuSeconds/3600*m.opts.CostCPUHourUSD + kwh*m.opts.CostKWhUSD
}

// Price fills u's CostUSD from its CPU-seconds and energy.
func (m *Meter) Price(u Usage) Usage {
	u.CostUSD = m.Cost(u.CPUSeconds, u.EnergyKWh)
	return u
}

// TrainFLOPs counts the floating-point operations of training on tokens
// tokens with a model of params parameters of which trainable are trained:
// the forward pass costs 2·params per token, the backward pass 2·params for
// the activation gradients and 2·trainable for the weight gradients, so
// FLOPs = (4·params + 2·trainable)·tokens: 6·params·tokens for a full fine
// tune. Attention's sequence-length term is left out (docs/metering.md).
func TrainFLOPs(params, trainable, tokens int64) float64 {
	return (4*float64(params) + 2*float64(trainable)) * float64(tokens)
}

// InferFLOPs counts a forward pass over tokens tokens: 2·params·tokens.
func InferFLOPs(params, tokens int64) float64 {
	return 2 * float64(params) * float64(tokens)
}

// Budget caps a run; a zero field is no cap.
type Budget struct {
	MaxSteps     int64         `json:"max_steps,omitempty"`
	MaxDuration  time.Duration `json:"max_duration,omitempty"`
	MaxCostUSD   float64       `json:"max_cost_usd,omitempty"`
	MaxEnergyKWh float64       `json:"max_energy_kwh,omitempty"`
}

// IsZero reports whether b caps nothing.
func (b Budget) IsZero() bool { return b == Budget{} }

// Override returns b with every field that o sets replaced by o's.
func (b Budget) Override(o Budget) Budget {
	if o.MaxSteps > 0 {
		b.MaxSteps = o.MaxSteps
	}
	if o.MaxDuration > 0 {
		b.MaxDuration = o.MaxDuration
	}
	if o.MaxCostUSD > 0 {
		b.MaxCostUSD = o.MaxCostUSD
	}
	if o.MaxEnergyKWh > 0 {
		b.MaxEnergyKWh = o.MaxEnergyKWh
	}
	return b
}

// String lists the caps that are set, in a fixed order.
func (b Budget) String() string {
	var parts []string
	if b.MaxSteps > 0 {
		parts = append(parts, fmt.Sprintf("max_steps=%d", b.MaxSteps))
	}
	if b.MaxDuration > 0 {
		parts = append(parts, "max_duration="+b.MaxDuration.String())
	}
	if b.MaxCostUSD > 0 {
		parts = append(parts, "max_cost_usd="+formatFloat(b.MaxCostUSD))
	}
	if b.MaxEnergyKWh > 0 {
		parts = append(parts, "max_energy_kwh="+formatFloat(b.MaxEnergyKWh))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// Exceeded names the limit a run reached: Limit is the budget field, Value
// the limit and Measured what was used, both as text in the field's unit.
type Exceeded struct {
	Limit    string `json:"limit"`
	Value    string `json:"value"`
	Measured string `json:"measured"`
	Source   string `json:"source,omitempty"` // energy_kwh and cost: measured or estimated
}

func (e *Exceeded) Error() string {
	s := fmt.Sprintf("budget %s %s reached: measured %s", e.Limit, e.Value, e.Measured)
	if e.Source != "" {
		s += " (energy " + e.Source + ")"
	}
	return s
}

// Check returns the first limit of b that u at step reaches, in the order
// max_steps, max_duration, max_cost_usd, max_energy_kwh; nil when none is.
// Duration is the run's wall time over all its attempts.
func (b Budget) Check(u Usage, step int64) *Exceeded {
	switch {
	case b.MaxSteps > 0 && step >= b.MaxSteps:
		return &Exceeded{Limit: "max_steps", Value: fmt.Sprint(b.MaxSteps), Measured: fmt.Sprintf("step %d", step)}
	case b.MaxDuration > 0 && u.WallSeconds >= b.MaxDuration.Seconds():
		return &Exceeded{Limit: "max_duration", Value: b.MaxDuration.String(),
			Measured: (time.Duration(u.WallSeconds * float64(time.Second))).Round(time.Millisecond).String()}
	case b.MaxCostUSD > 0 && u.CostUSD >= b.MaxCostUSD:
		return &Exceeded{Limit: "max_cost_usd", Value: formatFloat(b.MaxCostUSD), Measured: formatFloat(u.CostUSD) + " USD",
			Source: u.EnergySource}
	case b.MaxEnergyKWh > 0 && u.EnergyKWh >= b.MaxEnergyKWh:
		return &Exceeded{Limit: "max_energy_kwh", Value: formatFloat(b.MaxEnergyKWh), Measured: formatFloat(u.EnergyKWh) + " kWh",
			Source: u.EnergySource}
	}
	return nil
}

// formatFloat writes f with up to 6 significant digits, no exponent for
// everyday magnitudes.
func formatFloat(f float64) string {
	if f != 0 && (math.Abs(f) < 1e-4 || math.Abs(f) >= 1e9) {
		return fmt.Sprintf("%.4g", f)
	}
	return fmt.Sprintf("%.6g", f)
}
