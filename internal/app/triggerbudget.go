package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/meter"
	"github.com/tailor-ml/tailor/internal/store"
	"github.com/tailor-ml/tailor/internal/trigger"
)

// triggerBudgetReached sums the usage of the runs that the firings of
// trigger name created in the budget's period started (each run once) and
// returns the first limit of b that sum reaches, nil when none is.
func (a *App) triggerBudgetReached(ctx context.Context, name string, b *trigger.Budget, now time.Time) (*meter.Exceeded, error) {
	since := now.Add(-b.PeriodDuration())
	fs, err := a.store.Firings(ctx, store.FiringFilter{Trigger: name})
	if err != nil {
		return nil, err
	}
	var used meter.Usage
	seen := map[string]bool{}
	for _, f := range fs {
		if f.CreatedAt.Before(since) {
			continue
		}
		for _, id := range runIDs(f.Results) {
			if seen[id] {
				continue
			}
			seen[id] = true
			u, err := a.store.RunUsage(ctx, id)
			if errors.Is(err, errs.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			used = used.Add(meter.Usage{WallSeconds: u.WallSeconds, EnergyKWh: u.EnergyKWh, EnergySource: u.EnergySource, CostUSD: u.CostUSD})
		}
	}
	mb := meter.Budget{MaxDuration: b.MaxDurationValue(), MaxCostUSD: b.MaxCostUSD, MaxEnergyKWh: b.MaxEnergyKWh}
	return mb.Check(used, 0), nil
}

// runIDs collects every "run_id" in a firing's results (retrain and
// evaluate results, and both sides of a rebase comparison), in order.
func runIDs(results json.RawMessage) []string {
	var v any
	if json.Unmarshal(results, &v) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if id, ok := x["run_id"].(string); ok && id != "" {
				out = append(out, id)
			}
			for _, k := range []string{"compare", "old", "new"} {
				if sub, ok := x[k]; ok {
					walk(sub)
				}
			}
		}
	}
	walk(v)
	return out
}

// budgetSkipReason is the reason a firing refused by its trigger's budget
// is recorded with.
func budgetSkipReason(reason string, e *meter.Exceeded, b *trigger.Budget) string {
	return fmt.Sprintf("over budget: %s; %v over the last %s by the runs of this trigger; raise limits.budget or wait", reason, e, b.PeriodDuration())
}
