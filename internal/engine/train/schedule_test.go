package train

import (
	"errors"
	"math"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Expected values follow transformers' get_constant_schedule_with_warmup,
// get_linear_schedule_with_warmup and get_cosine_schedule_with_warmup
// (num_cycles 0.5), evaluated by hand.
func TestLRFactor(t *testing.T) {
	tests := []struct {
		schedule            string
		step, warmup, total int
		want                float64
	}{
		{"constant", 0, 0, 10, 1},
		{"constant", 1, 4, 10, 0.25},
		{"constant", 4, 4, 10, 1},
		{"constant", 100, 4, 10, 1},
		{"linear", 0, 0, 5, 1},
		{"linear", 0, 2, 10, 0},
		{"linear", 1, 2, 10, 0.5},
		{"linear", 2, 2, 10, 1},
		{"linear", 6, 2, 10, 0.5},
		{"linear", 9, 2, 10, 0.125},
		{"linear", 10, 2, 10, 0},
		{"linear", 12, 2, 10, 0},
		{"linear", 3, 0, 3, 0},
		{"cosine", 0, 2, 10, 0},
		{"cosine", 1, 2, 10, 0.5},
		{"cosine", 2, 2, 10, 1},
		{"cosine", 4, 2, 10, 0.5 * (1 + math.Cos(math.Pi/4))},
		{"cosine", 6, 2, 10, 0.5},
		{"cosine", 8, 2, 10, 0.5 * (1 + math.Cos(3*math.Pi/4))},
		{"cosine", 10, 2, 10, 0},
		{"cosine", 14, 2, 10, 0.5 * (1 + math.Cos(1.5*math.Pi))},
		{"cosine", 0, 0, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.schedule, func(t *testing.T) {
			got, err := LRFactor(tc.schedule, tc.step, tc.warmup, tc.total)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-tc.want) > 1e-15 {
				t.Errorf("LRFactor(%s, step %d, warmup %d, total %d) = %v, want %v", tc.schedule, tc.step, tc.warmup, tc.total, got, tc.want)
			}
		})
	}
	if _, err := LRFactor("exponential", 5, 0, 10); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("unknown schedule: err = %v, want invalid", err)
	}
}
