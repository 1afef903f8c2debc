package api

import "testing"

func TestSplitSummary(t *testing.T) {
	for _, tc := range []struct {
		splits map[string]int64
		want   string
	}{
		{map[string]int64{"test": 624, "train": 4849, "validation": 573}, "train 4849, validation 573, test 624"},
		{map[string]int64{"train": 3}, "train 3"},
		{nil, "none"},
	} {
		if got := (DatasetVersion{Splits: tc.splits}).SplitSummary(); got != tc.want {
			t.Errorf("SplitSummary(%v) = %q, want %q", tc.splits, got, tc.want)
		}
	}
}
