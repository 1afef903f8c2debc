package eval

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Inputs identify what was evaluated; the caller fills them.
type Inputs struct {
	ModelID    string `json:"model_id"`
	DatasetID  string `json:"dataset_id"`
	Split      string `json:"split"`
	ChampionID string `json:"champion_id,omitempty"`
	// Hashes are content hashes given by the caller, e.g. "model",
	// "dataset", "predictions", "suite".
	Hashes map[string]string `json:"hashes,omitempty"`
}

// ReportVersion is the version of the report's JSON layout.
const ReportVersion = 1

// Report is one evaluation: inputs, metrics per slice ("all" first, then
// "name=value" sorted), latency and cost when the predictions carry them,
// baselines, and the gate verdict when gates were given.
type Report struct {
	Version   int            `json:"version"`
	Inputs    Inputs         `json:"inputs"`
	Task      Task           `json:"task"`
	Slices    []SliceMetrics `json:"slices"`
	Latency   *LatencyStats  `json:"latency,omitempty"`
	Cost      *Cost          `json:"cost,omitempty"`
	Baselines []Baseline     `json:"baselines,omitempty"`
	Verdict   *Verdict       `json:"verdict,omitempty"`
	// Forgetting compares an incremental run's candidate with the model it
	// started from on that model's earlier test split; its gate is also in
	// Verdict.
	Forgetting *Forgetting `json:"forgetting,omitempty"`
}

// Slice returns the metrics of the named slice.
func (r *Report) Slice(name string) (SliceMetrics, bool) {
	for _, s := range r.Slices {
		if s.Slice == name {
			return s, true
		}
	}
	return SliceMetrics{}, false
}

// JSONDigits is the number of significant digits every non-integer number
// keeps in the report's JSON.
const JSONDigits = 10

// MarshalCanonical returns the report's canonical JSON: object keys sorted,
// two-space indentation, every non-integer number rounded to JSONDigits
// significant digits (so last-bit differences between machines do not
// change the bytes), and a final newline. The same report always gives the
// same bytes, and decoding and re-encoding them gives them again.
func (r *Report) MarshalCanonical() ([]byte, error) {
	c := *r
	c.Version = ReportVersion
	raw, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return canonicalJSON(raw)
}

// Digest is the hex sha256 of the canonical JSON.
func (r *Report) Digest() (string, error) {
	b, err := r.MarshalCanonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Digest is the hex sha256 of the inputs' canonical JSON: the report's
// identity.
func (in Inputs) Digest() (string, error) {
	raw, err := json.Marshal(in)
	if err != nil {
		return "", fmt.Errorf("encode inputs: %w", err)
	}
	b, err := canonicalJSON(raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// ParseReport decodes a report written by MarshalCanonical; unknown fields
// and a different layout version are errors.
func ParseReport(data []byte) (*Report, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Report
	if err := dec.Decode(&r); err != nil {
		return nil, errs.Invalid("eval report: %v", err)
	}
	if r.Version != ReportVersion {
		return nil, errs.Invalid("eval report: version %d, this build reads version %d", r.Version, ReportVersion)
	}
	return &r, nil
}

func canonicalJSON(raw []byte) ([]byte, error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	v, err = roundNumbers(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return buf.Bytes(), nil
}

// roundNumbers rewrites every non-integer number to JSONDigits significant
// digits; maps re-encode with sorted keys.
func roundNumbers(v any) (any, error) {
	switch t := v.(type) {
	case json.Number:
		s := string(t)
		if !strings.ContainsAny(s, ".eE") {
			return t, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("canonical json: number %s: %w", s, err)
		}
		// Re-encode the rounded value as encoding/json would, so decoding
		// and re-encoding gives the same literal.
		r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', JSONDigits, 64), 64)
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("canonical json: number %s: %w", s, err)
		}
		return json.Number(b), nil
	case []any:
		for i := range t {
			var err error
			if t[i], err = roundNumbers(t[i]); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k := range t {
			var err error
			if t[k], err = roundNumbers(t[k]); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}
