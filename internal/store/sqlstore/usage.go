package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/store"
)

const runUsageCols = `run_id, project, model, day, cpu_seconds, wall_seconds, flops, peak_rss_bytes, energy_kwh, energy_source, cost_usd,
	budget, exceeded, updated_at`

func scanRunUsage(sc scanner) (store.RunUsage, error) {
	var u store.RunUsage
	var budget, exceeded sql.NullString
	var updated string
	if err := sc.Scan(&u.RunID, &u.Project, &u.Model, &u.Day, &u.CPUSeconds, &u.WallSeconds, &u.FLOPs, &u.PeakRSSBytes, &u.EnergyKWh,
		&u.EnergySource, &u.CostUSD, &budget, &exceeded, &updated); err != nil {
		return u, err
	}
	u.Budget, u.Exceeded = rawJSON(budget), rawJSON(exceeded)
	var err error
	u.UpdatedAt, err = parseTime("run usage "+u.RunID+" updated_at", updated)
	return u, err
}

// checkDay checks a YYYY-MM-DD day.
func checkDay(what, day string) error {
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return errs.Invalid("%s: day %q: want YYYY-MM-DD", what, day)
	}
	return nil
}

// checkAmounts refuses negative, NaN or infinite amounts.
func checkAmounts(what string, named ...any) error {
	for i := 0; i+1 < len(named); i += 2 {
		var f float64
		switch v := named[i+1].(type) {
		case float64:
			f = v
		case int64:
			f = float64(v)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return errs.Invalid("%s: %s is %v; want a finite amount >= 0", what, named[i], named[i+1])
		}
	}
	return nil
}

func checkSource(what, src string) error {
	switch src {
	case "", "measured", "estimated":
		return nil
	}
	return errs.Invalid("%s: energy_source %q: want measured or estimated", what, src)
}

// SaveRunUsage inserts or updates the usage row of u.RunID.
func (s *Store) SaveRunUsage(ctx context.Context, u store.RunUsage) (store.RunUsage, error) {
	what := fmt.Sprintf("save usage of run %q", u.RunID)
	if err := required(what, "run_id", u.RunID); err != nil {
		return u, err
	}
	if u.Project == "" {
		u.Project = store.ProjectFrom(ctx)
	}
	if u.Day == "" {
		u.Day = s.now().Format(time.DateOnly)
	}
	if err := checkDay(what, u.Day); err != nil {
		return u, err
	}
	if err := checkAmounts(what, "cpu_seconds", u.CPUSeconds, "wall_seconds", u.WallSeconds, "flops", u.FLOPs,
		"peak_rss_bytes", u.PeakRSSBytes, "energy_kwh", u.EnergyKWh, "cost_usd", u.CostUSD); err != nil {
		return u, err
	}
	if err := checkSource(what, u.EnergySource); err != nil {
		return u, err
	}
	budget, err := nullJSON(what+" budget", u.Budget)
	if err != nil {
		return u, err
	}
	exceeded, err := nullJSON(what+" exceeded", u.Exceeded)
	if err != nil {
		return u, err
	}
	u.UpdatedAt = s.orNow(u.UpdatedAt)
	updated, err := formatTime(what+" updated_at", u.UpdatedAt)
	if err != nil {
		return u, err
	}
	var out store.RunUsage
	err = s.write(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO run_usage (`+runUsageCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id) DO UPDATE SET cpu_seconds = excluded.cpu_seconds, wall_seconds = excluded.wall_seconds,
			flops = excluded.flops, peak_rss_bytes = excluded.peak_rss_bytes, energy_kwh = excluded.energy_kwh,
			energy_source = excluded.energy_source, cost_usd = excluded.cost_usd, budget = excluded.budget,
			exceeded = excluded.exceeded, updated_at = excluded.updated_at`,
			u.RunID, u.Project, u.Model, u.Day, u.CPUSeconds, u.WallSeconds, u.FLOPs, u.PeakRSSBytes, u.EnergyKWh, u.EnergySource,
			u.CostUSD, budget, exceeded, updated); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		out, err = scanRunUsage(tx.QueryRowContext(ctx, `SELECT `+runUsageCols+` FROM run_usage WHERE run_id = ?`, u.RunID))
		return err
	})
	return out, err
}

