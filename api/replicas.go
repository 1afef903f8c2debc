package api

import (
	"context"
	"time"
)

// Health is GET /v1/health: that the server answers, and which replica
// leads (runs the scheduler, triggers, monitors and reconcile). Every
// replica serves inference and the whole API.
type Health struct {
	Status string `json:"status"` // "ok"
	// Replica is this server's name among replicas (--replica).
	Replica string `json:"replica,omitempty"`
	// Leading says whether this replica holds the leader lease now.
	Leading bool `json:"leading"`
	// Leader is the holder of the leader lease as this replica last read
	// it ("" while none holds it), Term its term and LeaseExpires when it
	// runs out unless renewed.
	Leader       string    `json:"leader,omitempty"`
	Term         int64     `json:"term,omitempty"`
	LeaseExpires time.Time `json:"lease_expires,omitzero"`
}

// HealthStatus returns GET /v1/health.
func (c *Client) HealthStatus(ctx context.Context) (Health, error) {
	var out Health
	return out, c.do(ctx, "GET", "/v1/health", nil, nil, "", &out)
}
