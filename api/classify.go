package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// ClassifyRequest is the body of POST /v1/classify.
type ClassifyRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
	// User keys sticky routing between a champion and a canary.
	User string `json:"user,omitempty"`
	// Truncate, true when nil, cuts an input longer than the model was
	// trained on as training did; false answers 400 instead.
	Truncate *bool `json:"truncate,omitempty"`
}

// Classification is one input's answer.
type Classification struct {
	Index         int                `json:"index"`
	Label         string             `json:"label"`
	Confidence    float64            `json:"confidence"`
	Probabilities map[string]float64 `json:"probabilities"`
	Truncated     bool               `json:"truncated,omitempty"`
}

// ClassifyResponse is the answer of POST /v1/classify.
type ClassifyResponse struct {
	ID    string           `json:"id"`
	Model string           `json:"model"`
	Data  []Classification `json:"data"`
	// RequestID (X-Tailor-Request-Id) names the request for feedback:
	// input i is RequestID, then RequestID#i for i > 0.
	RequestID string `json:"-"`
	// ModelVersion (X-Tailor-Model-Version) is the version that answered.
	ModelVersion string `json:"-"`
}

// Classify sends r to /v1/classify.
func (c *Client) Classify(ctx context.Context, r ClassifyRequest) (ClassifyResponse, error) {
	var out ClassifyResponse
	body, err := json.Marshal(r)
	if err != nil {
		return out, err
	}
	resp, err := c.send(ctx, http.MethodPost, "/v1/classify", nil, bytes.NewReader(body), contentType("application/json"))
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("POST /v1/classify: decode answer: %w", err)
	}
	out.RequestID, out.ModelVersion = resp.Header.Get("X-Tailor-Request-Id"), resp.Header.Get("X-Tailor-Model-Version")
	if len(out.Data) != len(r.Input) {
		return out, fmt.Errorf("POST /v1/classify: %d answers for %d inputs", len(out.Data), len(r.Input))
	}
	return out, nil
}
