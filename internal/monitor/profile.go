package monitor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/tailor-ml/tailor/internal/errs"
)

// ProfileVersion is the reference profile format version. Version 2 adds
// UnknownTexts and the n-gram dispersions; version 1 profiles still decode
// and are judged as before (see Evaluate).
const ProfileVersion = 2

// Profile is the reference a window is compared against. Text statistics
// come from the reference texts (training plus validation), except the
// rare-token rate, which is measured on validation texts against a
// vocabulary built from training texts only (so it is a held-out rate).
// Output statistics come from the champion on the validation split.
//
// It encodes to JSON deterministically: fields in declaration order, maps
// with sorted keys, slices in a fixed order.
type Profile struct {
	Version int      `json:"version"`
	Buckets int      `json:"buckets"`
	Labels  []string `json:"labels"`

	Texts        int64     `json:"texts"`
	Lengths      []float64 `json:"lengths"` // byte lengths, sorted; a stride sample when capped
	Bytes        int64     `json:"bytes"`
	UnknownBytes int64     `json:"unknown_bytes"`
	UnknownPhi   float64   `json:"unknown_phi"` // dispersion of per-text unknown-byte counts
	// UnknownTexts counts the texts with at least one unknown byte
	// (version 2).
	UnknownTexts int64 `json:"unknown_texts,omitempty"`
	// UnigramPhi and Char3Phi are the over-dispersion of per-text n-gram
	// bucket counts around the pooled proportions (version 2; see
	// HistDispersion): n-grams cluster within a text, so a window's
	// histogram varies more than a multinomial of its n-gram count.
	UnigramPhi float64 `json:"unigram_phi,omitempty"`
	Char3Phi   float64 `json:"char3_phi,omitempty"`
	Unigrams   []int64 `json:"unigrams"` // hashed token counts, len Buckets
	Char3      []int64 `json:"char3"`    // hashed character 3-gram counts, len Buckets
	// Examples name, per non-empty bucket, the most frequent n-gram in it
	// (ties: the lexically smallest).
	UnigramExamples map[int]string `json:"unigram_examples"`
	Char3Examples   map[int]string `json:"char3_examples"`

	Vocabulary []string `json:"vocabulary"` // sorted; tokens seen ≥ MinTokenCount times in training
	Tokens     int64    `json:"tokens"`     // validation tokens
	RareTokens int64    `json:"rare_tokens"`
	RarePhi    float64  `json:"rare_phi"`

	Predictions []int64       `json:"predictions"` // champion's predicted-label counts on validation
	Confidences []float64     `json:"confidences"` // champion's max probability per validation text, sorted
	Accuracy    float64       `json:"accuracy"`    // champion's validation accuracy (labelled texts)
	Calibration []Calibration `json:"calibration"` // one per label
	// ExpectedAccuracy is CBPE's estimate on validation itself, the mean
	// of the calibrated probability of each served label, and
	// ExpectedSpread those probabilities' standard deviation: the
	// in-distribution level and noise that cbpe_accuracy compares a
	// window with. Zero in profiles built before they existed.
	ExpectedAccuracy float64     `json:"expected_accuracy,omitempty"`
	ExpectedSpread   float64     `json:"expected_spread,omitempty"`
	Embeddings       [][]float64 `json:"embeddings,omitempty"`
}

// Calibration maps a class probability to a calibrated one by histogram
// binning: validation texts sorted by their probability for the class are
// cut into equal-count bins; Upper[i] is bin i's largest probability and
// Rate[i] the share of bin i whose true label is the class.
type Calibration struct {
	Upper []float64 `json:"upper"`
	Rate  []float64 `json:"rate"`
}

// Apply returns the calibrated probability for p: the rate of the first
// bin whose upper edge is ≥ p (the last bin above every edge).
func (c Calibration) Apply(p float64) float64 {
	if len(c.Rate) == 0 {
		return p
	}
	i := sort.SearchFloat64s(c.Upper, p)
	if i >= len(c.Rate) {
		i = len(c.Rate) - 1
	}
	return c.Rate[i]
}

// Sample is one validation text with the champion's output and its true
// label.
type Sample struct {
	Text      string    `json:"text"`
	Label     string    `json:"label"`
	Probs     []float64 `json:"probs"`
	Embedding []float64 `json:"embedding,omitempty"`
}

// ProfileOptions sets how a profile is built; zero fields take defaults.
type ProfileOptions struct {
	Buckets         int // DefaultBuckets
	MinTokenCount   int // 2: a token seen fewer times in training is rare
	MaxVocabulary   int // 50000 most frequent tokens
	MaxLengths      int // 10000 reference lengths kept (ks_2samp stays exact)
	MaxEmbeddings   int // 200 validation embeddings kept (the first)
	CalibrationBins int // 10
}

func (o ProfileOptions) withDefaults() ProfileOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Buckets, DefaultBuckets)
	def(&o.MinTokenCount, 2)
	def(&o.MaxVocabulary, 50000)
	def(&o.MaxLengths, 10000)
	def(&o.MaxEmbeddings, 200)
	def(&o.CalibrationBins, 10)
	return o
}

