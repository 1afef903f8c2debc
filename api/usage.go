package api

import (
	"context"
	"net/url"
)

// Budget raises limits of a run stopped at its budget (POST
// /v1/runs/{id}/resume). Set fields replace the recipe's; zero ones keep
// it. MaxDuration is a Go duration ("10m").
type Budget struct {
	MaxSteps     int64   `json:"max_steps,omitempty"`
	MaxDuration  string  `json:"max_duration,omitempty"`
	MaxCostUSD   float64 `json:"max_cost_usd,omitempty"`
	MaxEnergyKWh float64 `json:"max_energy_kwh,omitempty"`
}

// RunUsage is what one run used over all its attempts (GET
// /v1/runs/{id}/usage).
type RunUsage struct {
	RunID        string  `json:"run_id"`
	Project      string  `json:"project"`
	Model        string  `json:"model"`
	Day          string  `json:"day"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	WallSeconds  float64 `json:"wall_seconds"`
	FLOPs        float64 `json:"flops"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	EnergyKWh    float64 `json:"energy_kwh"`
	// EnergySource is "measured" (RAPL) or "estimated" (CPU × watts per core).
	EnergySource string  `json:"energy_source,omitempty"`
	CostUSD      float64 `json:"cost_usd"`
	// Budget is the budget in force: the recipe's, with raised fields.
	Budget Budget `json:"budget"`
	// Exceeded is the limit the run was stopped at, if it was.
	Exceeded *BudgetExceeded `json:"exceeded,omitempty"`
}

// BudgetExceeded names the limit a run reached, its value and the value
// measured.
type BudgetExceeded struct {
	Limit    string `json:"limit"`
	Value    string `json:"value"`
	Measured string `json:"measured"`
	Source   string `json:"source,omitempty"`
}

// UsageRow is the usage of one project, model or day: runs and served
// requests together.
type UsageRow struct {
	Key          string  `json:"key"`
	Runs         int64   `json:"runs"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	WallSeconds  float64 `json:"wall_seconds"`
	FLOPs        float64 `json:"flops"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	Requests     int64   `json:"requests"`
	TokensIn     int64   `json:"tokens_in"`
	TokensOut    int64   `json:"tokens_out"`
	LatencyMSAvg float64 `json:"latency_ms_avg"`
	LatencyMSMax float64 `json:"latency_ms_max"`
	EnergyKWh    float64 `json:"energy_kwh"`
	// EnergySource is "measured" when every part was, else "estimated".
	EnergySource string  `json:"energy_source,omitempty"`
	CostUSD      float64 `json:"cost_usd"`
}

// UsageReport is GET /v1/usage: rows grouped By "project", "model" or
// "day", in key order, and their total.
type UsageReport struct {
	By    string     `json:"by"`
	From  string     `json:"from,omitempty"`
	To    string     `json:"to,omitempty"`
	Rows  []UsageRow `json:"rows"`
	Total UsageRow   `json:"total"`
}

// UsageQuery selects a usage report; From and To are YYYY-MM-DD (both
// included), Project keeps one project.
type UsageQuery struct {
	By, From, To, Project string
}

// Usage returns metered usage grouped by q.By.
func (c *Client) Usage(ctx context.Context, q UsageQuery) (UsageReport, error) {
	v := url.Values{"by": {q.By}}
	for k, s := range map[string]string{"from": q.From, "to": q.To, "project": q.Project} {
		if s != "" {
			v.Set(k, s)
		}
	}
	var out UsageReport
	return out, c.do(ctx, "GET", "/v1/usage", v, nil, "", &out)
}

// RunUsage returns what a run used and its budget.
func (c *Client) RunUsage(ctx context.Context, id string) (RunUsage, error) {
	var out RunUsage
	return out, c.do(ctx, "GET", "/v1/runs/"+url.PathEscape(id)+"/usage", nil, nil, "", &out)
}

// ResumeRun raises the budget of a run stopped at it (state
// budget_exceeded) and queues it to resume from its last checkpoint.
func (c *Client) ResumeRun(ctx context.Context, id string, b Budget) (Run, error) {
	body, err := c.jsonBody(b)
	if err != nil {
		return Run{}, err
	}
	var out Run
	return out, c.do(ctx, "POST", "/v1/runs/"+url.PathEscape(id)+"/resume", nil, body, "application/json", &out)
}
