package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// TriggerApply is the answer to applying a trigger spec.
type TriggerApply struct {
	Version SpecVersion `json:"version"`
	Created bool        `json:"created"`
}

// TriggerStatus is one trigger: its newest spec version and its firings.
type TriggerStatus struct {
	Spec    SpecVersion `json:"spec"`
	Event   string      `json:"event"` // drift, feedback, base or schedule
	Firings int         `json:"firings"`
	Running int         `json:"running"` // pending or running now
	Skipped int         `json:"skipped"`
	Failed  int         `json:"failed"`
	Last    *Firing     `json:"last,omitempty"`
}

// Firing is one event acted on by one trigger. (Trigger, EventSeq) is its
// idempotency key.
type Firing struct {
	Trigger     string    `json:"trigger"`
	EventSeq    int64     `json:"event_seq"`
	Tick        time.Time `json:"tick,omitzero"` // schedule firings: the cron time
	EventType   string    `json:"event_type"`
	SpecID      string    `json:"spec_id"`
	SpecVersion int       `json:"spec_version"`
	// State is pending, running, done, failed or skipped (debounced).
	State string `json:"state"`
	// Step is the index of the next action (= the number done).
	Step      int            `json:"step"`
	Results   []ActionResult `json:"results"`
	Reason    string         `json:"reason,omitempty"`
	Error     string         `json:"error,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// ActionResult is what one action of a firing did.
type ActionResult struct {
	Action    string `json:"action"`
	Outcome   string `json:"outcome,omitempty"`
	RunID     string `json:"run_id,omitempty"`
	Model     string `json:"model,omitempty"`
	Version   int    `json:"version,omitempty"`
	VersionID string `json:"version_id,omitempty"`
	Alias     string `json:"alias,omitempty"`
	Promoted  bool   `json:"promoted,omitempty"`
	Approval  string `json:"approval,omitempty"`
	Status    int    `json:"status,omitempty"`
	Error     string `json:"error,omitempty"`
	// Base (rebase) is the base version the new model version was
	// trained on, "name@vN"; Compare the side-by-side evaluation.
	Base    string      `json:"base,omitempty"`
	Compare *Comparison `json:"compare,omitempty"`
}

// Line is the result in words: "action: outcome", or "action: error: …"
// when the action failed.
func (r ActionResult) Line() string {
	if r.Error != "" {
		return r.Action + ": error: " + r.Error
	}
	return r.Action + ": " + r.Outcome
}

// Comparison is a rebase's side-by-side evaluation: the version Alias
// pointed at (on its old base) and the rebased version, on one split of
// one dataset version ("name@id").
type Comparison struct {
	Alias   string         `json:"alias"`
	Dataset string         `json:"dataset"`
	Split   string         `json:"split"`
	Old     ComparisonSide `json:"old"`
	New     ComparisonSide `json:"new"`
}

// ComparisonSide is one model version's evaluation in a Comparison:
// its eval run, base version, verdict and all-records metrics.
type ComparisonSide struct {
	RunID     string             `json:"run_id,omitempty"`
	Model     string             `json:"model,omitempty"`
	Version   int                `json:"version,omitempty"`
	VersionID string             `json:"version_id,omitempty"`
	Base      string             `json:"base,omitempty"`
	Verdict   string             `json:"verdict,omitempty"`
	Metrics   map[string]float64 `json:"metrics,omitempty"`
}

// ApplyTrigger stores a trigger spec (a new version only if it changed).
func (c *Client) ApplyTrigger(ctx context.Context, fileName string, yamlText []byte) (TriggerApply, error) {
	var out TriggerApply
	q := url.Values{"filename": {fileName}}
	return out, c.do(ctx, "POST", "/v1/triggers", q, bytes.NewReader(yamlText), "application/yaml", &out)
}

// Triggers lists every trigger.
func (c *Client) Triggers(ctx context.Context) ([]TriggerStatus, error) {
	var out []TriggerStatus
	return out, c.do(ctx, "GET", "/v1/triggers", nil, nil, "", &out)
}

// Trigger returns one trigger.
func (c *Client) Trigger(ctx context.Context, name string) (TriggerStatus, error) {
	var out TriggerStatus
	return out, c.do(ctx, "GET", "/v1/triggers/"+url.PathEscape(name), nil, nil, "", &out)
}

// TriggerHistory lists a trigger's firings, oldest first.
func (c *Client) TriggerHistory(ctx context.Context, name string) ([]Firing, error) {
	var out []Firing
	return out, c.do(ctx, "GET", "/v1/triggers/"+url.PathEscape(name)+"/history", nil, nil, "", &out)
}

// WriteTable writes the comparison as a titled table: one row per metric
// both sides have (in name order) with the change, then the verdicts.
func (c *Comparison) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "%s %s split of %s\n", c.Alias, c.Split, c.Dataset)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	side := func(s ComparisonSide) string { return fmt.Sprintf("%s v%d on %s", s.Model, s.Version, s.Base) }
	fmt.Fprintf(tw, "METRIC\t%s\t%s\tCHANGE\n", side(c.Old), side(c.New))
	var names []string
	for m := range c.New.Metrics {
		if _, ok := c.Old.Metrics[m]; ok {
			names = append(names, m)
		}
	}
	slices.Sort(names)
	for _, m := range names {
		o, n := c.Old.Metrics[m], c.New.Metrics[m]
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%+.4f\n", m, o, n, n-o)
	}
	fmt.Fprintf(tw, "verdict\t%s\t%s\t\n", c.Old.Verdict, c.New.Verdict)
	// #nosec G104 -- a table printed to the CLI's writer; a failed terminal write has no better report
	tw.Flush()
}

// Summary says the comparison in words: each metric old → new, in name
// order.
func (c *Comparison) Summary() string {
	var names []string
	for m := range c.New.Metrics {
		if _, ok := c.Old.Metrics[m]; ok {
			names = append(names, m)
		}
	}
	slices.Sort(names)
	var parts []string
	for _, m := range names {
		parts = append(parts, fmt.Sprintf("%s %.4f → %.4f", m, c.Old.Metrics[m], c.New.Metrics[m]))
	}
	ds := c.Dataset
	if name, id, ok := strings.Cut(ds, "@"); ok && len(id) > 12 {
		ds = name + "@" + id[:12]
	}
	return fmt.Sprintf("%s test of %s: v%d on %s vs v%d on %s: %s", c.Alias, ds, c.Old.Version, c.Old.Base,
		c.New.Version, c.New.Base, strings.Join(parts, ", "))
}