// BuildProfile builds the reference from training texts and the champion's
// outputs on the validation split. Every validation sample needs one
// probability per label.
func BuildProfile(labels []string, train []string, val []Sample, o ProfileOptions) (*Profile, error) {
	o = o.withDefaults()
	if len(labels) < 2 {
		return nil, errs.Invalid("build profile: %d labels; a classifier needs at least 2", len(labels))
	}
	if len(val) == 0 {
		return nil, errs.Invalid("build profile: no validation samples; pass the champion's outputs on the validation split")
	}
	li := map[string]int{}
	for i, l := range labels {
		li[l] = i
	}
	for i, s := range val {
		if len(s.Probs) != len(labels) {
			return nil, errs.Invalid("build profile: validation sample %d has %d probabilities for %d labels", i, len(s.Probs), len(labels))
		}
	}
	p := &Profile{Version: ProfileVersion, Buckets: o.Buckets, Labels: slices.Clone(labels),
		Unigrams: make([]int64, o.Buckets), Char3: make([]int64, o.Buckets), Predictions: make([]int64, len(labels))}
	p.Vocabulary = buildVocabulary(train, o)
	texts := append(slices.Clone(train), make([]string, 0, len(val))...)
	for _, s := range val {
		texts = append(texts, s.Text)
	}
	p.textStats(texts, o)
	ex := p.Extractor()
	var rx, rn []float64
	correct, labelled := 0, 0
	preds := make([]int, 0, len(val))
	for _, s := range val {
		f := ex.Extract(Request{Text: s.Text, Probs: s.Probs, Label: s.Label})
		p.Tokens += int64(f.Tokens)
		p.RareTokens += int64(f.RareTokens)
		rx, rn = append(rx, float64(f.RareTokens)), append(rn, float64(f.Tokens))
		p.Predictions[f.Pred]++
		preds = append(preds, f.Pred)
		p.Confidences = append(p.Confidences, f.Confidence)
		if f.Truth >= 0 {
			labelled++
			if f.Truth == f.Pred {
				correct++
			}
		}
		if s.Embedding != nil && len(p.Embeddings) < o.MaxEmbeddings {
			p.Embeddings = append(p.Embeddings, slices.Clone(s.Embedding))
		}
	}
	p.RarePhi = Dispersion(rx, rn)
	slices.Sort(p.Confidences)
	if labelled > 0 {
		p.Accuracy = float64(correct) / float64(labelled)
	}
	p.Calibration = fitCalibration(val, li, len(labels), o.CalibrationBins)
	var qs []float64
	for i, s := range val {
		if q, _ := CBPE(p.Calibration, preds[i:i+1], [][]float64{s.Probs}); !math.IsNaN(q) {
			qs = append(qs, q)
		}
	}
	p.ExpectedAccuracy, p.ExpectedSpread = meanStd(qs)
	return p, nil
}

func buildVocabulary(train []string, o ProfileOptions) []string {
	counts := map[string]int{}
	for _, t := range train {
		for _, w := range Tokenize(t) {
			counts[w]++
		}
	}
	var words []string
	for w, c := range counts {
		if c >= o.MinTokenCount {
			words = append(words, w)
		}
	}
	sort.Slice(words, func(i, j int) bool {
		if counts[words[i]] != counts[words[j]] {
			return counts[words[i]] > counts[words[j]]
		}
		return words[i] < words[j]
	})
	if len(words) > o.MaxVocabulary {
		words = words[:o.MaxVocabulary]
	}
	slices.Sort(words)
	return words
}

func (p *Profile) textStats(texts []string, o ProfileOptions) {
	uniEx, c3Ex := map[int]map[string]int{}, map[int]map[string]int{}
	var ux, un []float64
	stride := (len(texts) + o.MaxLengths - 1) / o.MaxLengths
	for i, t := range texts {
		p.Texts++
		if i%max(stride, 1) == 0 {
			p.Lengths = append(p.Lengths, float64(len(t)))
		}
		u := UnknownBytes(t)
		p.Bytes += int64(len(t))
		p.UnknownBytes += int64(u)
		if u > 0 {
			p.UnknownTexts++
		}
		ux, un = append(ux, float64(u)), append(un, float64(len(t)))
		toks := Tokenize(t)
		countGrams(toks, p.Unigrams, uniEx, p.Buckets)
		countGrams(Char3Grams(toks), p.Char3, c3Ex, p.Buckets)
	}
	slices.Sort(p.Lengths)
	p.UnknownPhi = Dispersion(ux, un)
	p.UnigramPhi = HistDispersion(texts, p.Unigrams, p.Buckets, func(toks []string) []string { return toks })
	p.Char3Phi = HistDispersion(texts, p.Char3, p.Buckets, Char3Grams)
	p.UnigramExamples, p.Char3Examples = topExamples(uniEx), topExamples(c3Ex)
}

