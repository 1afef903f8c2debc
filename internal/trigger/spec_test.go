package trigger

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSpec(t *testing.T) {
	for _, file := range []string{"feedback.good.yaml", "drift.good.yaml", "schedule.good.yaml", "base.good.yaml", "budget.good.yaml"} {
		t.Run(file, func(t *testing.T) {
			src := fixture(t, file)
			s, err := ParseSpec(file, src)
			must(t, err)
			id, err := s.ID()
			must(t, err)
			// Comments and layout do not change the id; the normalized
			// form parses back to the same id.
			again, err := ParseSpec(file, []byte("# another comment\n"+string(src)))
			must(t, err)
			if id2, _ := again.ID(); id2 != id {
				t.Errorf("id changed with a comment: %s vs %s", id, id2)
			}
			norm, err := s.Normalize()
			must(t, err)
			back, err := ParseSpec("normalized", norm)
			must(t, err)
			if id3, _ := back.ID(); id3 != id {
				t.Errorf("normalized form parses to another id: %s vs %s\n%s", id3, id, norm)
			}
			if b := s.Limits.Budget; file == "budget.good.yaml" &&
				(b == nil || b.PeriodDuration() != 168*time.Hour || b.MaxCostUSD != 5 || b.MaxEnergyKWh != 2 || b.MaxDurationValue() != 6*time.Hour) {
				t.Errorf("budget %+v", b)
			}
		})
	}
	bad := []struct {
		file string
		want []string
	}{
		{"unknown-field.bad.yaml", []string{"line 4", "modle"}},
		{"event.bad.yaml", []string{"event.bad.yaml:3", "on.event", `"retrain-please"`, "drift, feedback, base or schedule"}},
		{"two-actions.bad.yaml", []string{":6", "do[1]", "exactly one"}},
		{"promote-first.bad.yaml", []string{":5", "do[0].promote_if_pass", "a retrain or rebase made"}},
		{"rebase-base.bad.yaml", []string{":5", "do[0].rebase.base", "feedback event creates no base version"}},
		{"cron.bad.yaml", []string{":4", "on.cron", "minute"}},
		{"when-event.bad.yaml", []string{":5", "when.min_new_records", "feedback, not drift"}},
		{"debounce.bad.yaml", []string{":7", "limits.debounce", `"soon"`}},
		{"budget.bad.yaml", []string{":8", "limits.budget.max_cost_usd", "-1"}},
		{"budget-empty.bad.yaml", []string{":7", "limits.budget", "no limit"}},
		{"webhook-url.bad.yaml", []string{":5", "do[0].webhook.url", "http or https"}},
		{"webhook-credentials.bad.yaml", []string{":5", "do[0].webhook.url", "without credentials", "https://hooks.example.com/[redacted]"}},
		{"rollback-model.bad.yaml", []string{":5", "do[0].rollback.model", "base event names no model"}},
		{"no-actions.bad.yaml", []string{":4", "do", "at least one"}},
		{"name.bad.yaml", []string{":1", "name", `"Bad Name"`}},
		{"empty.bad.yaml", []string{"empty document"}},
		{"syntax.bad.yaml", []string{"syntax.bad.yaml", "line"}},
	}
	for _, tc := range bad {
		t.Run(tc.file, func(t *testing.T) {
			_, err := ParseSpec(tc.file, fixture(t, tc.file))
			if err == nil {
				t.Fatal("parsed; want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q shows the webhook's secret", err)
			}
		})
	}
}

func TestSpecDefaults(t *testing.T) {
	s, err := ParseSpec("t.yaml", []byte("name: t\non: {event: drift}\ndo:\n  - retrain: {recipe: r}\n  - evaluate: {dataset: d}\n"))
	must(t, err)
	d := s.WithDefaults()
	if d.Limits.MaxConcurrent != 1 || d.Limits.Debounce != "0s" || d.Do[1].Evaluate.Split != "test" {
		t.Errorf("defaults: %+v %+v", d.Limits, d.Do[1].Evaluate)
	}
	if s.Do[1].Evaluate.Split != "" {
		t.Error("WithDefaults changed the spec it was called on")
	}
	explicit, err := ParseSpec("t.yaml", []byte("name: t\non: {event: drift}\ndo:\n  - retrain: {recipe: r}\n  - evaluate: {dataset: d, split: test}\nlimits: {debounce: 0s, max_concurrent: 1}\n"))
	must(t, err)
	a, _ := s.ID()
	b, _ := explicit.ID()
	if a != b {
		t.Errorf("a spec and the same spec with its defaults written out differ: %s vs %s", a, b)
	}
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "spec", name))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestShippedTriggersParse: the example triggers parse.
func TestShippedTriggersParse(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "recipes", "triggers", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("example triggers: %v, %v", files, err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		must(t, err)
		s, err := ParseSpec(filepath.Base(f), src)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if s.Name == "spam-retrain" && (s.On.Event != OnFeedback || s.When.MinNewRecords != 700 || s.Do[0].Retrain.Recipe != "spam-lora" ||
			s.Do[1].PromoteIfPass.Alias != "champion" || s.DebounceDuration().String() != "1m0s" || s.Limits.MaxConcurrent != 1) {
			t.Errorf("spam-retrain.yaml says something else: %+v", s)
		}
		if s.Name == "tailor-tiny-rebase" && (s.On.Event != OnBase || s.On.Base != "tailor-tiny" || len(s.Do) != 4 ||
			s.Do[0].Rebase.Recipe != "spam-lora@v1" || s.Do[1].PromoteIfPass.Alias != "champion" ||
			s.Do[2].Rebase.Recipe != "email-headers-sft" || s.Do[3].PromoteIfPass.Alias != "champion") {
			t.Errorf("tailor-tiny-rebase.yaml says something else: %+v", s)
		}
	}
}
