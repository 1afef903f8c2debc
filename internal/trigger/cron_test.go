package trigger

import (
	"strings"
	"testing"
	"time"
)

func TestCronNext(t *testing.T) {
	from := time.Date(2026, 12, 6, 21, 7, 30, 0, time.UTC) // a Sunday
	tests := []struct {
		expr string
		want string
	}{
		{"* * * * *", "2026-12-06T21:08:00Z"},
		{"*/15 * * * *", "2026-12-06T21:15:00Z"},
		{"0 3 * * *", "2026-12-07T03:00:00Z"},
		{"@daily", "2026-12-07T00:00:00Z"},
		{"@hourly", "2026-12-06T22:00:00Z"},
		{"30 9 * * mon-fri", "2026-12-07T09:30:00Z"},
		{"0 0 * * 7", "2026-12-13T00:00:00Z"},   // 7 is Sunday
		{"0 0 * * SUN", "2026-12-13T00:00:00Z"}, // names ignore case
		{"0 0 1 jan *", "2027-01-01T00:00:00Z"},
		{"0 12 29 2 *", "2028-02-29T12:00:00Z"},
		{"0 0 13 * 5", "2026-12-11T00:00:00Z"}, // day 13 or a Friday: the Friday comes first
		{"5,10 22 * * *", "2026-12-06T22:05:00Z"},
		{"10-20/5 21 * * *", "2026-12-06T21:10:00Z"},
		{"7 21 6 12 *", "2027-12-06T21:07:00Z"}, // strictly after
		{"0 0 31 11 *", ""},                     // never
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			c, err := ParseCron(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			got := c.Next(from)
			if tc.want == "" {
				if !got.IsZero() {
					t.Fatalf("Next = %s, want none", got)
				}
				return
			}
			if got.Format(time.RFC3339) != tc.want {
				t.Errorf("Next(%s) = %s, want %s", from.Format(time.RFC3339), got.Format(time.RFC3339), tc.want)
			}
		})
	}
}

func TestCronBad(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"* * * *", "five fields"},
		{"60 * * * *", "minute: 60 is outside 0-59"},
		{"* 24 * * *", "hour"},
		{"* * 0 * *", "day of month"},
		{"* * * 13 *", "month"},
		{"* * * * 8", "day of week"},
		{"*/0 * * * *", "step"},
		{"5-1 * * * *", "backwards"},
		{"x * * * *", `"x" is not a number`},
	}
	for _, tc := range tests {
		_, err := ParseCron(tc.expr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCron(%q) = %v, want an error saying %q", tc.expr, err, tc.want)
		}
	}
}
