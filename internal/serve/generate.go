package serve

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/serve/reqlog"
)

// genRequest is a validated chat or completion request.
type genRequest struct {
	endpoint     string // "chat" or "completion"
	tag          string // Options.MeterTag of the request
	scope        string // Options.Scope of the request
	modelID      string
	user         string
	messages     []ChatMessage // chat
	prompt       string        // completion
	smp          Sampling
	seeded       bool
	maxTokens    int
	stop         []string
	stream       bool
	includeUsage bool
}

// userKey is the sticky key for canary routing.
func userKey(r *http.Request, field string) string {
	if field != "" {
		return field
	}
	return r.Header.Get("X-Tailor-User")
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Now()
	var req ChatRequest
	err := s.decodeBody(w, r, &req)
	var g genRequest
	if err == nil {
		g, err = s.checkChat(&req)
	}
	if err != nil {
		s.metrics.request(s.scope(r.Context()), "chat", UnknownModel, s.writeError(w, err), s.opts.Now().Sub(start))
		return
	}
	g.user = userKey(r, req.User)
	s.serveGen(w, r, g, start)
}

func (s *Server) checkChat(req *ChatRequest) (genRequest, error) {
	smp, maxTok, err := req.check(&s.opts)
	if err != nil {
		return genRequest{}, err
	}
	if len(req.Messages) == 0 {
		return genRequest{}, badRequest("messages", "invalid_value", "field \"messages\" must hold at least one message")
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant", "developer", "tool":
		default:
			return genRequest{}, badRequest(fmt.Sprintf("messages[%d].role", i), "invalid_value",
				"field \"messages[%d].role\" is %q; use system, user, assistant, developer or tool", i, m.Role)
		}
	}
	return genRequest{endpoint: "chat", modelID: req.Model, messages: req.Messages, smp: smp, seeded: req.Seed != nil,
		maxTokens: maxTok, stop: req.Stop, stream: req.Stream, includeUsage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage}, nil
}

func (s *Server) handleCompletion(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Now()
	var req CompletionRequest
	err := s.decodeBody(w, r, &req)
	var g genRequest
	if err == nil {
		var smp Sampling
		var maxTok int
		smp, maxTok, err = req.check(&s.opts)
		switch {
		case err != nil:
		case len(req.Prompt) != 1:
			err = badRequest("prompt", "invalid_value", "field \"prompt\" must be one string (got %d); send one request per prompt", len(req.Prompt))
		case req.Prompt[0] == "":
			err = badRequest("prompt", "invalid_value", "field \"prompt\" is empty")
		}
		g = genRequest{endpoint: "completion", modelID: req.Model, smp: smp, seeded: req.Seed != nil, maxTokens: maxTok,
			stop: req.Stop, stream: req.Stream, includeUsage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage}
		if len(req.Prompt) == 1 {
			g.prompt = req.Prompt[0]
		}
	}
	if err != nil {
		s.metrics.request(s.scope(r.Context()), "completion", UnknownModel, s.writeError(w, err), s.opts.Now().Sub(start))
		return
	}
	g.user = userKey(r, req.User)
	s.serveGen(w, r, g, start)
}

// encodePrompt renders and tokenizes the request for model l.
func (g *genRequest) encodePrompt(l *Loaded) (text string, toks []int32, err error) {
	tok := l.Tokenizer
	if g.endpoint == "completion" {
		return g.prompt, tok.Encode(g.prompt, true), nil
	}
	msgs := make([]tokenizer.Message, len(g.messages))
	for i, m := range g.messages {
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		msgs[i] = tokenizer.Message{Role: role, Content: string(m.Content)}
	}
	if _, cerr := tok.ChatFormat(); cerr == nil {
		text, err = tok.ApplyChat(msgs, true)
		if err != nil {
			return "", nil, badRequest("messages", "invalid_value", "%v", err)
		}
		return text, tok.Encode(text, false), nil
	}
	// No chat template: a plain-text transcript.
	var sb strings.Builder
	for _, m := range msgs {
		sb.WriteString(m.Role + ": " + m.Content + "\n")
	}
	sb.WriteString("assistant:")
	text = sb.String()
	return text, tok.Encode(text, true), nil
}

// genOutcome is a finished generation.
type genOutcome struct {
	text             string
	finish           string
	promptTokens     int
	completionTokens int
	err              error
}

