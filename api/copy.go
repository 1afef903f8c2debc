package api

import (
	"context"
	"time"
)

// CopyRequest asks for a cross-region copy of one version: Kind is
// "dataset", "base" or "model", Source its NAME@REF, ToRegion where the
// copy lives, Name the copy's name (default NAME-REGION; a copy has its
// source's content, so it needs a name of its own).
type CopyRequest struct {
	Kind     string `json:"kind"`
	Source   string `json:"source"`
	ToRegion string `json:"to_region"`
	Name     string `json:"name,omitempty"`
}

// Copy is a cross-region copy: the new version and its source.
type Copy struct {
	Kind         string    `json:"kind"`
	Name         string    `json:"name"`
	ID           string    `json:"id"`
	Version      int       `json:"version,omitempty"` // bases and models
	Region       string    `json:"region"`
	SourceName   string    `json:"source_name"`
	SourceID     string    `json:"source_id"`
	SourceRegion string    `json:"source_region"`
	CreatedAt    time.Time `json:"created_at"`
	// Created is false when the same copy existed already.
	Created bool `json:"created"`
	// EventSeq is the seq of the KIND.copy.created event (0 when not
	// created).
	EventSeq int64 `json:"event_seq,omitempty"`
}

// Copy creates a cross-region copy (POST /v1/copies).
func (c *Client) Copy(ctx context.Context, req CopyRequest) (Copy, error) {
	body, err := c.jsonBody(req)
	if err != nil {
		return Copy{}, err
	}
	var out Copy
	return out, c.do(ctx, "POST", "/v1/copies", nil, body, "application/json", &out)
}

// CopySource is where a copied version came from (the copy's lineage).
type CopySource struct {
	Name      string    `json:"name"`
	ID        string    `json:"id"`
	Region    string    `json:"region"`
	CreatedAt time.Time `json:"created_at"` // when the copy was made
}