// RunUsage returns the usage row of a run. Usage rows carry their project
// as data (UsageFilter selects by it); callers check the run is in their
// project first.
func (s *Store) RunUsage(ctx context.Context, runID string) (store.RunUsage, error) {
	u, err := scanRunUsage(s.r.QueryRowContext(ctx, `SELECT `+runUsageCols+` FROM run_usage WHERE run_id = ?`, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return u, errs.NotFound("run %q: no usage recorded", runID)
	}
	return u, err
}

// usageWhere builds the WHERE clause of a filter.
func usageWhere(f store.UsageFilter) (string, []any) {
	var conds []string
	var args []any
	if f.Project != "" {
		conds, args = append(conds, "project = ?"), append(args, f.Project)
	}
	if f.From != "" {
		conds, args = append(conds, "day >= ?"), append(args, f.From)
	}
	if f.To != "" {
		conds, args = append(conds, "day <= ?"), append(args, f.To)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// RunUsages lists run usage rows by day, then run id.
func (s *Store) RunUsages(ctx context.Context, f store.UsageFilter) ([]store.RunUsage, error) {
	where, args := usageWhere(f)
	// #nosec G202 -- only constant column lists and conditions with "?" placeholders are concatenated
	rows, err := s.r.QueryContext(ctx, `SELECT `+runUsageCols+` FROM run_usage`+where+` ORDER BY day, run_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.RunUsage
	for rows.Next() {
		u, err := scanRunUsage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

const requestUsageCols = `project, model, day, requests, tokens_in, tokens_out, latency_ms_sum, latency_ms_max, energy_kwh, energy_source, cost_usd`

// AddRequestUsage adds rows into their (project, model, day) rows.
func (s *Store) AddRequestUsage(ctx context.Context, rows []store.RequestUsage) error {
	for i, r := range rows {
		what := fmt.Sprintf("add request usage row %d (model %q, day %q)", i, r.Model, r.Day)
		if err := required(what, "model", r.Model); err != nil {
			return err
		}
		if err := checkDay(what, r.Day); err != nil {
			return err
		}
		if err := checkAmounts(what, "requests", r.Requests, "tokens_in", r.TokensIn, "tokens_out", r.TokensOut,
			"latency_ms_sum", r.LatencyMSSum, "latency_ms_max", r.LatencyMSMax, "energy_kwh", r.EnergyKWh, "cost_usd", r.CostUSD); err != nil {
			return err
		}
		if err := checkSource(what, r.EnergySource); err != nil {
			return err
		}
	}
	return s.write(ctx, func(tx *Tx) error {
		for _, r := range rows {
			if r.Project == "" {
				r.Project = store.DefaultProject
			}
			// The source stays measured only while every part added was.
			if _, err := tx.ExecContext(ctx, `INSERT INTO request_usage AS u (`+requestUsageCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (day, project, model) DO UPDATE SET requests = u.requests + excluded.requests,
				tokens_in = u.tokens_in + excluded.tokens_in, tokens_out = u.tokens_out + excluded.tokens_out,
				latency_ms_sum = u.latency_ms_sum + excluded.latency_ms_sum,
				latency_ms_max = CASE WHEN excluded.latency_ms_max > u.latency_ms_max THEN excluded.latency_ms_max ELSE u.latency_ms_max END,
				energy_kwh = u.energy_kwh + excluded.energy_kwh, cost_usd = u.cost_usd + excluded.cost_usd,
				energy_source = CASE WHEN u.energy_source = '' THEN excluded.energy_source
					WHEN excluded.energy_source = '' OR excluded.energy_source = u.energy_source THEN u.energy_source
					ELSE 'estimated' END`,
				r.Project, r.Model, r.Day, r.Requests, r.TokensIn, r.TokensOut, r.LatencyMSSum, r.LatencyMSMax, r.EnergyKWh,
				r.EnergySource, r.CostUSD); err != nil {
				return fmt.Errorf("add request usage of model %q on %s: %w", r.Model, r.Day, err)
			}
		}
		return nil
	})
}

// RequestUsages lists request usage rows by day, project, then model.
func (s *Store) RequestUsages(ctx context.Context, f store.UsageFilter) ([]store.RequestUsage, error) {
	where, args := usageWhere(f)
	// #nosec G202 -- only constant column lists and conditions with "?" placeholders are concatenated
	rows, err := s.r.QueryContext(ctx, `SELECT `+requestUsageCols+` FROM request_usage`+where+` ORDER BY day, project, model`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.RequestUsage
	for rows.Next() {
		var r store.RequestUsage
		if err := rows.Scan(&r.Project, &r.Model, &r.Day, &r.Requests, &r.TokensIn, &r.TokensOut, &r.LatencyMSSum, &r.LatencyMSMax,
			&r.EnergyKWh, &r.EnergySource, &r.CostUSD); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
