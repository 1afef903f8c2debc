package trigger

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cron is a parsed five-field cron expression: minute, hour, day of month,
// month, day of week, evaluated in UTC. Each field takes *, a number, a
// range a-b, a step */n or a-b/n, and comma-separated lists of those;
// months and weekdays also take three-letter names (jan, mon), and day of
// week 7 is Sunday like 0. When both day of month and day of week are
// restricted, a day matching either fires (the classic cron rule). The
// macros @hourly, @daily (@midnight), @weekly, @monthly and @yearly
// (@annually) stand for their usual expansions.
type Cron struct {
	minute, hour, dom, month, dow uint64 // bit i set: value i allowed
	domStar, dowStar              bool
}

var cronMacros = map[string]string{
	"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
	"@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}

var monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
var dayNames = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

// ParseCron parses a five-field cron expression or a macro.
func ParseCron(expr string) (*Cron, error) {
	expr = strings.TrimSpace(expr)
	if m, ok := cronMacros[strings.ToLower(expr)]; ok {
		expr = m
	}
	f := strings.Fields(expr)
	if len(f) != 5 {
		return nil, fmt.Errorf("%q: want five fields (minute hour day-of-month month day-of-week), such as \"*/15 * * * *\"", expr)
	}
	var c Cron
	var err error
	specs := []struct {
		name     string
		lo, hi   int
		names    map[string]int
		dst      *uint64
		starFlag *bool
	}{
		{"minute", 0, 59, nil, &c.minute, nil},
		{"hour", 0, 23, nil, &c.hour, nil},
		{"day of month", 1, 31, nil, &c.dom, &c.domStar},
		{"month", 1, 12, monthNames, &c.month, nil},
		{"day of week", 0, 7, dayNames, &c.dow, &c.dowStar},
	}
	for i, sp := range specs {
		var star bool
		if *sp.dst, star, err = parseCronField(f[i], sp.lo, sp.hi, sp.names); err != nil {
			return nil, fmt.Errorf("%q: %s: %v", expr, sp.name, err)
		}
		if sp.starFlag != nil {
			*sp.starFlag = star
		}
	}
	if c.dow&(1<<7) != 0 { // 7 is Sunday
		c.dow = c.dow&^(1<<7) | 1
	}
	return &c, nil
}

func parseCronField(field string, lo, hi int, names map[string]int) (bits uint64, star bool, err error) {
	value := func(s string) (int, error) {
		if v, ok := names[strings.ToLower(s)]; ok {
			return v, nil
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		if v < lo || v > hi {
			return 0, fmt.Errorf("%d is outside %d-%d", v, lo, hi)
		}
		return v, nil
	}
	for _, part := range strings.Split(field, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			if step, err = strconv.Atoi(stepStr); err != nil || step < 1 || step > hi {
				return 0, false, fmt.Errorf("step %q: want a number from 1 to %d", stepStr, hi)
			}
		}
		var a, b int
		switch {
		case rng == "*":
			a, b = lo, hi
			if lo == 0 && hi == 7 {
				b = 6 // day of week: * is 0-6
			}
			star = star || !hasStep
		case strings.Contains(rng, "-"):
			x, y, _ := strings.Cut(rng, "-")
			if a, err = value(x); err != nil {
				return 0, false, err
			}
			if b, err = value(y); err != nil {
				return 0, false, err
			}
			if a > b {
				return 0, false, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			if a, err = value(rng); err != nil {
				return 0, false, err
			}
			b = a
			if hasStep {
				b = hi
			}
		}
		for v := a; v <= b; v += step {
			bits |= 1 << v
		}
	}
	return bits, star, nil
}

func (c *Cron) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<t.Day()) != 0
	dow := c.dow&(1<<int(t.Weekday())) != 0
	if c.domStar || c.dowStar {
		return dom && dow
	}
	return dom || dow
}

// Next returns the first minute strictly after t (in UTC) that the
// expression matches, or the zero time when none comes within five years
// (such as "0 0 30 2 *").
func (c *Cron) Next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Minute).Add(time.Minute)
	end := t.AddDate(5, 0, 0)
	for t.Before(end) {
		switch {
		case c.month&(1<<int(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !c.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case c.hour&(1<<t.Hour()) == 0:
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, time.UTC)
		case c.minute&(1<<t.Minute()) == 0:
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}
