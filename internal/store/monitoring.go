package store

import (
	"encoding/json"
	"time"
)

// Prediction is one answered classify request, recorded for the drift
// monitor and for feedback. Text is the input, kept only when the request
// log's policy keeps inputs ("" otherwise).
type Prediction struct {
	Seq       int64              `json:"seq"` // assigned by the store, increasing
	RequestID string             `json:"request_id"`
	Time      time.Time          `json:"time"`
	Model     string             `json:"model"`      // registry model name that answered
	VersionID string             `json:"version_id"` // model version id that answered
	Variant   string             `json:"variant"`    // "primary", "canary" or "shadow"
	Label     string             `json:"label"`
	Probs     map[string]float64 `json:"probs,omitempty"`
	Text      string             `json:"text,omitempty"`
	Truncated bool               `json:"truncated,omitempty"`
	// Features are what the drift monitor extracted from the input when it
	// was answered (nil when no monitor watched that version then).
	Features json.RawMessage `json:"features,omitempty"`
}

// PredictionFilter selects predictions: of Model ("" any), with Seq >
// After, at most Limit (0: all), oldest first; shadow predictions only
// with Shadow.
type PredictionFilter struct {
	Model  string
	After  int64
	Limit  int
	Shadow bool
}

// Feedback is the true label (or completion) of one served request.
// Dataset is the feedback dataset version it was accumulated into ("" while
// pending).
type Feedback struct {
	RequestID  string    `json:"request_id"`
	Model      string    `json:"model"`
	Label      string    `json:"label,omitempty"`
	Completion string    `json:"completion,omitempty"`
	Actor      string    `json:"actor,omitempty"`
	Time       time.Time `json:"time"`
	Dataset    string    `json:"dataset,omitempty"`
}

// Labelled is a feedback row with the prediction it labels.
type Labelled struct {
	Feedback   Feedback   `json:"feedback"`
	Prediction Prediction `json:"prediction"`
}

// FeedbackStats counts the feedback on one model's predictions.
type FeedbackStats struct {
	Total   int64 `json:"total"`
	Pending int64 `json:"pending"` // not yet accumulated into a dataset version
	NoText  int64 `json:"no_text"` // pending, but the input was not kept, so it cannot train
}

// SpecVersion is one version of a named, declarative spec other than a
// recipe: a monitor ("monitor") or a trigger ("trigger"). Like a recipe,
// its id is the sha256 of its normalized text.
type SpecVersion struct {
	Kind       string    `json:"kind"`
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Version    int       `json:"version"` // 1, 2, 3… per kind and name, assigned by the store
	Normalized []byte    `json:"normalized"`
	CreatedAt  time.Time `json:"created_at"`
}

// MonitorState is where a monitor stands: the model version it watches,
// the reference profile it compares with (a blob digest, "" until built),
// the last prediction it has read and its open window.
type MonitorState struct {
	Name      string          `json:"name"`
	SpecID    string          `json:"spec_id"`
	VersionID string          `json:"version_id"`
	Profile   string          `json:"profile,omitempty"`
	Cursor    int64           `json:"cursor"`
	State     json.RawMessage `json:"state,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// MonitorWindow is one closed, evaluated window of a monitor.
type MonitorWindow struct {
	Monitor   string          `json:"monitor"`
	Index     int64           `json:"index"`
	VersionID string          `json:"version_id"`
	FirstSeq  int64           `json:"first_seq"` // predictions it covers, inclusive
	LastSeq   int64           `json:"last_seq"`
	Count     int             `json:"count"`
	Drifted   bool            `json:"drifted"`
	Result    json.RawMessage `json:"result"`
	Time      time.Time       `json:"time"`
}
