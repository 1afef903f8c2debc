package serve

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve/reqlog"
)

// Classification is one input's result.
type Classification struct {
	Index         int                `json:"index"`
	Label         string             `json:"label"`
	Confidence    float64            `json:"confidence"`
	Probabilities map[string]float64 `json:"probabilities"`
	// Truncated is set when the input was cut to the model's input length.
	Truncated bool `json:"truncated,omitempty"`
}

func (s *Server) handleClassify(w http.ResponseWriter, r *http.Request) {
	start := s.opts.Now()
	reqID := s.opts.NewID()
	w.Header().Set("X-Tailor-Request-Id", reqID)
	req := ClassifyRequest{tag: s.meterTag(r), scope: s.scope(r.Context())}
	label := UnknownModel // until the request routes
	done := func(status int, version, variant string, res []Classification, toks int, err error) {
		s.metrics.request(req.scope, "classify", label, status, s.opts.Now().Sub(start))
		s.logClassify(reqID, &req, version, variant, res, toks, status, err, start)
	}
	err := s.decodeBody(w, r, &req)
	if err == nil {
		err = s.checkClassify(&req)
	}
	if err != nil {
		done(s.writeError(w, err), "", "", nil, 0, err)
		return
	}
	rt, err := s.route(r.Context(), req.Model, userKey(r, req.User))
	if err != nil {
		done(s.writeError(w, err), "", "", nil, 0, err)
		return
	}
	label = rt.label
	res, toks, err := s.classify(r.Context(), &req, rt.model)
	version := rt.model.Target.VersionName()
	if err != nil {
		done(s.writeError(w, err), version, rt.variant, nil, toks, err)
		return
	}
	if rt.shadow != nil {
		s.mirrorClassify(req, rt.shadow, reqID)
	}
	w.Header().Set("X-Tailor-Model-Version", version)
	writeJSON(w, http.StatusOK, map[string]any{"id": "cls-" + reqID, "object": "classification", "created": start.Unix(),
		"model": req.Model, "data": res, "usage": map[string]int{"prompt_tokens": toks, "total_tokens": toks}})
	s.metrics.tokens(req.scope, version, toks, 0)
	done(http.StatusOK, version, rt.variant, res, toks, nil)
	s.observeClassify(reqID, start, &req, rt.model, rt.variant, res)
}

func (s *Server) checkClassify(req *ClassifyRequest) error {
	switch {
	case req.Model == "":
		return badRequest("model", "missing_required_parameter", "field \"model\" is required")
	case len(req.Input) == 0:
		return badRequest("input", "invalid_value", "field \"input\" must be a string or a non-empty list of strings")
	case len(req.Input) > s.opts.MaxInputs:
		return badRequest("input", "invalid_value", "field \"input\" has %d items; at most %d are allowed", len(req.Input), s.opts.MaxInputs)
	}
	return nil
}

// classify runs the inputs through l in one queued job.
func (s *Server) classify(ctx context.Context, req *ClassifyRequest, l *Loaded) ([]Classification, int, error) {
	if !l.Classifier() {
		return nil, 0, badRequest("model", "model_not_supported", "model %s has no classification head; use /v1/chat/completions or /v1/completions", req.Model)
	}
	rows := make([]ClassifyRow, len(req.Input))
	truncated := make([]bool, len(req.Input))
	limit := l.MaxInputTokens
	if limit <= 0 || limit > l.MaxPositions {
		limit = l.MaxPositions
	}
	toks := 0
	for i, in := range req.Input {
		t := l.Tokenizer.Encode(in, true)
		switch {
		case len(t) == 0:
			return nil, 0, badRequest("input", "invalid_value", "input[%d] encodes to no tokens", i)
		case len(t) > limit && req.Truncate != nil && !*req.Truncate:
			return nil, 0, badRequest("input", "context_length_exceeded", "input[%d] has %d tokens; model %s takes at most %d (omit \"truncate\": false to cut it as training did)", i, len(t), req.Model, limit)
		case len(t) > limit:
			t, truncated[i] = t[:limit], true
		}
		rows[i] = ClassifyRow{Model: l, Tokens: t}
		toks += len(t)
	}
	client := ctx
	ctx, cancel := context.WithTimeout(ctx, s.opts.MaxRequestTime)
	defer cancel()
	j := &classifyJob{ctx: ctx, rows: rows, done: make(chan classifyResult, 1)}
	if err := s.scheduler(l.Target.BaseID).submit(j); err != nil {
		return nil, toks, err
	}
	var res classifyResult
	select {
	case res = <-j.done:
	case <-ctx.Done():
		if client.Err() == nil { // our limit, not the client's
			return nil, toks, errs.Unavailable("model %s gave no answer within %s, the server's limit per request; retry later", req.Model, s.opts.MaxRequestTime)
		}
		return nil, toks, ctx.Err()
	}
	if res.err != nil {
		return nil, toks, res.err
	}
	out := make([]Classification, len(rows))
	for i, p := range res.probs {
		c := Classification{Index: i, Probabilities: map[string]float64{}}
		best := 0
		for k, v := range p {
			c.Probabilities[l.Labels[k]] = float64(v)
			if v > p[best] {
				best = k
			}
		}
		c.Label, c.Confidence, c.Truncated = l.Labels[best], float64(p[best]), truncated[i]
		out[i] = c
	}
	return out, toks, nil
}

