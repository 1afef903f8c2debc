package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/meter"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/store"
)

// recipeBudget is the scheduler's BudgetOf: a stored recipe's budget.
func recipeBudget(normalized []byte) (meter.Budget, error) {
	r, err := recipe.Parse("stored recipe", normalized)
	if err != nil {
		return meter.Budget{}, err
	}
	return budgetOfRecipe(r.Budget), nil
}

func budgetOfRecipe(b recipe.Budget) meter.Budget {
	return meter.Budget{MaxSteps: int64(b.MaxSteps), MaxDuration: b.MaxDuration, MaxCostUSD: b.MaxCostUSD, MaxEnergyKWh: b.MaxEnergyKWh}
}

// ResumeRun raises the budget of a run stopped at it and queues it to
// resume from its last checkpoint (docs/metering.md: the run keeps its key
// and recipe; the raise is recorded with the run).
func (a *App) ResumeRun(ctx context.Context, id string, b api.Budget) (api.Run, error) {
	mb := meter.Budget{MaxSteps: b.MaxSteps, MaxCostUSD: b.MaxCostUSD, MaxEnergyKWh: b.MaxEnergyKWh}
	if b.MaxDuration != "" {
		d, err := time.ParseDuration(b.MaxDuration)
		if err != nil || d <= 0 {
			return api.Run{}, errs.Invalid("max_duration %q: want a positive Go duration such as 10m or 1h30m", b.MaxDuration)
		}
		mb.MaxDuration = d
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"max_steps", float64(b.MaxSteps)}, {"max_cost_usd", b.MaxCostUSD}, {"max_energy_kwh", b.MaxEnergyKWh}} {
		if f.v < 0 {
			return api.Run{}, errs.Invalid("%s: must be > 0 to raise it, got %v", f.name, f.v)
		}
	}
	r, err := a.sched.RaiseBudget(ctx, id, mb)
	if err != nil {
		return api.Run{}, err
	}
	return toAPIRun(r), nil
}

// RunUsage returns what a run used over its attempts and its budget in force.
func (a *App) RunUsage(ctx context.Context, id string) (api.RunUsage, error) {
	r, err := a.store.Run(ctx, id)
	if err != nil {
		return api.RunUsage{}, err
	}
	u, err := a.store.RunUsage(ctx, id)
	if errors.Is(err, errs.ErrNotFound) {
		u = store.RunUsage{RunID: id, Project: store.ProjectFrom(ctx), Day: r.CreatedAt.UTC().Format(time.DateOnly)}
	} else if err != nil {
		return api.RunUsage{}, err
	}
	out := api.RunUsage{RunID: u.RunID, Project: u.Project, Model: u.Model, Day: u.Day, CPUSeconds: u.CPUSeconds, WallSeconds: u.WallSeconds,
		FLOPs: u.FLOPs, PeakRSSBytes: u.PeakRSSBytes, EnergyKWh: u.EnergyKWh, EnergySource: u.EnergySource, CostUSD: u.CostUSD}
	rv, err := a.store.RecipeVersionByID(ctx, r.RecipeID)
	if err != nil {
		return api.RunUsage{}, err
	}
	b, err := recipeBudget(rv.Normalized)
	if err != nil {
		return api.RunUsage{}, err
	}
	if len(u.Budget) > 0 {
		var raised meter.Budget
		if err := json.Unmarshal(u.Budget, &raised); err != nil {
			return api.RunUsage{}, fmt.Errorf("run %s: stored budget: %w", id, err)
		}
		b = b.Override(raised)
	}
	out.Budget = api.Budget{MaxSteps: b.MaxSteps, MaxCostUSD: b.MaxCostUSD, MaxEnergyKWh: b.MaxEnergyKWh}
	if b.MaxDuration > 0 {
		out.Budget.MaxDuration = b.MaxDuration.String()
	}
	if len(u.Exceeded) > 0 {
		var e api.BudgetExceeded
		if err := json.Unmarshal(u.Exceeded, &e); err == nil {
			out.Exceeded = &e
		}
	}
	return out, nil
}

