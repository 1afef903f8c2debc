package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/httpapi"
)

// apiError is an OpenAI-style error: status plus the body's fields.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func badRequest(param, code, format string, a ...any) *apiError {
	e := &apiError{status: http.StatusBadRequest, Message: fmt.Sprintf(format, a...), Type: "invalid_request_error"}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	return e
}

// toAPIError dresses an error as an OpenAI-style error. The status comes
// from the one mapping of error kinds (httpapi.Status); only the body's
// type and code are OpenAI's.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	status := httpapi.Status(err)
	switch {
	case status == http.StatusNotFound:
		e := badRequest("model", "model_not_found", "%v", err)
		e.status = status
		return e
	case errors.Is(err, errQueueFull):
		code := "queue_full"
		return &apiError{status: http.StatusTooManyRequests, Message: err.Error(), Type: "server_overloaded", Code: &code}
	case status < 500:
		e := badRequest("", "", "%v", err)
		e.status = status
		return e
	}
	return &apiError{status: status, Message: err.Error(), Type: "server_error"}
}

// StatusClientClosed is the status recorded (in /metrics and the request
// log) for a request whose client went away before the answer: nginx's 499.
// Nothing reaches the client; counting it as a server error would page
// someone for a client's impatience.
const StatusClientClosed = 499

// statusOf is the status err is recorded with.
func statusOf(err error) int {
	if errors.Is(err, context.Canceled) {
		return StatusClientClosed
	}
	return toAPIError(err).status
}

// writeError writes err as {"error": {...}}; a 429 carries Retry-After.
func (s *Server) writeError(w http.ResponseWriter, err error) int {
	if errors.Is(err, context.Canceled) { // nobody to answer
		return StatusClientClosed
	}
	ae := toAPIError(err)
	if ae.status == http.StatusTooManyRequests || ae.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(s.opts.RetryAfter.Seconds()+0.5))))
	}
	writeJSON(w, ae.status, map[string]any{"error": ae})
	return ae.status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// #nosec G104 -- the status is already sent; a failed body write means the client went away
	enc.Encode(v)
}

// decodeBody reads a JSON body under the size limit.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return badRequest("", "request_too_large", "the request body is larger than %d bytes", s.opts.MaxBodyBytes)
		}
		return badRequest("", "", "read the request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return badRequest("", "invalid_json", "the request body is not valid JSON for this endpoint: %v", err)
	}
	return nil
}

// Strings is a JSON field that is a string or a list of strings.
type Strings []string

// UnmarshalJSON implements json.Unmarshaler.
func (s *Strings) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = Strings{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*s = list
	return nil
}

// Content is a chat message's content: a string or a list of text parts.
type Content string

// UnmarshalJSON implements json.Unmarshaler.
func (c *Content) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*c = Content(one)
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("want a string or a list of text parts")
	}
	var sb strings.Builder
	for i, p := range parts {
		if p.Type != "text" {
			return fmt.Errorf("part %d has type %q; only text parts are supported", i, p.Type)
		}
		sb.WriteString(p.Text)
	}
	*c = Content(sb.String())
	return nil
}

// ChatMessage is one message of a chat request.
type ChatMessage struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// genParams are the sampling fields shared by chat and completions.
type genParams struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int     `json:"max_tokens"`
	MaxCompletionTokens *int     `json:"max_completion_tokens"`
	Temperature         *float64 `json:"temperature"`
	TopP                *float64 `json:"top_p"`
	TopK                *int     `json:"top_k"`
	N                   *int     `json:"n"`
	Stop                Strings  `json:"stop"`
	Seed                *int64   `json:"seed"`
	User                string   `json:"user"`
	Logprobs            any      `json:"logprobs"`
	Tools               any      `json:"tools"`
	Echo                bool     `json:"echo"`
	BestOf              *int     `json:"best_of"`
}

// ChatRequest is POST /v1/chat/completions.
type ChatRequest struct {
	genParams
	Messages []ChatMessage `json:"messages"`
}

