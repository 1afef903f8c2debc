package trigger

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	feedback := mustParse(t, "name: f\non: {event: feedback, model: spam-lora}\nwhen: {min_new_records: 100}\ndo:\n  - retrain: {recipe: r}\n")
	drift := mustParse(t, "name: d\non: {event: drift, monitor: champ}\nwhen: {min_severity: 0.5}\ndo:\n  - retrain: {recipe: r}\n")
	base := mustParse(t, "name: b\non: {event: base, base: smollm}\ndo:\n  - retrain: {recipe: r}\n")
	anyBase := mustParse(t, "name: b\non: {event: base}\ndo:\n  - retrain: {recipe: r}\n")
	sched := mustParse(t, "name: s\non: {event: schedule, cron: '@daily'}\ndo:\n  - retrain: {recipe: r}\n")
	tests := []struct {
		name   string
		spec   *Spec
		typ    string
		data   string
		want   bool
		reason string
	}{
		{"feedback enough", feedback, "feedback.accumulated", `{"model":"spam-lora","records":120}`, true, "120 new labelled records"},
		{"feedback exactly", feedback, "feedback.accumulated", `{"model":"spam-lora","records":100}`, true, ""},
		{"feedback too few", feedback, "feedback.accumulated", `{"model":"spam-lora","records":99}`, false, "below min_new_records 100"},
		{"feedback other model", feedback, "feedback.accumulated", `{"model":"other","records":500}`, false, `"other"`},
		{"other event type", feedback, "monitor.drift.detected", `{"model":"spam-lora"}`, false, "is not feedback"},
		{"drift severe", drift, "monitor.drift.detected", `{"monitor":"champ","model":"m","severity":0.75}`, true, "severity 0.75"},
		{"drift mild", drift, "monitor.drift.detected", `{"monitor":"champ","severity":0.25}`, false, "below min_severity"},
		{"drift no severity", drift, "monitor.drift.detected", `{"monitor":"champ"}`, false, "severity 0"},
		{"drift other monitor", drift, "monitor.drift.detected", `{"monitor":"x","severity":1}`, false, `monitor "x"`},
		{"base named", base, "base.version.created", `{"name":"smollm","id":"abc"}`, true, "base smollm"},
		{"base other", base, "base.version.created", `{"name":"gpt2"}`, false, `"gpt2"`},
		{"base any", anyBase, "base.version.created", `{"name":"gpt2"}`, true, ""},
		{"base fine-tune", anyBase, "base.version.created", `{"name":"chat","fine_tune_of":"smollm@v1"}`, false, "full fine-tune of smollm@v1"},
		{"bad data", feedback, "feedback.accumulated", `[1]`, false, "unreadable"},
		{"schedule never on events", sched, "feedback.accumulated", `{}`, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := Match(tc.spec, Event{Seq: 7, Type: tc.typ, Subject: "abc", Data: []byte(tc.data)})
			if got != tc.want || !strings.Contains(reason, tc.reason) {
				t.Errorf("Match = %v, %q; want %v and a reason saying %q", got, reason, tc.want, tc.reason)
			}
		})
	}
}

func mustParse(t *testing.T, src string) *Spec {
	t.Helper()
	s, err := ParseSpec("t.yaml", []byte(src))
	must(t, err)
	return s
}
