package monitor

import (
	"math"
	"sort"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Detector names, in the order a Result lists them.
const (
	DetectKSLength      = "ks_length"         // KS on byte length
	DetectUnknownBytes  = "unknown_byte_rate" // rate test
	DetectRareTokens    = "rare_token_rate"   // rate test
	DetectPSIUnigrams   = "psi_unigrams"      // score
	DetectPSIChar3      = "psi_char3"         // score
	DetectJSUnigrams    = "js_unigrams"       // score
	DetectJSChar3       = "js_char3"          // score
	DetectMMDEmbeddings = "mmd_embeddings"    // permutation test
	DetectChi2Labels    = "chi2_labels"       // chi-square on predicted labels
	DetectKSConfidence  = "ks_confidence"     // KS on max probability
	DetectCBPEAccuracy  = "cbpe_accuracy"     // score: expected accuracy drop
)

// Multiple-testing corrections.
const (
	BH             = "bh"   // Benjamini–Hochberg, false discovery rate
	HolmCorrection = "holm" // Holm, family-wise error rate
)

// Options configures window evaluation; zero fields take the defaults
// named in each comment.
type Options struct {
	Level        float64 // 0.005: FDR (bh) or FWER (holm) level over the window's p-values
	Correction   string  // BH
	PSIThreshold float64 // 0.1 above the null expectation (K−1)/N_eff
	JSThreshold  float64 // 0.1 above the null expectation sqrt((K−1)/(8·N_eff·ln 2))
	Epsilon      float64 // 0.5: pseudo-count per bucket for PSI
	Permutations int     // 1000 for MMD
	Seed         uint64  // MMD permutation seed (mixed with the window index)
	AccuracyDrop float64 // 0.05: CBPE alarms when expected accuracy < reference − this
	MinCount     int     // 30: smaller windows are evaluated but never drift
	TopFeatures  int     // 5 buckets listed per n-gram detector
}

func (o Options) withDefaults() Options {
	f := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	i := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	f(&o.Level, 0.005)
	f(&o.PSIThreshold, 0.1)
	f(&o.JSThreshold, 0.1)
	f(&o.Epsilon, 0.5)
	f(&o.AccuracyDrop, 0.05)
	i(&o.Permutations, 1000)
	i(&o.MinCount, 30)
	i(&o.TopFeatures, 5)
	if o.Correction == "" {
		o.Correction = BH
	}
	return o
}

// TopFeature is one hashed bucket's share of a PSI score.
type TopFeature struct {
	Bucket       int     `json:"bucket"`
	Contribution float64 `json:"contribution"` // (cur − ref)·ln(cur/ref)
	Reference    float64 `json:"reference"`    // smoothed reference proportion
	Window       float64 `json:"window"`       // smoothed window proportion
	Example      string  `json:"example,omitempty"`
}

// DetectorResult is one detector's verdict on a window. Tests carry a
// p-value, its adjusted value and Threshold = the level; scores carry
// Threshold = the score threshold. Skipped says why a detector did not run.
type DetectorResult struct {
	Name      string       `json:"name"`
	Statistic float64      `json:"statistic"`
	PValue    *float64     `json:"pvalue,omitempty"`
	Adjusted  *float64     `json:"adjusted_pvalue,omitempty"`
	Threshold float64      `json:"threshold"`
	Drifted   bool         `json:"drifted"`
	Skipped   string       `json:"skipped,omitempty"`
	Top       []TopFeature `json:"top,omitempty"`
}

// Result is the evaluation of one window.
type Result struct {
	Window      int64            `json:"window"`
	Count       int              `json:"count"`
	Drifted     bool             `json:"drifted"` // any detector drifted
	Correction  string           `json:"correction"`
	Level       float64          `json:"level"`
	Detectors   []DetectorResult `json:"detectors"`
	Performance Performance      `json:"performance"`
}

// Evaluate runs every detector on window w against profile p. It fails only
// when the window does not match the profile.
func Evaluate(p *Profile, w *Window, o Options) (*Result, error) {
	o = o.withDefaults()
	if len(w.Unigrams) != p.Buckets || len(w.Char3) != p.Buckets || len(w.Predictions) != len(p.Labels) {
		return nil, errs.Invalid("evaluate window %d: %d buckets and %d labels, profile has %d and %d; build the window state from this profile",
			w.Index, len(w.Unigrams), len(w.Predictions), p.Buckets, len(p.Labels))
	}
	if o.Correction != BH && o.Correction != HolmCorrection {
		return nil, errs.Invalid("evaluate: correction %q; use %q or %q", o.Correction, BH, HolmCorrection)
	}
	r := &Result{Window: w.Index, Count: w.Count, Correction: o.Correction, Level: o.Level}
	small := w.Count < o.MinCount
	var tests []int // indices into r.Detectors with a p-value
	var ps []float64
	addTest := func(name string, stat, pv float64, skip string) {
		d := DetectorResult{Name: name, Threshold: o.Level, Skipped: skip}
		if skip == "" && (math.IsNaN(stat) || math.IsNaN(pv)) {
			d.Skipped = "not enough data"
		}
		if d.Skipped == "" {
			if math.IsInf(stat, 0) { // JSON has no infinity
				stat = math.Copysign(math.MaxFloat64, stat)
			}
			d.Statistic, d.PValue = stat, ptr(pv)
			tests = append(tests, len(r.Detectors))
			ps = append(ps, pv)
		}
		r.Detectors = append(r.Detectors, d)
	}
	addScore := func(d DetectorResult) {
		if math.IsNaN(d.Statistic) || math.IsNaN(d.Threshold) {
			d = DetectorResult{Name: d.Name, Skipped: "not enough data"}
		}
		d.Drifted = d.Skipped == "" && !small && d.Statistic > d.Threshold
		r.Detectors = append(r.Detectors, d)
	}

	ks := KS2Samp(p.Lengths, w.Lengths)
	addTest(DetectKSLength, ks.D, ks.PValue, "")
	// Version 2 profiles test the share of requests with an unknown byte
	// by Fisher's exact test (requests are independent, and the share is
	// rare); per-request byte counts are too heavy-tailed for the
	// quasi-binomial byte rate of version 1.
	ub := RateTest(float64(p.UnknownBytes), float64(p.Bytes), float64(w.UnknownBytes), float64(w.Bytes), p.UnknownPhi)
	if p.Version >= 2 {
		ub = RateTest(float64(p.UnknownTexts), float64(p.Texts), float64(w.UnknownTexts), float64(w.Count), 1)
		ub.PValue = FisherExact(w.UnknownTexts, int64(w.Count), p.UnknownTexts, p.Texts)
	}
	addTest(DetectUnknownBytes, ub.Z, ub.PValue, "")
	rt := RateTest(float64(p.RareTokens), float64(p.Tokens), float64(w.RareTokens), float64(w.Tokens), p.RarePhi)
	addTest(DetectRareTokens, rt.Z, rt.PValue, "")
	psiU := psiDetector(DetectPSIUnigrams, p.Unigrams, w.Unigrams, p.UnigramExamples, w.UnigramExamples, p.UnigramPhi, o)
	psiC := psiDetector(DetectPSIChar3, p.Char3, w.Char3, p.Char3Examples, w.Char3Examples, p.Char3Phi, o)
	addScore(psiU)
	addScore(psiC)
	addScore(jsDetector(DetectJSUnigrams, p.Unigrams, w.Unigrams, psiU.Top, p.UnigramPhi, o))
	addScore(jsDetector(DetectJSChar3, p.Char3, w.Char3, psiC.Top, p.Char3Phi, o))
	if len(p.Embeddings) < 2 || len(w.Embeddings) < 2 {
		addTest(DetectMMDEmbeddings, 0, 0, "no embeddings in the reference or the window")
	} else if len(w.Embeddings[0]) != len(p.Embeddings[0]) || !sameDim(w.Embeddings) {
		addTest(DetectMMDEmbeddings, 0, 0, "window embeddings differ in dimension from the reference")
	} else {
		// #nosec G115 -- the window index only perturbs a seed; wrap-around is harmless
		m := MMDTest(p.Embeddings, w.Embeddings, o.Permutations, o.Seed^uint64(w.Index))
		addTest(DetectMMDEmbeddings, m.MMD2, m.PValue, "")
	}
	c := labelChi2(p.Predictions, w.Predictions)
	addTest(DetectChi2Labels, c.Statistic, c.PValue, "")
	kc := KS2Samp(p.Confidences, w.Confidences)
	addTest(DetectKSConfidence, kc.D, kc.PValue, "")

	acc, f1 := CBPE(p.Calibration, w.Preds, w.Probs)
	r.Performance = Performance{ExpectedAccuracy: nanZero(acc), ExpectedMacroF1: nanZero(f1), ReferenceAccuracy: p.Accuracy,
		Realised: Realise(w.Preds, w.Truth, len(p.Labels))}
	level, spread := p.expected()
	addScore(DetectorResult{Name: DetectCBPEAccuracy, Statistic: level - acc, Threshold: cbpeThreshold(spread, w.Count, o)})

	var adj []Adjusted
	if o.Correction == BH {
		adj = BenjaminiHochberg(ps, o.Level)
	} else {
		adj = Holm(ps, o.Level)
	}
	for j, i := range tests {
		r.Detectors[i].Adjusted = ptr(adj[j].Adjusted)
		r.Detectors[i].Drifted = adj[j].Reject && !small
	}
	for _, d := range r.Detectors {
		r.Drifted = r.Drifted || d.Drifted
	}
	return r, nil
}

// cbpeThreshold is the drop in expected accuracy that alarms:
// AccuracyDrop plus the one-sided sampling margin at Level of a mean of n
// per-request calibrated probabilities whose spread is spread,
// z·spread/√n. A small window of in-distribution traffic so does not
// alarm on sampling noise alone.
func cbpeThreshold(spread float64, n int, o Options) float64 {
	if n <= 0 {
		return math.NaN()
	}
	return o.AccuracyDrop - normQuantile(o.Level)*spread/math.Sqrt(float64(n))
}

// expected is the in-distribution level and spread of CBPE's per-request
// estimate: measured on validation, or for a profile built before those
// were kept, the validation accuracy A and the Bernoulli bound √(A(1 − A)).
func (p *Profile) expected() (level, spread float64) {
	if p.ExpectedAccuracy > 0 {
		return p.ExpectedAccuracy, p.ExpectedSpread
	}
	a := min(max(p.Accuracy, 0), 1)
	return a, math.Sqrt(a * (1 - a))
}

// normQuantile is the standard normal quantile Φ⁻¹(p), 0 < p < 1.
func normQuantile(p float64) float64 { return -math.Sqrt2 * math.Erfcinv(2*p) }

// labelChi2 compares predicted-label counts with the reference proportions
// (reference counts + 0.5 each, so a label the champion never predicted on
// validation is unlikely, not impossible).
func labelChi2(ref, cur []int64) ChiSquareResult {
	var rt, ct float64
	for i := range ref {
		rt += float64(ref[i]) + 0.5
		ct += float64(cur[i])
	}
	if ct == 0 {
		return ChiSquareResult{Statistic: math.NaN(), PValue: math.NaN()}
	}
	obs, exp := make([]float64, len(ref)), make([]float64, len(ref))
	for i := range ref {
		obs[i] = float64(cur[i])
		exp[i] = ct * (float64(ref[i]) + 0.5) / rt
	}
	return ChiSquare(obs, exp)
}

// nEff is the effective sample size n·m/(n+m) and k the number of buckets
// non-empty in either histogram.
func nEff(ref, cur []int64) (n float64, k int) {
	var a, b float64
	for i := range ref {
		a += float64(ref[i])
		b += float64(cur[i])
		if ref[i] > 0 || cur[i] > 0 {
			k++
		}
	}
	if a == 0 || b == 0 {
		return math.NaN(), k
	}
	return a * b / (a + b), k
}

// psiDetector and jsDetector take φ, the reference's n-gram dispersion
// (1 when unknown): the noise floor grows with it, as n-grams that cluster
// within a request count as fewer independent draws (N_eff/φ).
func psiDetector(name string, ref, cur []int64, refEx, curEx map[int]string, phi float64, o Options) DetectorResult {
	ne, k := nEff(ref, cur)
	ne /= math.Max(phi, 1)
	if math.IsNaN(ne) {
		return DetectorResult{Name: name, Statistic: math.NaN()}
	}
	psi, terms, rp, cp := PSICounts(toFloat(ref), toFloat(cur), o.Epsilon)
	d := DetectorResult{Name: name, Statistic: psi, Threshold: o.PSIThreshold + float64(k-1)/ne}
	order := make([]int, len(terms))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return terms[order[a]] > terms[order[b]] })
	for _, b := range order[:min(o.TopFeatures, len(order))] {
		if terms[b] <= 0 {
			break
		}
		ex := refEx[b]
		if ex == "" {
			ex = curEx[b]
		}
		d.Top = append(d.Top, TopFeature{Bucket: b, Contribution: terms[b], Reference: rp[b], Window: cp[b], Example: ex})
	}
	return d
}

func jsDetector(name string, ref, cur []int64, top []TopFeature, phi float64, o Options) DetectorResult {
	ne, k := nEff(ref, cur)
	ne /= math.Max(phi, 1)
	if math.IsNaN(ne) {
		return DetectorResult{Name: name, Statistic: math.NaN()}
	}
	js := JSDistance(toFloat(ref), toFloat(cur))
	return DetectorResult{Name: name, Statistic: js, Threshold: o.JSThreshold + math.Sqrt(float64(k-1)/(8*ne*math.Ln2)), Top: top}
}

func toFloat(c []int64) []float64 {
	out := make([]float64, len(c))
	for i, v := range c {
		out[i] = float64(v)
	}
	return out
}

func sameDim(v [][]float64) bool {
	for _, e := range v {
		if len(e) != len(v[0]) {
			return false
		}
	}
	return true
}

func ptr(v float64) *float64 { return &v }

func nanZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}