// startGen tokenizes and queues a generation on l.
func (s *Server) startGen(ctx context.Context, g *genRequest, l *Loaded, reqID string, start time.Time) (*genJob, string, error) {
	if l.Classifier() {
		return nil, "", badRequest("model", "model_not_supported", "model %s is a classifier; use POST /v1/classify", g.modelID)
	}
	text, toks, err := g.encodePrompt(l)
	if err != nil {
		return nil, "", err
	}
	if len(toks) == 0 {
		return nil, "", badRequest("prompt", "invalid_value", "the prompt encodes to no tokens")
	}
	if len(toks) >= l.MaxPositions {
		return nil, "", badRequest("messages", "context_length_exceeded",
			"the prompt has %d tokens; model %s takes at most %d including the completion", len(toks), g.modelID, l.MaxPositions)
	}
	smp := g.smp
	if !g.seeded {
		h := sha256.Sum256([]byte(reqID))
		smp.Seed = binary.BigEndian.Uint64(h[:8])
	}
	j := &genJob{ctx: ctx, model: l, prompt: toks, maxTokens: g.maxTokens, stop: g.stop, deadline: start.Add(s.opts.MaxRequestTime),
		events: make(chan genEvent, g.maxTokens+2), sampler: newSampler(smp)}
	if err := s.scheduler(l.Target.BaseID).submit(j); err != nil {
		return nil, "", err
	}
	return j, text, nil
}

// collect waits for the whole generation.
func collect(j *genJob) genOutcome {
	var sb strings.Builder
	for ev := range j.events {
		sb.WriteString(ev.delta)
		if ev.done {
			return genOutcome{text: sb.String(), finish: ev.finish, promptTokens: ev.promptTokens, completionTokens: ev.completionTokens, err: ev.err}
		}
	}
	return genOutcome{}
}

func (s *Server) serveGen(w http.ResponseWriter, r *http.Request, g genRequest, start time.Time) {
	g.tag, g.scope = s.meterTag(r), s.scope(r.Context())
	reqID := s.opts.NewID()
	w.Header().Set("X-Tailor-Request-Id", reqID)
	label := UnknownModel // until the request routes
	fail := func(err error, version string) {
		st := s.writeError(w, err)
		s.metrics.request(g.scope, g.endpoint, label, st, s.opts.Now().Sub(start))
		s.logGen(reqID, &g, version, "", genOutcome{err: err}, st, start)
	}
	rt, err := s.route(r.Context(), g.modelID, g.user)
	if err != nil {
		fail(err, "")
		return
	}
	label = rt.label
	j, _, err := s.startGen(r.Context(), &g, rt.model, reqID, start)
	if err != nil {
		fail(err, rt.model.Target.VersionName())
		return
	}
	if rt.shadow != nil {
		s.mirrorGen(g, rt.shadow, reqID)
	}
	w.Header().Set("X-Tailor-Model-Version", rt.model.Target.VersionName())
	var out genOutcome
	status := http.StatusOK
	if g.stream {
		out = s.streamGen(w, &g, j, reqID, start)
		if out.err != nil {
			status = statusOf(out.err)
		}
	} else {
		out = collect(j)
		if out.err != nil {
			status = s.writeError(w, out.err)
		} else {
			writeJSON(w, http.StatusOK, completionBody(&g, reqID, start, out))
		}
	}
	s.metrics.request(g.scope, g.endpoint, label, status, s.opts.Now().Sub(start))
	s.metrics.tokens(g.scope, rt.model.Target.VersionName(), out.promptTokens, out.completionTokens)
	s.logGen(reqID, &g, rt.model.Target.VersionName(), rt.variant, out, status, start)
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func (o genOutcome) usage() usage {
	return usage{o.promptTokens, o.completionTokens, o.promptTokens + o.completionTokens}
}

func completionBody(g *genRequest, id string, start time.Time, out genOutcome) map[string]any {
	if g.endpoint == "chat" {
		return map[string]any{"id": "chatcmpl-" + id, "object": "chat.completion", "created": start.Unix(), "model": g.modelID,
			"choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": out.text},
				"finish_reason": out.finish, "logprobs": nil}},
			"usage": out.usage()}
	}
	return map[string]any{"id": "cmpl-" + id, "object": "text_completion", "created": start.Unix(), "model": g.modelID,
		"choices": []map[string]any{{"index": 0, "text": out.text, "finish_reason": out.finish, "logprobs": nil}},
		"usage":   out.usage()}
}

