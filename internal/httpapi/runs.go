package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/errs"
)

// followPoll is how often a followed run log looks for new lines.
const followPoll = 200 * time.Millisecond

func (s *server) runRoutes(mux *router) {
	mux.Handle("POST /v1/runs", s.handle(func(r *http.Request) (any, error) {
		var req api.RunStart
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return s.svc.StartRun(r.Context(), req)
	}))
	mux.Handle("POST /v1/evals", s.handle(func(r *http.Request) (any, error) {
		var req api.EvalStart
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		return s.svc.StartEval(r.Context(), req)
	}))
	mux.Handle("GET /v1/runs", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Runs(r.Context(), r.URL.Query().Get("state"))
	}))
	mux.Handle("GET /v1/runs/{id}", s.handle(func(r *http.Request) (any, error) {
		return s.svc.Run(r.Context(), r.PathValue("id"))
	}))
	mux.Handle("POST /v1/runs/{id}/cancel", s.handle(func(r *http.Request) (any, error) {
		return s.svc.CancelRun(r.Context(), r.PathValue("id"))
	}))
	mux.HandleFunc("GET /v1/runs/{id}/logs", s.runLogs)
}

// runLogs streams a run's log as NDJSON; with follow=true it keeps going
// until the run is finished and every line has been sent.
func (s *server) runLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	after, err := parseSeq(q.Get("after"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	follow, err := queryBool(q, "follow")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.svc.Run(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for {
		// Read the state before the lines, so a run that finishes between
		// the two reads is followed once more and no last line is lost.
		run, err := s.svc.Run(r.Context(), id)
		if err != nil {
			return
		}
		lines, err := s.svc.RunLogs(r.Context(), id, after)
		if err != nil {
			return
		}
		for _, l := range lines {
			if enc.Encode(l) != nil {
				return
			}
			after = l.Seq
		}
		if flusher != nil {
			flusher.Flush()
		}
		if !follow || isTerminal(run.State) {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case <-time.After(followPoll):
		}
	}
}

func isTerminal(state string) bool {
	return state == "succeeded" || state == "failed" || state == "canceled" || state == "budget_exceeded"
}

func parseSeq(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errs.Invalid("after=%q: want a non-negative sequence number", s)
	}
	return n, nil
}

func (s *server) eventRoutes(mux *router) {
	mux.HandleFunc("GET /v1/events", s.events)
}

// events replays committed events after `after` (with tail=N only the last
// N of them) and, with follow=true, keeps streaming new ones as server-sent
// events. Live events are subscribed before the replay so none falls in the
// gap; duplicates are dropped by seq.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := parseSeq(q.Get("after"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	follow, err := queryBool(q, "follow")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tail := 0
	if v := q.Get("tail"); v != "" {
		if tail, err = strconv.Atoi(v); err != nil || tail < 1 {
			s.writeError(w, r, errs.Invalid("query parameter tail=%q: want a number of events, 1 or more", v))
			return
		}
	}
	var live <-chan api.Event
	if follow {
		live = s.svc.Subscribe(r.Context())
	}
	past, err := s.svc.Events(r.Context(), after)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if tail > 0 && len(past) > tail {
		past = past[len(past)-tail:]
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		// The headers go now: a follower with nothing to replay would
		// otherwise wait for the first event or keepalive to learn that
		// its stream is open.
		flusher.Flush()
	}
	send := func(e api.Event) bool {
		if e.Seq <= after {
			return true
		}
		data, _ := json.Marshal(e)
		if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, data); err != nil {
			return false
		}
		after = e.Seq
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for _, e := range past {
		if !send(e) {
			return
		}
	}
	if !follow {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		case e, ok := <-live:
			if !ok {
				// Fell behind: catch up from the store and resubscribe.
				live = s.svc.Subscribe(r.Context())
				past, err := s.svc.Events(r.Context(), after)
				if err != nil {
					return
				}
				for _, e := range past {
					if !send(e) {
						return
					}
				}
				continue
			}
			if !send(e) {
				return
			}
		case <-keepalive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}