func countGrams(grams []string, hist []int64, ex map[int]map[string]int, buckets int) {
	for _, g := range grams {
		b := Bucket(g, buckets)
		hist[b]++
		if ex[b] == nil {
			ex[b] = map[string]int{}
		}
		ex[b][g]++
	}
}

func topExamples(ex map[int]map[string]int) map[int]string {
	out := make(map[int]string, len(ex))
	for b, m := range ex {
		best, bc := "", -1
		for g, c := range m {
			if c > bc || (c == bc && g < best) {
				best, bc = g, c
			}
		}
		out[b] = best
	}
	return out
}

// fitCalibration fits one histogram-binning calibrator per class on the
// labelled validation samples.
func fitCalibration(val []Sample, li map[string]int, k, bins int) []Calibration {
	type pt struct {
		p   float64
		pos bool
	}
	out := make([]Calibration, k)
	for c := 0; c < k; c++ {
		var pts []pt
		for _, s := range val {
			t, ok := li[s.Label]
			if !ok {
				continue
			}
			pts = append(pts, pt{s.Probs[c], t == c})
		}
		if len(pts) == 0 {
			continue
		}
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].p < pts[j].p })
		nb := min(bins, len(pts))
		for b := 0; b < nb; b++ {
			lo, hi := b*len(pts)/nb, (b+1)*len(pts)/nb
			pos := 0
			for _, q := range pts[lo:hi] {
				if q.pos {
					pos++
				}
			}
			out[c].Upper = append(out[c].Upper, pts[hi-1].p)
			out[c].Rate = append(out[c].Rate, float64(pos)/float64(hi-lo))
		}
	}
	return out
}

// Marshal encodes the profile as deterministic, indented JSON.
func (p *Profile) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode profile: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodeProfile parses and validates a profile; unknown fields are errors.
func DecodeProfile(data []byte) (*Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Profile
	if err := dec.Decode(&p); err != nil {
		return nil, errs.Invalid("decode profile: %v; pass the JSON written by Profile.Marshal", err)
	}
	if dec.More() {
		return nil, errs.Invalid("decode profile: trailing data after the profile object")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate checks the profile's internal consistency.
func (p *Profile) Validate() error {
	bad := func(format string, a ...any) error {
		return errs.Invalid("profile: "+format+"; rebuild it with BuildProfile", a...)
	}
	switch {
	case p.Version < 1 || p.Version > ProfileVersion:
		return bad("version %d, want 1 to %d", p.Version, ProfileVersion)
	case p.Buckets <= 0 || p.Buckets > 1<<20:
		return bad("buckets %d out of range (1..%d)", p.Buckets, 1<<20)
	case len(p.Labels) < 2:
		return bad("%d labels, want at least 2", len(p.Labels))
	case len(p.Unigrams) != p.Buckets || len(p.Char3) != p.Buckets:
		return bad("n-gram histograms have %d and %d buckets, want %d", len(p.Unigrams), len(p.Char3), p.Buckets)
	case len(p.Predictions) != len(p.Labels):
		return bad("%d prediction counts for %d labels", len(p.Predictions), len(p.Labels))
	case len(p.Calibration) != len(p.Labels):
		return bad("%d calibrators for %d labels", len(p.Calibration), len(p.Labels))
	case len(p.Lengths) == 0 || len(p.Confidences) == 0:
		return bad("no reference lengths or confidences")
	}
	seen := map[string]bool{}
	for _, l := range p.Labels {
		if seen[l] {
			return bad("label %q repeated", l)
		}
		seen[l] = true
	}
	for i, c := range p.Calibration {
		if len(c.Upper) != len(c.Rate) {
			return bad("calibrator %d has %d edges and %d rates", i, len(c.Upper), len(c.Rate))
		}
		if !slices.IsSorted(c.Upper) {
			return bad("calibrator %d edges are not ascending", i)
		}
	}
	for name, h := range map[string][]int64{"unigrams": p.Unigrams, "char3": p.Char3, "predictions": p.Predictions} {
		for _, c := range h {
			if c < 0 {
				return bad("negative count in %s", name)
			}
		}
	}
	for b := range p.UnigramExamples {
		if b < 0 || b >= p.Buckets {
			return bad("unigram example bucket %d out of range", b)
		}
	}
	for b := range p.Char3Examples {
		if b < 0 || b >= p.Buckets {
			return bad("char3 example bucket %d out of range", b)
		}
	}
	for _, v := range [...]float64{p.UnknownPhi, p.RarePhi, p.Accuracy} {
		if math.IsNaN(v) || v < 0 {
			return bad("negative or NaN rate parameter")
		}
	}
	if p.UnknownBytes < 0 || p.Bytes < p.UnknownBytes || p.RareTokens < 0 || p.Tokens < p.RareTokens {
		return bad("rate counts inconsistent")
	}
	if len(p.Embeddings) > 0 {
		d := len(p.Embeddings[0])
		for _, e := range p.Embeddings {
			if len(e) != d || d == 0 {
				return bad("embeddings have unequal or zero dimension")
			}
		}
	}
	return nil
}

// meanStd is the mean and the population standard deviation of xs, summed
// in order.
func meanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)))
}
