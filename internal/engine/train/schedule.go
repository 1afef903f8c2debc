package train

import (
	"math"

	"github.com/tailor-ml/tailor/internal/errs"
)

// LRFactor returns the multiplier of the base learning rate after `step`
// completed optimizer steps (0-based: the first update uses step 0), for a
// run of `total` steps with `warmup` warmup steps. The formulas are those of
// Hugging Face transformers:
//
//	warmup (all):  step < warmup → step / max(1, warmup)
//	constant:      1                         (get_constant_schedule_with_warmup)
//	linear:        max(0, (total−step) / max(1, total−warmup))
//	cosine:        max(0, ½(1 + cos(π · progress))),
//	               progress = (step−warmup) / max(1, total−warmup)
//
// so with warmup the first update runs at learning rate 0, exactly as the
// transformers Trainer does.
func LRFactor(schedule string, step, warmup, total int) (float64, error) {
	if step < warmup {
		return float64(step) / float64(max(1, warmup)), nil
	}
	switch schedule {
	case "constant":
		return 1, nil
	case "linear":
		return math.Max(0, float64(total-step)/float64(max(1, total-warmup))), nil
	case "cosine":
		progress := float64(step-warmup) / float64(max(1, total-warmup))
		return math.Max(0, 0.5*(1+math.Cos(math.Pi*progress))), nil
	}
	return 0, errs.Invalid("option schedule: unknown %q (use constant, linear or cosine)", schedule)
}
