package monitor

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Window kinds.
const (
	CountWindows = "count" // tumbling windows of Size requests
	TimeWindows  = "time"  // tumbling windows [Origin + k·Every, Origin + (k+1)·Every)
)

// Duration is a time.Duration that encodes to JSON as its String form.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string ("1h0m0s").
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// WindowSpec says how requests are grouped into windows.
type WindowSpec struct {
	Kind          string    `json:"kind"`            // CountWindows or TimeWindows
	Size          int       `json:"size,omitempty"`  // count windows: requests per window
	Every         Duration  `json:"every,omitempty"` // time windows: window length
	Origin        time.Time `json:"origin"`          // time windows: start of window 0 (UTC)
	MaxEmbeddings int       `json:"max_embeddings"`  // embeddings kept per window (the first); 0 = 200
	Buckets       int       `json:"buckets"`         // the profile's
	Labels        int       `json:"labels"`          // the profile's
}

// Window is the aggregate of the requests in one window: what the
// detectors read. Per-request values are kept where a test needs the
// sample (lengths, confidences, probabilities), sums elsewhere.
type Window struct {
	Index        int64     `json:"index"` // count windows: 0, 1, 2…; time windows: k
	Start        time.Time `json:"start"` // time windows: the bounds; count windows: first and last request times
	End          time.Time `json:"end"`
	Count        int       `json:"count"`
	Bytes        int64     `json:"bytes"`
	UnknownBytes int64     `json:"unknown_bytes"`
	UnknownTexts int64     `json:"unknown_texts,omitempty"` // requests with an unknown byte
	Tokens       int64     `json:"tokens"`
	RareTokens   int64     `json:"rare_tokens"`
	Lengths      []float64 `json:"lengths"` // byte length per request, arrival order
	Unigrams     []int64   `json:"unigrams"`
	Char3        []int64   `json:"char3"`
	// Examples name the first n-gram seen in each bucket this window.
	UnigramExamples map[int]string `json:"unigram_examples"`
	Char3Examples   map[int]string `json:"char3_examples"`
	Predictions     []int64        `json:"predictions"` // predicted-label counts
	Preds           []int          `json:"preds"`       // per request; −1 without probabilities
	Truth           []int          `json:"truth"`       // per request; −1 unknown
	Confidences     []float64      `json:"confidences"` // per request with probabilities
	Probs           [][]float64    `json:"probs"`       // per request with probabilities
	Embeddings      [][]float64    `json:"embeddings,omitempty"`
}

func newWindow(spec WindowSpec, index int64) *Window {
	return &Window{Index: index, Unigrams: make([]int64, spec.Buckets), Char3: make([]int64, spec.Buckets),
		UnigramExamples: map[int]string{}, Char3Examples: map[int]string{}, Predictions: make([]int64, spec.Labels)}
}

// add counts one request's features into the window.
func (w *Window) add(f Features, maxEmb int) {
	w.Count++
	w.Bytes += int64(f.Bytes)
	w.UnknownBytes += int64(f.UnknownBytes)
	if f.UnknownBytes > 0 {
		w.UnknownTexts++
	}
	w.Tokens += int64(f.Tokens)
	w.RareTokens += int64(f.RareTokens)
	w.Lengths = append(w.Lengths, float64(f.Bytes))
	addGrams(w.Unigrams, w.UnigramExamples, f.Unigrams)
	addGrams(w.Char3, w.Char3Examples, f.Char3)
	pred := f.Pred
	if pred >= len(w.Predictions) || len(f.Probs) != len(w.Predictions) {
		pred = -1
	}
	w.Preds = append(w.Preds, pred)
	w.Truth = append(w.Truth, f.Truth)
	if pred >= 0 {
		w.Predictions[pred]++
		w.Confidences = append(w.Confidences, f.Confidence)
		w.Probs = append(w.Probs, slices.Clone(f.Probs))
	}
	if f.Embedding != nil && len(w.Embeddings) < maxEmb {
		w.Embeddings = append(w.Embeddings, slices.Clone(f.Embedding))
	}
}

func addGrams(hist []int64, ex map[int]string, gs []Gram) {
	for _, g := range gs {
		if g.Bucket < 0 || g.Bucket >= len(hist) {
			continue
		}
		hist[g.Bucket] += int64(g.Count)
		if _, ok := ex[g.Bucket]; !ok {
			ex[g.Bucket] = g.Example
		}
	}
}