// CompletionRequest is POST /v1/completions.
type CompletionRequest struct {
	genParams
	Prompt Strings `json:"prompt"`
}

// ClassifyRequest is POST /v1/classify.
type ClassifyRequest struct {
	tag   string  // Options.MeterTag of the request; not on the wire
	scope string  // Options.Scope of the request; not on the wire
	Model string  `json:"model"`
	Input Strings `json:"input"`
	User  string  `json:"user"`
	// Truncate, true by default, cuts an input longer than the model was
	// trained on to its first max_seq_len tokens, as training did; false
	// answers 400 context_length_exceeded instead.
	Truncate *bool `json:"truncate,omitempty"`
}

// check validates the sampling fields and returns the effective values.
func (p *genParams) check(o *Options) (Sampling, int, error) {
	var smp Sampling
	if p.Model == "" {
		return smp, 0, badRequest("model", "missing_required_parameter", "field \"model\" is required")
	}
	if p.N != nil && *p.N != 1 {
		return smp, 0, badRequest("n", "unsupported_value", "field \"n\" must be 1: this server returns one choice per request")
	}
	if p.BestOf != nil && *p.BestOf != 1 {
		return smp, 0, badRequest("best_of", "unsupported_value", "field \"best_of\" must be 1")
	}
	if p.Echo {
		return smp, 0, badRequest("echo", "unsupported_value", "field \"echo\" is not supported")
	}
	if lp, ok := p.Logprobs.(bool); ok && lp || p.Logprobs != nil && !ok {
		return smp, 0, badRequest("logprobs", "unsupported_value", "field \"logprobs\" is not supported")
	}
	if p.Tools != nil {
		return smp, 0, badRequest("tools", "unsupported_value", "field \"tools\" is not supported")
	}
	maxTok, field := o.DefaultMaxTokens, "max_tokens"
	if p.MaxCompletionTokens != nil {
		maxTok, field = *p.MaxCompletionTokens, "max_completion_tokens"
	} else if p.MaxTokens != nil {
		maxTok = *p.MaxTokens
	}
	if maxTok < 1 || maxTok > o.MaxTokens {
		return smp, 0, badRequest(field, "invalid_value", "field %q is %d; it must be between 1 and %d", field, maxTok, o.MaxTokens)
	}
	smp.Temperature, smp.TopP = 1, 1
	if p.Temperature != nil {
		if *p.Temperature < 0 || *p.Temperature > 2 {
			return smp, 0, badRequest("temperature", "invalid_value", "field \"temperature\" is %g; it must be between 0 and 2", *p.Temperature)
		}
		smp.Temperature = *p.Temperature
	}
	if p.TopP != nil {
		if *p.TopP <= 0 || *p.TopP > 1 {
			return smp, 0, badRequest("top_p", "invalid_value", "field \"top_p\" is %g; it must be in (0, 1]", *p.TopP)
		}
		smp.TopP = *p.TopP
	}
	if p.TopK != nil {
		if *p.TopK < 0 {
			return smp, 0, badRequest("top_k", "invalid_value", "field \"top_k\" is %d; it must not be negative", *p.TopK)
		}
		smp.TopK = *p.TopK
	}
	if len(p.Stop) > 4 {
		return smp, 0, badRequest("stop", "invalid_value", "field \"stop\" has %d sequences; at most 4 are allowed", len(p.Stop))
	}
	for i, st := range p.Stop {
		if st == "" {
			return smp, 0, badRequest("stop", "invalid_value", "field \"stop\"[%d] is empty", i)
		}
	}
	if p.Seed != nil {
		// #nosec G115 -- a client seed reinterpreted as uint64 bits; every value is a valid seed
		smp.Seed = uint64(*p.Seed)
	}
	return smp, maxTok, nil
}

func notFound(id string) error {
	e := badRequest("model", "model_not_found", "The model `%s` does not exist or you do not have access to it.", id)
	e.status = http.StatusNotFound
	return e
}