// Usage groups the metered usage of runs and served requests by project,
// model or day.
func (a *App) Usage(ctx context.Context, q api.UsageQuery) (api.UsageReport, error) {
	if !slices.Contains([]string{"project", "model", "day"}, q.By) {
		return api.UsageReport{}, errs.Invalid("by=%q: want project, model or day", q.By)
	}
	for _, d := range []struct{ name, v string }{{"from", q.From}, {"to", q.To}} {
		if d.v == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, d.v); err != nil {
			return api.UsageReport{}, errs.Invalid("%s=%q: want a day, YYYY-MM-DD", d.name, d.v)
		}
	}
	f := store.UsageFilter{Project: q.Project, From: q.From, To: q.To}
	runs, err := a.store.RunUsages(ctx, f)
	if err != nil {
		return api.UsageReport{}, err
	}
	reqs, err := a.store.RequestUsages(ctx, f)
	if err != nil {
		return api.UsageReport{}, err
	}
	rep := aggregateUsage(q.By, runs, reqs)
	rep.From, rep.To = q.From, q.To
	return rep, nil
}

// aggregateUsage adds runs and request rows up per key of by, rows in key
// order, with their total.
func aggregateUsage(by string, runs []store.RunUsage, reqs []store.RequestUsage) api.UsageReport {
	key := func(project, model, day string) string {
		switch by {
		case "project":
			return project
		case "model":
			return model
		}
		return day
	}
	rows := map[string]*api.UsageRow{}
	latSum := map[string]float64{}
	row := func(k string) *api.UsageRow {
		if rows[k] == nil {
			rows[k] = &api.UsageRow{Key: k}
		}
		return rows[k]
	}
	for _, u := range runs {
		r := row(key(u.Project, u.Model, u.Day))
		r.Runs++
		r.CPUSeconds += u.CPUSeconds
		r.WallSeconds += u.WallSeconds
		r.FLOPs += u.FLOPs
		r.PeakRSSBytes = max(r.PeakRSSBytes, u.PeakRSSBytes)
		r.EnergyKWh += u.EnergyKWh
		r.EnergySource = combineSource(r.EnergySource, u.EnergySource)
		r.CostUSD += u.CostUSD
	}
	for _, q := range reqs {
		k := key(q.Project, q.Model, q.Day)
		r := row(k)
		r.Requests += q.Requests
		r.TokensIn += q.TokensIn
		r.TokensOut += q.TokensOut
		latSum[k] += q.LatencyMSSum
		r.LatencyMSMax = max(r.LatencyMSMax, q.LatencyMSMax)
		r.EnergyKWh += q.EnergyKWh
		r.EnergySource = combineSource(r.EnergySource, q.EnergySource)
		r.CostUSD += q.CostUSD
	}
	rep := api.UsageReport{By: by, Rows: []api.UsageRow{}, Total: api.UsageRow{Key: "total"}}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var totalLat float64
	t := &rep.Total
	for _, k := range keys {
		r := rows[k]
		if r.Requests > 0 {
			r.LatencyMSAvg = latSum[k] / float64(r.Requests)
		}
		totalLat += latSum[k]
		rep.Rows = append(rep.Rows, *r)
		t.Runs += r.Runs
		t.CPUSeconds += r.CPUSeconds
		t.WallSeconds += r.WallSeconds
		t.FLOPs += r.FLOPs
		t.PeakRSSBytes = max(t.PeakRSSBytes, r.PeakRSSBytes)
		t.Requests += r.Requests
		t.TokensIn += r.TokensIn
		t.TokensOut += r.TokensOut
		t.LatencyMSMax = max(t.LatencyMSMax, r.LatencyMSMax)
		t.EnergyKWh += r.EnergyKWh
		t.EnergySource = combineSource(t.EnergySource, r.EnergySource)
		t.CostUSD += r.CostUSD
	}
	if t.Requests > 0 {
		t.LatencyMSAvg = totalLat / float64(t.Requests)
	}
	return rep
}

// combineSource is meter.Usage.Add's rule: measured only when every part is.
func combineSource(a, b string) string {
	return meter.Usage{EnergySource: a}.Add(meter.Usage{EnergySource: b}).EnergySource
}

// usageKey is one request usage row.
type usageKey struct{ project, model, day string }