// State is the windowing state machine of one monitor: the spec and the
// open window. It holds everything needed to resume after a restart, so
// the server persists it (Marshal) after each Add and restores it with
// DecodeState.
type State struct {
	Spec WindowSpec `json:"spec"`
	Next int64      `json:"next"` // count windows: index of the open window
	Open *Window    `json:"open,omitempty"`
}

// NewState returns the state for a spec, checking it.
func NewState(spec WindowSpec) (*State, error) {
	if spec.MaxEmbeddings <= 0 {
		spec.MaxEmbeddings = 200
	}
	spec.Origin = spec.Origin.UTC()
	s := &State{Spec: spec}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *State) validate() error {
	sp := s.Spec
	switch {
	case sp.Kind == CountWindows && sp.Size <= 0:
		return errs.Invalid("window: count windows need size > 0, got %d", sp.Size)
	case sp.Kind == TimeWindows && sp.Every <= 0:
		return errs.Invalid("window: time windows need every > 0, got %s", time.Duration(sp.Every))
	case sp.Kind != CountWindows && sp.Kind != TimeWindows:
		return errs.Invalid("window: kind %q; use %q or %q", sp.Kind, CountWindows, TimeWindows)
	case sp.Buckets <= 0 || sp.Buckets > 1<<20 || sp.Labels < 2 || sp.Labels > 1<<16:
		return errs.Invalid("window: buckets %d and labels %d must match a valid profile", sp.Buckets, sp.Labels)
	case sp.MaxEmbeddings <= 0:
		return errs.Invalid("window: max_embeddings must be > 0")
	}
	if w := s.Open; w != nil {
		if len(w.Unigrams) != sp.Buckets || len(w.Char3) != sp.Buckets || len(w.Predictions) != sp.Labels {
			return errs.Invalid("window: open window does not match the spec's buckets and labels")
		}
		if len(w.Lengths) != w.Count || len(w.Preds) != w.Count || len(w.Truth) != w.Count || len(w.Confidences) != len(w.Probs) {
			return errs.Invalid("window: open window's per-request lists disagree with its count %d", w.Count)
		}
		if w.UnigramExamples == nil {
			w.UnigramExamples = map[int]string{}
		}
		if w.Char3Examples == nil {
			w.Char3Examples = map[int]string{}
		}
	}
	return nil
}

// index returns the time window holding t.
func (s *State) index(t time.Time) int64 {
	d := t.Sub(s.Spec.Origin)
	k := int64(d / time.Duration(s.Spec.Every))
	if d < 0 && d%time.Duration(s.Spec.Every) != 0 {
		k--
	}
	return k
}

// Add counts a request that arrived at time at and returns the windows it
// closed, oldest first (at most one). Count windows close when they reach
// Size. Time windows close when a request arrives at or after their end;
// a request earlier than the open window's start (late or clock skew) is
// counted in the open window. Empty windows are never returned.
func (s *State) Add(f Features, at time.Time) []*Window {
	at = at.UTC()
	var closed []*Window
	switch s.Spec.Kind {
	case CountWindows:
		if s.Open == nil {
			s.Open = newWindow(s.Spec, s.Next)
			s.Open.Start = at
		}
		s.Open.add(f, s.Spec.MaxEmbeddings)
		s.Open.End = at
		if s.Open.Count >= s.Spec.Size {
			closed = append(closed, s.Open)
			s.Open = nil
			s.Next++
		}
	case TimeWindows:
		closed = s.Tick(at)
		if s.Open == nil {
			k := s.index(at)
			s.Open = newWindow(s.Spec, k)
			s.Open.Start = s.Spec.Origin.Add(time.Duration(k) * time.Duration(s.Spec.Every))
			s.Open.End = s.Open.Start.Add(time.Duration(s.Spec.Every))
		}
		s.Open.add(f, s.Spec.MaxEmbeddings)
	}
	return closed
}

// Tick closes the open time window when now is at or past its end and
// returns it; count windows never close on time.
func (s *State) Tick(now time.Time) []*Window {
	if s.Spec.Kind != TimeWindows || s.Open == nil || now.UTC().Before(s.Open.End) {
		return nil
	}
	w := s.Open
	s.Open = nil
	return []*Window{w}
}

// Marshal encodes the state as deterministic JSON.
func (s *State) Marshal() ([]byte, error) { return json.Marshal(s) }

// DecodeState parses and validates a state written by Marshal.
func DecodeState(data []byte) (*State, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s State
	if err := dec.Decode(&s); err != nil {
		return nil, errs.Invalid("decode window state: %v; pass the JSON written by State.Marshal", err)
	}
	if dec.More() {
		return nil, errs.Invalid("decode window state: trailing data after the state object")
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &s, nil
}
