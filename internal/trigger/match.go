package trigger

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event is a committed event as a trigger sees it.
type Event struct {
	Seq     int64           `json:"seq"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// eventFields are the parts of the reacted-to events' data that filters
// and conditions read.
type eventFields struct {
	Model   string `json:"model"`
	Monitor string `json:"monitor"`
	Name    string `json:"name"` // base.version.created: the base name
	// FineTuneOf (base.version.created) names the base a full fine-tune
	// started from: the version is that model's weights, not a new base.
	FineTuneOf string   `json:"fine_tune_of"`
	Severity   *float64 `json:"severity"`
	Records    *int     `json:"records"`
}

// Match decides whether ev fires spec, and says why (or why not) in words.
// It is pure: debounce and concurrency, which depend on earlier firings,
// are the caller's. Schedule triggers match no stored event.
func Match(spec *Spec, ev Event) (bool, string) {
	want, ok := EventTypes[spec.On.Event]
	if !ok || ev.Type != want {
		return false, fmt.Sprintf("event %s is not %s", ev.Type, spec.On.Event)
	}
	var f eventFields
	if len(ev.Data) > 0 {
		if err := json.Unmarshal(ev.Data, &f); err != nil {
			return false, fmt.Sprintf("event %d data unreadable: %v", ev.Seq, err)
		}
	}
	on, when := spec.On, spec.When
	switch spec.On.Event {
	case OnDrift:
		if on.Model != "" && f.Model != on.Model {
			return false, fmt.Sprintf("drift on model %q, not %q", f.Model, on.Model)
		}
		if on.Monitor != "" && f.Monitor != on.Monitor {
			return false, fmt.Sprintf("drift from monitor %q, not %q", f.Monitor, on.Monitor)
		}
		sev := 0.0
		if f.Severity != nil {
			sev = *f.Severity
		}
		if sev < when.MinSeverity {
			return false, fmt.Sprintf("severity %.3g below min_severity %.3g", sev, when.MinSeverity)
		}
		return true, fmt.Sprintf("drift on %s (monitor %s, severity %.3g)", f.Model, f.Monitor, sev)
	case OnFeedback:
		if on.Model != "" && f.Model != on.Model {
			return false, fmt.Sprintf("feedback for model %q, not %q", f.Model, on.Model)
		}
		n := 0
		if f.Records != nil {
			n = *f.Records
		}
		if n < when.MinNewRecords {
			return false, fmt.Sprintf("%d new labelled records, below min_new_records %d", n, when.MinNewRecords)
		}
		return true, fmt.Sprintf("%d new labelled records for %s", n, f.Model)
	case OnBase:
		if on.Base != "" && f.Name != on.Base {
			return false, fmt.Sprintf("new version of base %q, not %q", f.Name, on.Base)
		}
		if f.FineTuneOf != "" {
			return false, fmt.Sprintf("base %s %s holds the weights of a full fine-tune of %s, not a new base to build on", f.Name, ev.Subject, f.FineTuneOf)
		}
		return true, fmt.Sprintf("new version %s of base %s", ev.Subject, f.Name)
	}
	return false, "schedule triggers fire on their cron, not on events"
}

// EventModel returns the model an event names ("" when none).
func EventModel(ev Event) string {
	var f eventFields
	_ = json.Unmarshal(ev.Data, &f)
	return f.Model
}
