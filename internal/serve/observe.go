package serve

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Observer is the seam between serving and continuous adaptation: the
// server tells it every classification it answered, primary and shadow,
// after the answer is written, whatever runs the model (this process or a
// supervised child behind Engine). Observe must not block the request: an
// implementation queues and, when full, drops and counts.
type Observer interface {
	Observe(Observation)
}

// Observation is one classified input.
type Observation struct {
	// RequestID is the request's id (X-Tailor-Request-Id); for a request
	// with several inputs, input i > 0 is "<id>#<i>". Feedback names it.
	RequestID string
	Time      time.Time
	Model     string // registry model that answered (Target.Model)
	VersionID string // its version id
	Variant   string // "primary", "canary" or "shadow" (docs/serving.md, deployments)
	Input     string
	// Keep says the request log's policy keeps this request's input
	// (sampled): only then may the observer store Input.
	Keep      bool
	Labels    []string
	Label     string
	Probs     []float64 // over Labels
	Truncated bool
	// Scope is Options.Scope of the request (the application's project):
	// the namespace Model and RequestID belong to.
	Scope string
}

// InputID names input i of a request for feedback.
func InputID(requestID string, i int) string {
	if i == 0 {
		return requestID
	}
	return fmt.Sprintf("%s#%d", requestID, i)
}

// observeClassify reports every answered input of a classify request.
func (s *Server) observeClassify(reqID string, at time.Time, req *ClassifyRequest, l *Loaded, variant string, res []Classification) {
	if s.opts.Observer == nil || l == nil {
		return
	}
	if variant == "" {
		variant = "primary"
	}
	keep := s.opts.Log != nil && s.opts.Log.Sampled(reqID)
	for i, c := range res {
		probs := make([]float64, len(l.Labels))
		for k, name := range l.Labels {
			probs[k] = c.Probabilities[name]
		}
		s.opts.Observer.Observe(Observation{RequestID: InputID(reqID, i), Time: at, Model: l.Target.Model, VersionID: l.Target.VersionID,
			Variant: variant, Input: req.Input[i], Keep: keep, Labels: l.Labels, Label: c.Label, Probs: probs, Truncated: c.Truncated,
			Scope: req.scope})
	}
}

// Usage is one answered request as metering sees it (Options.Meter):
// primary and shadow, whatever its status.
type Usage struct {
	// Tag is Options.MeterTag of the request (the application's project).
	Tag      string
	Time     time.Time
	Endpoint string // "classify", "chat", "completions"
	// Model is the served model the request resolved to (Target.Model),
	// "" when it resolved to none: never the client's free text.
	Model     string
	Version   string // e.g. "spam@v2"
	Variant   string
	Status    int
	TokensIn  int
	TokensOut int
	Latency   time.Duration
}

// meterTag is Options.MeterTag of r, else its Scope ("" without either,
// or without a Meter).
func (s *Server) meterTag(r *http.Request) string {
	switch {
	case s.opts.Meter == nil:
		return ""
	case s.opts.MeterTag != nil:
		return s.opts.MeterTag(r)
	}
	return s.scope(r.Context())
}

// meter tells Options.Meter about one request.
func (s *Server) meter(tag, endpoint, version, variant string, status, in, out int, start time.Time) {
	if s.opts.Meter == nil {
		return
	}
	model, _, _ := strings.Cut(version, "@")
	if variant == "" {
		variant = "primary"
	}
	now := s.opts.Now()
	s.opts.Meter(Usage{Tag: tag, Time: now, Endpoint: endpoint, Model: model, Version: version, Variant: variant, Status: status,
		TokensIn: in, TokensOut: out, Latency: now.Sub(start)})
}