// requestMeter adds served requests up per (project, model, day) in
// memory and stores the sums every FlushEvery, with the energy and cost the
// serving process used since the last flush apportioned by tokens
// (docs/metering.md). Memory and rows are bounded by the keys, never by
// the requests.
type requestMeter struct {
	store  store.Store
	meter  *meter.Meter
	logger *slog.Logger
	every  time.Duration
	now    func() time.Time
	pid    func() int // the process that runs the models
	done   chan struct{}

	mu      sync.Mutex
	pending map[usageKey]*store.RequestUsage

	// The serving process's meter, read only by run's goroutine.
	tracker *meter.Tracker
	trackee int
	last    meter.Usage
}

func newRequestMeter(st store.Store, m *meter.Meter, logger *slog.Logger, every time.Duration, now func() time.Time) *requestMeter {
	if every <= 0 {
		every = 10 * time.Second
	}
	return &requestMeter{store: st, meter: m, logger: logger, every: every, now: now, pid: os.Getpid, done: make(chan struct{}),
		pending: map[usageKey]*store.RequestUsage{}}
}

// record is serve.Options.Meter: it adds one request to its key. A request
// that resolved to no model is left out, so keys stay bounded by the
// served models whatever names clients send.
func (m *requestMeter) record(u serve.Usage) {
	if u.Model == "" {
		return
	}
	project := u.Tag
	if project == "" {
		project = store.DefaultProject
	}
	k := usageKey{project, u.Model, u.Time.UTC().Format(time.DateOnly)}
	ms := float64(u.Latency.Microseconds()) / 1000
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.pending[k]
	if r == nil {
		r = &store.RequestUsage{Project: k.project, Model: k.model, Day: k.day}
		m.pending[k] = r
	}
	r.Requests++
	r.TokensIn += int64(u.TokensIn)
	r.TokensOut += int64(u.TokensOut)
	r.LatencyMSSum += ms
	r.LatencyMSMax = max(r.LatencyMSMax, ms)
}

// run flushes every FlushEvery until ctx ends, then once more.
func (m *requestMeter) run(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.every)
	defer t.Stop()
	m.sample()
	for {
		select {
		case <-ctx.Done():
			m.flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			m.flush(ctx)
		}
	}
}

// sample returns the serving process's usage since the last sample (a new
// process, after a restart, starts its own count).
func (m *requestMeter) sample() meter.Usage {
	pid := m.pid()
	if m.tracker == nil || pid != m.trackee {
		m.tracker, m.trackee, m.last = m.meter.Track(pid, m.now()), pid, meter.Usage{}
	}
	u := m.tracker.Sample(m.now())
	d := meter.Usage{CPUSeconds: u.CPUSeconds - m.last.CPUSeconds, EnergyKWh: u.EnergyKWh - m.last.EnergyKWh,
		CostUSD: u.CostUSD - m.last.CostUSD, EnergySource: u.EnergySource}
	m.last = u
	return d
}

// flush stores the pending sums, each with its share of the serving
// energy and cost since the last flush: share = its tokens (in + out) /
// all tokens in the interval (by requests when no request had tokens).
func (m *requestMeter) flush(ctx context.Context) {
	used := m.sample()
	m.mu.Lock()
	pending := m.pending
	m.pending = map[usageKey]*store.RequestUsage{}
	m.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	rows := make([]store.RequestUsage, 0, len(pending))
	for _, r := range pending {
		rows = append(rows, *r)
	}
	apportion(rows, used)
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return a.Day+"\x00"+a.Project+"\x00"+a.Model < b.Day+"\x00"+b.Project+"\x00"+b.Model
	})
	if err := m.store.AddRequestUsage(ctx, rows); err != nil {
		m.logger.Error("store request usage", "rows", len(rows), "err", err)
	}
}

// apportion gives each row its share of used's energy and cost by tokens.
func apportion(rows []store.RequestUsage, used meter.Usage) {
	var tokens, requests int64
	for _, r := range rows {
		tokens += r.TokensIn + r.TokensOut
		requests += r.Requests
	}
	for i := range rows {
		var share float64
		switch {
		case tokens > 0:
			share = float64(rows[i].TokensIn+rows[i].TokensOut) / float64(tokens)
		case requests > 0:
			share = float64(rows[i].Requests) / float64(requests)
		}
		rows[i].EnergyKWh = max(0, used.EnergyKWh*share)
		rows[i].CostUSD = max(0, used.CostUSD*share)
		rows[i].EnergySource = used.EnergySource
	}
}