// streamGen writes server-sent events: a chunk per piece of text, a last
// chunk with finish_reason and usage, a usage-only chunk when asked for,
// then "data: [DONE]".
func (s *Server) streamGen(w http.ResponseWriter, g *genRequest, j *genJob, reqID string, start time.Time) genOutcome {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	object, id := "text_completion", "cmpl-"+reqID
	if g.endpoint == "chat" {
		object, id = "chat.completion.chunk", "chatcmpl-"+reqID
	}
	send := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	chunk := func(delta string, first bool, finish any) map[string]any {
		c := map[string]any{"index": 0, "finish_reason": finish, "logprobs": nil}
		if g.endpoint == "chat" {
			d := map[string]any{"content": delta}
			if first {
				d["role"] = "assistant"
			}
			c["delta"] = d
		} else {
			c["text"] = delta
		}
		return map[string]any{"id": id, "object": object, "created": start.Unix(), "model": g.modelID, "choices": []any{c}}
	}
	if g.endpoint == "chat" {
		send(chunk("", true, nil))
	}
	var sb strings.Builder
	for ev := range j.events {
		if ev.delta != "" {
			sb.WriteString(ev.delta)
			send(chunk(ev.delta, false, nil))
		}
		if !ev.done {
			continue
		}
		out := genOutcome{text: sb.String(), finish: ev.finish, promptTokens: ev.promptTokens, completionTokens: ev.completionTokens, err: ev.err}
		if ev.err != nil {
			send(map[string]any{"error": toAPIError(ev.err)})
			return out
		}
		last := chunk("", false, ev.finish)
		last["usage"] = out.usage()
		send(last)
		if g.includeUsage {
			send(map[string]any{"id": id, "object": object, "created": start.Unix(), "model": g.modelID, "choices": []any{}, "usage": out.usage()})
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		if fl != nil {
			fl.Flush()
		}
		return out
	}
	return genOutcome{}
}

// mirrorGen sends a copy of the request to the shadow model. Its outcome is
// logged and counted; it never touches the client's response.
func (s *Server) mirrorGen(g genRequest, l *Loaded, reqID string) {
	s.shadows.Add(1)
	go func() {
		defer s.shadows.Done()
		start := s.opts.Now()
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShadowTimeout)
		defer cancel()
		g.stream = false
		j, _, err := s.startGen(ctx, &g, l, reqID, start)
		if err != nil {
			// Logged too, so every mirrored request has its record beside
			// the primary's (a comparison counts it as an error).
			s.metrics.count(s.metrics.shadow, map[bool]string{true: "dropped", false: "error"}[err == errQueueFull])
			s.logGen(reqID, &g, l.Target.VersionName(), VariantShadow, genOutcome{err: err}, toAPIError(err).status, start)
			return
		}
		out := collect(j)
		status := http.StatusOK
		if out.err != nil {
			status = toAPIError(out.err).status
			s.metrics.count(s.metrics.shadow, "error")
		} else {
			s.metrics.count(s.metrics.shadow, "ok")
		}
		s.logGen(reqID, &g, l.Target.VersionName(), VariantShadow, out, status, start)
	}()
}

func (s *Server) logGen(reqID string, g *genRequest, version, variant string, out genOutcome, status int, start time.Time) {
	s.meter(g.tag, g.endpoint, version, variant, status, out.promptTokens, out.completionTokens, start)
	if !s.opts.Log.Sampled(reqID) {
		return
	}
	// The log keeps what the user wrote (the last message), not the template.
	input := g.prompt
	if n := len(g.messages); n > 0 {
		input = string(g.messages[n-1].Content)
	}
	rec := reqlog.Record{Time: start, RequestID: reqID, Endpoint: g.endpoint, Model: g.modelID, Version: version, Variant: variant,
		Input: input, Output: out.text, LatencyMS: float64(s.opts.Now().Sub(start).Microseconds()) / 1000,
		PromptTokens: out.promptTokens, CompletionTokens: out.completionTokens, Status: status, Project: g.scope}
	if out.err != nil {
		rec.Error = out.err.Error()
	}
	if _, err := s.opts.Log.Append(rec); err != nil {
		s.opts.Logger.Warn("request log", "err", err)
	}
}
