package api

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// DeploymentSpec states how requests for a bare model name are served
// (POST /v1/deployments). It is the whole deployment: a part left out (no
// canary, no shadow) is removed.
type DeploymentSpec struct {
	Model string `json:"model"`
	// Alias is the primary's alias (default "champion"): requests go to
	// Model@Alias.
	Alias  string  `json:"alias,omitempty"`
	Canary *Canary `json:"canary,omitempty"`
	// Shadow is a model version ("spam@v4") that gets a copy of every
	// request; its answer is logged, never returned.
	Shadow string `json:"shadow,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Actor is ignored: the server attributes the change to the
	// request token's principal; the field only keeps old bodies valid.
	Actor string `json:"actor,omitempty"`
}

// Canary is a version of the deployment's model that answers Percent of
// its requests (sticky per user key).
type Canary struct {
	Model   string  `json:"model"`   // "spam@v3", an id or another alias
	Percent float64 `json:"percent"` // in (0, 100)
}

// Deployment is one stored version of a deployment.
type Deployment struct {
	Model  string  `json:"model"`
	Alias  string  `json:"alias"`
	Canary *Canary `json:"canary,omitempty"`
	Shadow string  `json:"shadow,omitempty"`
	// ID is the sha256 of the stored form (which names the previous
	// version); Version counts 1, 2, … per model.
	ID      string `json:"id"`
	Version int    `json:"version"`
	// Action is what made this version: set, promote or rollback.
	Action    string    `json:"action"`
	Actor     string    `json:"actor"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Region is where it serves: the region of the server that stored
	// this version ("" for versions stored before regions were recorded).
	Region string `json:"region,omitempty"`
	// EventSeq is the seq of the deployment.changed event committed with
	// this version (0 when not looked up).
	EventSeq int64 `json:"event_seq,omitempty"`
	// Serving is what each part resolves to now (show and list only).
	Serving *DeploymentServing `json:"serving,omitempty"`
}

// DeploymentServing says which versions a deployment's parts resolve to
// now, "name@vN", and which part does not resolve.
type DeploymentServing struct {
	Primary  string   `json:"primary,omitempty"`
	Canary   string   `json:"canary,omitempty"`
	Shadow   string   `json:"shadow,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// DeploymentApply is the answer to a change: the version now in effect,
// and whether the change made it (false: the deployment already was so).
type DeploymentApply struct {
	Deployment Deployment `json:"deployment"`
	Created    bool       `json:"created"`
}

// DeploymentPromote asks to move the deployment's alias to its canary's
// version through the registry's gates and approvals.
type DeploymentPromote struct {
	Reason string `json:"reason"`
	// Actor is ignored: the server attributes the change to the
	// request token's principal; the field only keeps old bodies valid.
	Actor          string `json:"actor,omitempty"`
	Override       bool   `json:"override,omitempty"`
	OverrideReason string `json:"override_reason,omitempty"`
}

// DeploymentPromotion is the answer to a canary promotion: the alias
// move and the deployment without its canary, or, when the alias needs
// approval, the pending approval (the canary keeps running; promote again
// once it is approved).
type DeploymentPromotion struct {
	Move       *AliasMove  `json:"move,omitempty"`
	Approval   *Approval   `json:"approval,omitempty"`
	Deployment *Deployment `json:"deployment,omitempty"`
}

// DeploymentRollback asks to remove a deployment's canary.
type DeploymentRollback struct {
	Reason string `json:"reason"`
	// Actor is ignored: the server attributes the change to the
	// request token's principal; the field only keeps old bodies valid.
	Actor string `json:"actor,omitempty"`
}

// DeploymentComparison summarises a deployment's request log: the
// primary against the canary and against the shadow.
type DeploymentComparison struct {
	Model string `json:"model"`
	// Version is the deployment version whose lifetime was read, [From,
	// To); 0 with From and To zero: the whole log.
	Version int       `json:"version,omitempty"`
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"` // zero: until now
	// Records is the number of request-log records of the deployment read.
	Records int `json:"records"`
	// PrunedBefore, when set, is the time of the oldest record the request
	// log still holds: its retention (tailor server --request-log-max-age,
	// --request-log-max-bytes) deleted older ones that the scope asked for,
	// so the comparison covers only the requests since.
	PrunedBefore time.Time          `json:"pruned_before,omitzero"`
	Canary       *VariantComparison `json:"canary,omitempty"`
	Shadow       *VariantComparison `json:"shadow,omitempty"`
}

