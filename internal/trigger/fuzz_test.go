package trigger

import (
	"testing"
	"time"
)

func FuzzParseSpec(f *testing.F) {
	for _, n := range []string{"feedback.good.yaml", "drift.good.yaml", "schedule.good.yaml", "base.good.yaml", "budget.good.yaml", "budget.bad.yaml", "two-actions.bad.yaml", "unknown-field.bad.yaml"} {
		f.Add(fixture(f, n))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := ParseSpec("f.yaml", src)
		if err != nil {
			return
		}
		// An accepted spec normalizes, parses back to the same id, and
		// every action is exactly one kind.
		n, err := s.Normalize()
		if err != nil {
			t.Fatalf("accepted spec does not normalize: %v", err)
		}
		back, err := ParseSpec("n.yaml", n)
		if err != nil {
			t.Fatalf("normalized form %s does not parse: %v", n, err)
		}
		if a, b := mustID(t, s), mustID(t, back); a != b {
			t.Fatalf("normalized form changes the id: %s vs %s", a, b)
		}
		for i, a := range s.Do {
			if a.Kind() == "" {
				t.Fatalf("action %d accepted with no single kind", i)
			}
		}
		if s.On.Event == OnSchedule {
			c, err := ParseCron(s.On.Cron)
			if err != nil {
				t.Fatalf("accepted cron %q does not parse: %v", s.On.Cron, err)
			}
			c.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		}
		Match(s, Event{Type: EventTypes[s.On.Event], Data: []byte(`{"model":"m","severity":1,"records":5}`)})
	})
}

func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/15 1-5 * jan-mar mon,fri", "@daily", "0 0 31 2 *"} {
		f.Add(s)
	}
	from := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := ParseCron(expr)
		if err != nil {
			return
		}
		next := c.Next(from)
		if !next.IsZero() && (!next.After(from) || next.Second() != 0) {
			t.Fatalf("Next(%s) = %s", from, next)
		}
	})
}

func mustID(t *testing.T, s *Spec) string {
	t.Helper()
	id, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