func (s *Server) mirrorClassify(req ClassifyRequest, l *Loaded, reqID string) {
	s.shadows.Add(1)
	go func() {
		defer s.shadows.Done()
		start := s.opts.Now()
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShadowTimeout)
		defer cancel()
		res, toks, err := s.classify(ctx, &req, l)
		status := http.StatusOK
		switch {
		case err == errQueueFull:
			// Logged too, so every mirrored request has its record beside
			// the primary's (a comparison counts it as an error).
			status = http.StatusTooManyRequests
			s.metrics.count(s.metrics.shadow, "dropped")
		case err != nil:
			status = toAPIError(err).status
			s.metrics.count(s.metrics.shadow, "error")
		default:
			s.metrics.count(s.metrics.shadow, "ok")
			s.observeClassify(reqID, start, &req, l, VariantShadow, res)
		}
		s.logClassify(reqID, &req, l.Target.VersionName(), VariantShadow, res, toks, status, err, start)
	}()
}

// logClassify writes one record per request: the inputs joined by newlines
// and the first prediction (a single input is the common case).
func (s *Server) logClassify(reqID string, req *ClassifyRequest, version, variant string, res []Classification, toks, status int, err error, start time.Time) {
	s.meter(req.tag, "classify", version, variant, status, toks, 0, start)
	if !s.opts.Log.Sampled(reqID) {
		return
	}
	rec := reqlog.Record{Time: start, RequestID: reqID, Endpoint: "classify", Model: req.Model, Version: version, Variant: variant,
		Input: strings.Join(req.Input, "\n"), LatencyMS: float64(s.opts.Now().Sub(start).Microseconds()) / 1000,
		PromptTokens: toks, Status: status, Project: req.scope}
	if len(res) > 0 {
		rec.Label, rec.Confidence = res[0].Label, res[0].Confidence
	}
	if err != nil {
		rec.Error = err.Error()
	}
	if _, err := s.opts.Log.Append(rec); err != nil {
		s.opts.Logger.Warn("request log", "err", err)
	}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	entries, err := s.opts.Resolver.Models(r.Context())
	if err != nil {
		s.writeError(w, err)
		return
	}
	data := make([]map[string]any, 0, len(entries))
	for _, e := range entries {
		data = append(data, modelObject(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func modelObject(e ModelEntry) map[string]any {
	return map[string]any{"id": e.ID, "object": "model", "created": e.Created, "owned_by": e.OwnedBy,
		"version": e.Target.VersionName(), "task": e.Target.Task}
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	entries, err := s.opts.Resolver.Models(r.Context())
	if err != nil {
		s.writeError(w, err)
		return
	}
	for _, e := range entries {
		if e.ID == id {
			writeJSON(w, http.StatusOK, modelObject(e))
			return
		}
	}
	ref, err := ParseRef(id)
	if err == nil {
		var t Target
		if t, err = s.opts.Resolver.Resolve(r.Context(), ref); err == nil {
			writeJSON(w, http.StatusOK, modelObject(ModelEntry{ID: id, OwnedBy: "tailor", Target: t}))
			return
		}
	}
	s.writeError(w, notFound(id))
}

func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	g := gauges{queue: map[string]int{}, running: map[string]int{}, engine: s.opts.Engine.Stats()}
	s.mu.RLock()
	for b, sc := range s.scheds {
		g.queue[b], g.running[b] = int(sc.waiting.Load()), int(sc.running.Load())
	}
	s.mu.RUnlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w, g)
}