// VariantComparison is the primary against one other variant. Against a
// canary both sides are every request each answered (they answer
// different requests, so nothing is paired); against the shadow both are
// the requests the primary answered and the shadow got a copy of.
type VariantComparison struct {
	Primary VariantStats `json:"primary"`
	Other   VariantStats `json:"other"`
	// Paired counts the requests both answered successfully; Agreed those
	// with the same label (classify) or the same text (completions).
	Paired    int      `json:"paired"`
	Agreed    int      `json:"agreed"`
	Agreement *float64 `json:"agreement,omitempty"` // Agreed/Paired
}

// VariantStats describes one variant's records.
type VariantStats struct {
	Variant  string   `json:"variant"`  // primary, canary or shadow
	Versions []string `json:"versions"` // what answered, "name@vN"
	Requests int      `json:"requests"`
	Errors   int      `json:"errors"` // status other than 200
	// Latency percentiles (nearest rank) over the successful requests.
	LatencyP50MS float64 `json:"latency_p50_ms"`
	LatencyP95MS float64 `json:"latency_p95_ms"`
	// Labelled counts the successful requests with feedback; Correct those
	// whose answer matches it (label, or exact completion text).
	Labelled int      `json:"labelled"`
	Correct  int      `json:"correct"`
	Accuracy *float64 `json:"accuracy,omitempty"` // Correct/Labelled
}

// CompareOptions pick what a comparison reads: the lifetime of deployment
// version Version (0: the current one), or with All the whole log.
type CompareOptions struct {
	Version int
	All     bool
}

// Deploy stores a new version of a deployment (unless it is unchanged).
func (c *Client) Deploy(ctx context.Context, s DeploymentSpec) (DeploymentApply, error) {
	body, err := c.jsonBody(s)
	if err != nil {
		return DeploymentApply{}, err
	}
	var out DeploymentApply
	return out, c.do(ctx, "POST", "/v1/deployments", nil, body, "application/json", &out)
}

// Deployments lists the current version of every deployment.
func (c *Client) Deployments(ctx context.Context) ([]Deployment, error) {
	var out []Deployment
	return out, c.do(ctx, "GET", "/v1/deployments", nil, nil, "", &out)
}

// Deployment returns the current version of model's deployment.
func (c *Client) Deployment(ctx context.Context, model string) (Deployment, error) {
	var out Deployment
	return out, c.do(ctx, "GET", "/v1/deployments/"+url.PathEscape(model), nil, nil, "", &out)
}

// DeploymentHistory lists every version of model's deployment, oldest
// first, each with its event.
func (c *Client) DeploymentHistory(ctx context.Context, model string) ([]Deployment, error) {
	var out []Deployment
	return out, c.do(ctx, "GET", "/v1/deployments/"+url.PathEscape(model)+"/history", nil, nil, "", &out)
}

// CompareDeployment summarises the request log of model's deployment.
func (c *Client) CompareDeployment(ctx context.Context, model string, o CompareOptions) (DeploymentComparison, error) {
	q := url.Values{}
	if o.Version > 0 {
		q.Set("version", strconv.Itoa(o.Version))
	}
	if o.All {
		q.Set("all", "true")
	}
	var out DeploymentComparison
	return out, c.do(ctx, "GET", "/v1/deployments/"+url.PathEscape(model)+"/compare", q, nil, "", &out)
}

// PromoteCanary moves the deployment's alias to its canary's version
// (through the registry's gates) and removes the canary.
func (c *Client) PromoteCanary(ctx context.Context, model string, p DeploymentPromote) (DeploymentPromotion, error) {
	body, err := c.jsonBody(p)
	if err != nil {
		return DeploymentPromotion{}, err
	}
	var out DeploymentPromotion
	return out, c.do(ctx, "POST", "/v1/deployments/"+url.PathEscape(model)+"/promote", nil, body, "application/json", &out)
}

// RollbackCanary removes the deployment's canary, recording why.
func (c *Client) RollbackCanary(ctx context.Context, model string, r DeploymentRollback) (Deployment, error) {
	body, err := c.jsonBody(r)
	if err != nil {
		return Deployment{}, err
	}
	var out Deployment
	return out, c.do(ctx, "POST", "/v1/deployments/"+url.PathEscape(model)+"/rollback", nil, body, "application/json", &out)
}
