package store

import (
	"encoding/json"
	"time"
)

// FiringState is a trigger firing's place in its state machine:
// pending → running → done | failed; skipped (debounced) is final at once.
type FiringState string

const (
	FiringPending FiringState = "pending"
	FiringRunning FiringState = "running"
	FiringDone    FiringState = "done"
	FiringFailed  FiringState = "failed"
	FiringSkipped FiringState = "skipped"
)

// Terminal reports whether no further transition leaves s.
func (s FiringState) Terminal() bool {
	return s == FiringDone || s == FiringFailed || s == FiringSkipped
}

// Firing is one event acted on by one trigger. (Trigger, EventSeq) is the
// idempotency key: a trigger acts on an event at most once. Schedule
// firings have no stored event of their own: Tick is their cron time
// (unique per trigger too) and EventSeq the seq of their trigger.fired
// event.
type Firing struct {
	Trigger     string      `json:"trigger"`
	EventSeq    int64       `json:"event_seq"`
	Tick        time.Time   `json:"tick,omitzero"`
	EventType   string      `json:"event_type"`
	SpecID      string      `json:"spec_id"` // the trigger spec version that matched
	SpecVersion int         `json:"spec_version"`
	State       FiringState `json:"state"`
	// Step is the index of the action to run next (= the number done).
	Step int `json:"step"`
	// Results is a JSON array with one result per action started: done
	// ones, and the partial result of the running one (such as its run id).
	Results   json.RawMessage `json:"results"`
	Reason    string          `json:"reason,omitempty"` // why it fired, or why it was skipped
	Error     string          `json:"error,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// FiringFilter selects firings; zero fields match everything. Last keeps
// only the newest n (still returned oldest first).
type FiringFilter struct {
	Trigger string
	States  []FiringState
	Last    int
}
