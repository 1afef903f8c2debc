package api

import (
	"context"
	"encoding/json"
	"net/url"
	"time"
)

// ModelVersion is a deployable: a base version plus an optional adapter,
// with its eval reports and the aliases pointing at it.
type ModelVersion struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Version   int               `json:"version"`
	BaseID    string            `json:"base_id"`
	Adapter   string            `json:"adapter,omitempty"`
	RunID     string            `json:"run_id,omitempty"`
	Task      string            `json:"task"`
	Labels    map[string]string `json:"labels,omitempty"`
	Lineage   json.RawMessage   `json:"lineage,omitempty"`
	Region    string            `json:"region"` // where its adapter and reports live
	CreatedAt time.Time         `json:"created_at"`
	Reports   []EvalReportRef   `json:"reports"`
	Verdict   string            `json:"verdict,omitempty"` // latest report's: pass or fail
	Aliases   []string          `json:"aliases,omitempty"`
	// CopiedFrom is its source when it is a cross-region copy (shown
	// with one version, not in lists).
	CopiedFrom *CopySource `json:"copied_from,omitempty"`
}

// EvalReportRef is a stored eval report attached to a model version.
type EvalReportRef struct {
	Digest    string    `json:"digest"`
	DatasetID string    `json:"dataset_id"`
	Split     string    `json:"split"`
	Verdict   string    `json:"verdict"`
	Failed    []string  `json:"failed,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Promote asks to point an alias at a model version.
type Promote struct {
	Version string `json:"version"`
	Alias   string `json:"alias"`
	Reason  string `json:"reason"`
	// Actor is ignored: the server attributes the change to the
	// request token's principal; the field only keeps old bodies valid.
	Actor          string `json:"actor,omitempty"`
	Override       bool   `json:"override,omitempty"`
	OverrideReason string `json:"override_reason,omitempty"`
}

// Rollback asks to move an alias back to its previous target.
type Rollback struct {
	Alias  string `json:"alias"`
	Reason string `json:"reason"`
	// Actor is ignored: the server attributes the change to the
	// request token's principal; the field only keeps old bodies valid.
	Actor string `json:"actor,omitempty"`
}

// Decision approves or rejects a pending approval.
type Decision struct {
	Approve bool   `json:"approve"`
	Reason  string `json:"reason"`
	// Actor is ignored: the server attributes the change to the
	// request token's principal; the field only keeps old bodies valid.
	Actor string `json:"actor,omitempty"`
}

// AliasMove is one recorded move of an alias.
type AliasMove struct {
	Seq            int64     `json:"seq"`
	Name           string    `json:"name"`
	Alias          string    `json:"alias"`
	From           string    `json:"from,omitempty"`
	To             string    `json:"to"`
	Action         string    `json:"action,omitempty"`
	Reason         string    `json:"reason"`
	Actor          string    `json:"actor"`
	Override       bool      `json:"override,omitempty"`
	OverrideReason string    `json:"override_reason,omitempty"`
	ApprovalID     string    `json:"approval_id,omitempty"`
	Time           time.Time `json:"time"`
}

// Approval is a promotion waiting for (or decided by) a second person.
type Approval struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Alias          string    `json:"alias"`
	Target         string    `json:"target"`
	Reason         string    `json:"reason"`
	Override       bool      `json:"override,omitempty"`
	RequestedBy    string    `json:"requested_by"`
	RequestedAt    time.Time `json:"requested_at"`
	State          string    `json:"state"`
	DecidedBy      string    `json:"decided_by,omitempty"`
	DecisionReason string    `json:"decision_reason,omitempty"`
}

// Promotion is the answer to a promote: the move, or the approval it waits for.
type Promotion struct {
	Move     *AliasMove `json:"move,omitempty"`
	Approval *Approval  `json:"approval,omitempty"`
}

// Models lists model versions, of one name or all.
func (c *Client) Models(ctx context.Context, name string) ([]ModelVersion, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	var out []ModelVersion
	return out, c.do(ctx, "GET", "/v1/registry/models", q, nil, "", &out)
}

// Model returns one model version ("latest", "v2", an id or an alias).
func (c *Client) Model(ctx context.Context, name, ref string) (ModelVersion, error) {
	var out ModelVersion
	return out, c.do(ctx, "GET", "/v1/registry/models/"+url.PathEscape(name)+"/versions/"+url.PathEscape(orLatest(ref)), nil, nil, "", &out)
}

// Promote points an alias at a version (or opens an approval).
func (c *Client) Promote(ctx context.Context, name string, p Promote) (Promotion, error) {
	body, err := c.jsonBody(p)
	if err != nil {
		return Promotion{}, err
	}
	var out Promotion
	return out, c.do(ctx, "POST", "/v1/registry/models/"+url.PathEscape(name)+"/promote", nil, body, "application/json", &out)
}

// Rollback moves an alias back to its previous target.
func (c *Client) Rollback(ctx context.Context, name string, r Rollback) (AliasMove, error) {
	body, err := c.jsonBody(r)
	if err != nil {
		return AliasMove{}, err
	}
	var out AliasMove
	return out, c.do(ctx, "POST", "/v1/registry/models/"+url.PathEscape(name)+"/rollback", nil, body, "application/json", &out)
}

// AliasHistory lists the moves of a model's aliases (one alias, or all).
func (c *Client) AliasHistory(ctx context.Context, name, alias string) ([]AliasMove, error) {
	q := url.Values{}
	if alias != "" {
		q.Set("alias", alias)
	}
	var out []AliasMove
	return out, c.do(ctx, "GET", "/v1/registry/models/"+url.PathEscape(name)+"/history", q, nil, "", &out)
}

// Approvals lists a model's approvals, optionally of one state.
func (c *Client) Approvals(ctx context.Context, name, state string) ([]Approval, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	var out []Approval
	return out, c.do(ctx, "GET", "/v1/registry/models/"+url.PathEscape(name)+"/approvals", q, nil, "", &out)
}

// Decide approves or rejects a pending approval.
func (c *Client) Decide(ctx context.Context, id string, d Decision) (Approval, error) {
	body, err := c.jsonBody(d)
	if err != nil {
		return Approval{}, err
	}
	var out Approval
	return out, c.do(ctx, "POST", "/v1/registry/approvals/"+url.PathEscape(id), nil, body, "application/json", &out)
}

// EvalReport returns a stored eval report: its JSON and its Markdown.
func (c *Client) EvalReport(ctx context.Context, digest string) (EvalReportBody, error) {
	var out EvalReportBody
	return out, c.do(ctx, "GET", "/v1/reports/"+url.PathEscape(digest), nil, nil, "", &out)
}

// EvalReportBody is a report's content.
type EvalReportBody struct {
	Digest   string          `json:"digest"`
	Report   json.RawMessage `json:"report"`
	Markdown string          `json:"markdown"`
}
