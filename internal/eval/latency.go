package eval

import (
	"math"
	"slices"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// LatencyStats summarise per-prediction latencies, in milliseconds.
// Percentiles interpolate linearly between the closest ranks (NumPy's
// default "linear" method): for sorted x_0..x_{n-1} the q-th percentile is
// at position h = (n−1)·q/100, x_⌊h⌋ + (h−⌊h⌋)·(x_⌊h⌋+1 − x_⌊h⌋).
type LatencyStats struct {
	N      int     `json:"n"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// LatencyOf summarises the given durations. Negative durations and an
// empty list are errors.
func LatencyOf(ds []time.Duration) (LatencyStats, error) {
	if len(ds) == 0 {
		return LatencyStats{}, errs.Invalid("latency: no durations")
	}
	ms := make([]float64, len(ds))
	sum := 0.0
	for i, d := range ds {
		if d < 0 {
			return LatencyStats{}, errs.Invalid("latency %d: negative duration %v", i, d)
		}
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	slices.Sort(ms)
	return LatencyStats{
		N:      len(ms),
		MeanMs: sum / float64(len(ms)),
		P50Ms:  Percentile(ms, 50),
		P95Ms:  Percentile(ms, 95),
		P99Ms:  Percentile(ms, 99),
		MaxMs:  ms[len(ms)-1],
	}, nil
}

// Percentile returns the q-th percentile (0 ≤ q ≤ 100) of sorted, a
// non-empty ascending slice, by linear interpolation between closest ranks.
func Percentile(sorted []float64, q float64) float64 {
	h := float64(len(sorted)-1) * q / 100
	lo := int(math.Floor(h))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// latencyOfPredictions returns nil when no prediction has a latency.
func latencyOfPredictions(preds []Prediction) (*LatencyStats, error) {
	if !slices.ContainsFunc(preds, func(p Prediction) bool { return p.Latency != 0 }) {
		return nil, nil
	}
	ds := make([]time.Duration, len(preds))
	for i, p := range preds {
		if p.Latency <= 0 {
			return nil, errs.Invalid("prediction %d%s: latency %v; give a positive latency for every prediction or for none", i, idNote(p.ID), p.Latency)
		}
		ds[i] = p.Latency
	}
	s, err := LatencyOf(ds)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// EnergyModel turns CPU time into energy and money. Zero fields take the
// defaults.
type EnergyModel struct {
	// WattsPerCore is the power drawn by one fully busy core, including its
	// share of memory and uncore. Default 10 W (a 200 W two-socket server
	// spread over 20 busy cores).
	WattsPerCore float64 `json:"watts_per_core"`
	// PricePerKWh is the electricity price. Default 0.15.
	PricePerKWh float64 `json:"price_per_kwh"`
	// Currency labels the price. Default "USD".
	Currency string `json:"currency"`
}

// Defaults of EnergyModel.
const (
	DefaultWattsPerCore = 10.0
	DefaultPricePerKWh  = 0.15
	DefaultCurrency     = "USD"
)

func (m EnergyModel) withDefaults() EnergyModel {
	if m.WattsPerCore == 0 {
		m.WattsPerCore = DefaultWattsPerCore
	}
	if m.PricePerKWh == 0 {
		m.PricePerKWh = DefaultPricePerKWh
	}
	if m.Currency == "" {
		m.Currency = DefaultCurrency
	}
	return m
}

// Cost is the resource use per 1,000 predictions:
// energy (Wh) = CPU-seconds × WattsPerCore / 3600, cost = energy/1000 ×
// PricePerKWh, each scaled by 1000/N.
type Cost struct {
	N               int         `json:"n"`
	CPUSecondsPer1k float64     `json:"cpu_seconds_per_1k"`
	EnergyWhPer1k   float64     `json:"energy_wh_per_1k"`
	CostPer1k       float64     `json:"cost_per_1k"`
	Model           EnergyModel `json:"model"`
	TotalCPUSeconds float64     `json:"total_cpu_seconds"`
}

// CostOf computes the cost per 1k predictions of n predictions that used
// cpuSeconds of CPU time in total.
func CostOf(cpuSeconds float64, n int, m EnergyModel) (Cost, error) {
	m = m.withDefaults()
	switch {
	case n <= 0:
		return Cost{}, errs.Invalid("cost: %d predictions, want at least 1", n)
	case math.IsNaN(cpuSeconds) || math.IsInf(cpuSeconds, 0) || cpuSeconds < 0:
		return Cost{}, errs.Invalid("cost: CPU seconds %v, want a finite number ≥ 0", cpuSeconds)
	case !(m.WattsPerCore > 0) || math.IsInf(m.WattsPerCore, 0):
		return Cost{}, errs.Invalid("energy model: watts_per_core %v, want a positive number", m.WattsPerCore)
	case !(m.PricePerKWh > 0) || math.IsInf(m.PricePerKWh, 0):
		return Cost{}, errs.Invalid("energy model: price_per_kwh %v, want a positive number", m.PricePerKWh)
	}
	per1k := cpuSeconds * 1000 / float64(n)
	wh := per1k * m.WattsPerCore / 3600
	return Cost{
		N:               n,
		CPUSecondsPer1k: per1k,
		EnergyWhPer1k:   wh,
		CostPer1k:       wh / 1000 * m.PricePerKWh,
		Model:           m,
		TotalCPUSeconds: cpuSeconds,
	}, nil
}

// costOfPredictions returns nil when no prediction has CPU seconds.
func costOfPredictions(preds []Prediction, m EnergyModel) (*Cost, error) {
	if !slices.ContainsFunc(preds, func(p Prediction) bool { return p.CPUSeconds != 0 }) {
		return nil, nil
	}
	total := 0.0
	for i, p := range preds {
		if !(p.CPUSeconds > 0) || math.IsInf(p.CPUSeconds, 0) {
			return nil, errs.Invalid("prediction %d%s: cpu_seconds %v; give a positive value for every prediction or for none", i, idNote(p.ID), p.CPUSeconds)
		}
		total += p.CPUSeconds
	}
	c, err := CostOf(total, len(preds), m)
	if err != nil {
		return nil, err
	}
	return &c, nil
}
