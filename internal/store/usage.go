package store

import (
	"context"
	"encoding/json"
	"time"
)

// RunBudgetExceeded is the state of a run stopped at a limit of its
// budget. It keeps its last checkpoint; raising the budget moves it back
// to queued and it resumes from there (docs/metering.md). CreateRunOnce
// counts it with queued, running and succeeded: its key has a run.
const RunBudgetExceeded RunState = "budget_exceeded"

// RunUsage is what one run used over all its attempts, and the budget
// raised for it. Project, Model and Day are set by the first save and kept.
type RunUsage struct {
	RunID   string `json:"run_id"`
	Project string `json:"project"`
	Model   string `json:"model"` // the model the run trains or evaluates (its recipe's name)
	Day     string `json:"day"`   // UTC day the run was created, YYYY-MM-DD

	CPUSeconds   float64 `json:"cpu_seconds"`
	WallSeconds  float64 `json:"wall_seconds"`
	FLOPs        float64 `json:"flops"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	EnergyKWh    float64 `json:"energy_kwh"`
	EnergySource string  `json:"energy_source,omitempty"` // "measured" or "estimated"
	CostUSD      float64 `json:"cost_usd"`

	// Budget is the raised budget (a JSON object of the recipe's budget
	// fields) that replaces the recipe's, field by field; nil when none
	// was raised.
	Budget json.RawMessage `json:"budget,omitempty"`
	// Exceeded is the last limit the run reached (JSON: limit, value,
	// measured), nil when none.
	Exceeded  json.RawMessage `json:"exceeded,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// RequestUsage is the served requests of one model in one project on one
// UTC day, added up: rows are bounded by (project, model, day), never one
// per request.
type RequestUsage struct {
	Project      string  `json:"project"`
	Model        string  `json:"model"`
	Day          string  `json:"day"`
	Requests     int64   `json:"requests"`
	TokensIn     int64   `json:"tokens_in"`
	TokensOut    int64   `json:"tokens_out"`
	LatencyMSSum float64 `json:"latency_ms_sum"`
	LatencyMSMax float64 `json:"latency_ms_max"`
	EnergyKWh    float64 `json:"energy_kwh"`
	EnergySource string  `json:"energy_source,omitempty"`
	CostUSD      float64 `json:"cost_usd"`
}

// UsageFilter selects usage rows; zero fields match everything. Days are
// YYYY-MM-DD, both ends included.
type UsageFilter struct {
	Project  string
	From, To string
}

// UsageStore keeps metering: one row per run, one per (project, model,
// day) of served requests.
type UsageStore interface {
	// SaveRunUsage stores u's usage, budget and exceeded limit for its
	// run, inserting the row on the first save (Project defaults to
	// ProjectFrom(ctx)); later saves keep the row's Project, Model and Day.
	SaveRunUsage(ctx context.Context, u RunUsage) (RunUsage, error)
	// RunUsage returns a run's usage; errs.ErrNotFound before its first
	// save. Usage rows carry their Project as data, whatever ctx's project
	// is: a caller serving a request checks the run is in its project.
	RunUsage(ctx context.Context, runID string) (RunUsage, error)
	// RunUsages lists run usage rows by day, then run id.
	RunUsages(ctx context.Context, f UsageFilter) ([]RunUsage, error)
	// AddRequestUsage adds each row's counts, energy and cost into the
	// stored row of its (project, model, day), keeping the larger latency
	// maximum, in one transaction.
	AddRequestUsage(ctx context.Context, rows []RequestUsage) error
	// RequestUsages lists request usage rows by day, project, then model.
	RequestUsages(ctx context.Context, f UsageFilter) ([]RequestUsage, error)
}
