package eval

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// GenOptions configure the generation metrics.
type GenOptions struct {
	// Regex, when set, is a Go regexp (RE2 syntax) each output is matched
	// against, unanchored; write ^…$ to match the whole output.
	Regex string `json:"regex,omitempty"`
	// Schema, when set, is a JSON Schema (the subset CompileSchema accepts)
	// each output must satisfy.
	Schema json.RawMessage `json:"schema,omitempty"`
}

// GenMetrics are the generation metrics of a set of predictions, each the
// mean over examples of a per-example score in [0, 1]:
//
//   - ExactMatch: output and reference equal after trimming white space;
//   - Contains: the output contains the trimmed reference;
//   - TokenF1: SQuAD-style token F1 (see TokenF1);
//   - JSONValid: the trimmed output is valid JSON;
//   - RegexMatch: the output matches GenOptions.Regex (only when set);
//   - SchemaValid: the output is JSON that satisfies GenOptions.Schema
//     (only when set).
type GenMetrics struct {
	N           int      `json:"n"`
	ExactMatch  float64  `json:"exact_match"`
	Contains    float64  `json:"contains"`
	TokenF1     float64  `json:"token_f1"`
	JSONValid   float64  `json:"json_valid"`
	RegexMatch  *float64 `json:"regex_match,omitempty"`
	SchemaValid *float64 `json:"schema_valid,omitempty"`
}

// Generate computes the generation metrics of preds.
func Generate(preds []Prediction, opts GenOptions) (GenMetrics, error) {
	d, err := newGenData(preds, opts)
	if err != nil {
		return GenMetrics{}, err
	}
	return d.metrics(), nil
}

// genData holds per-example scores, one vector per metric name.
type genData struct {
	n      int
	scores map[string][]float64
}

func newGenData(preds []Prediction, opts GenOptions) (*genData, error) {
	if len(preds) == 0 {
		return nil, errs.Invalid("generation metrics: no predictions")
	}
	var re *regexp.Regexp
	if opts.Regex != "" {
		var err error
		if re, err = regexp.Compile(opts.Regex); err != nil {
			return nil, errs.Invalid("generation option regex %q: %v", opts.Regex, err)
		}
	}
	var schema *Schema
	if len(opts.Schema) > 0 {
		var err error
		if schema, err = CompileSchema(opts.Schema); err != nil {
			return nil, errs.Invalid("generation option schema: %v", err)
		}
	}
	d := &genData{n: len(preds), scores: map[string][]float64{}}
	add := func(name string, ok bool) { d.scores[name] = append(d.scores[name], b2f(ok)) }
	for _, p := range preds {
		ref, out := strings.TrimSpace(p.Gold), strings.TrimSpace(p.Output)
		add("exact_match", ref == out)
		add("contains", strings.Contains(p.Output, ref))
		d.scores["token_f1"] = append(d.scores["token_f1"], TokenF1(p.Gold, p.Output))
		add("json_valid", json.Valid([]byte(out)))
		if re != nil {
			add("regex_match", re.MatchString(p.Output))
		}
		if schema != nil {
			add("schema_valid", schema.Validate([]byte(out)) == nil)
		}
	}
	return d, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (d *genData) metric(name string, idx []int) (float64, bool) {
	v, ok := d.scores[name]
	if !ok {
		return 0, false
	}
	s := 0.0
	for _, i := range idx {
		s += v[i]
	}
	return s / float64(len(idx)), true
}

func (d *genData) metrics() GenMetrics {
	idx := identity(d.n)
	get := func(name string) float64 { v, _ := d.metric(name, idx); return v }
	m := GenMetrics{
		N:          d.n,
		ExactMatch: get("exact_match"),
		Contains:   get("contains"),
		TokenF1:    get("token_f1"),
		JSONValid:  get("json_valid"),
	}
	if v, ok := d.metric("regex_match", idx); ok {
		m.RegexMatch = &v
	}
	if v, ok := d.metric("schema_valid", idx); ok {
		m.SchemaValid = &v
	}
	return m
}

// squadPunct is Python's string.punctuation, which SQuAD's normaliser strips.
const squadPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

var squadArticles = regexp.MustCompile(`\b(a|an|the)\b`)

// NormalizeAnswer is SQuAD's answer normaliser: lower-case, remove ASCII
// punctuation, replace the articles a/an/the (whole words) with a space,
// and split on white space.
func NormalizeAnswer(s string) []string {
	s = strings.ToLower(s)
	s = strings.Map(func(r rune) rune {
		if r < 128 && strings.ContainsRune(squadPunct, r) {
			return -1
		}
		return r
	}, s)
	s = squadArticles.ReplaceAllString(s, " ")
	return strings.Fields(s)
}

// TokenF1 is SQuAD's token-level F1 between a reference and an output after
// NormalizeAnswer: with c the size of the multiset intersection of the two
// token lists, precision = c/len(output), recall = c/len(reference), F1 their
// harmonic mean; 0 when c is 0; 1 when both token lists are empty and 0
// when only one is.
func TokenF1(reference, output string) float64 {
	ref, out := NormalizeAnswer(reference), NormalizeAnswer(output)
	if len(ref) == 0 || len(out) == 0 {
		return b2f(len(ref) == len(out))
	}
	count := map[string]int{}
	for _, t := range ref {
		count[t]++
	}
	common := 0
	for _, t := range out {
		if count[t] > 0 {
			count[t]--
			common++
		}
	}
	if common == 0 {
		return 0
	}
	p := float64(common) / float64(len(out))
	r := float64(common) / float64(len(ref))
	return 2 * p * r / (p + r)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func quote(s string) string { return strconv.Quote(s) }
