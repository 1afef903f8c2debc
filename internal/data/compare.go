package data

import (
	"math"
	"sort"
)

// ProfileDiff is the per-feature change from one profile (A, the
// reference) to another (B). Fractions and deltas are rounded to 6 decimals.
type ProfileDiff struct {
	RecordsA int64 `json:"records_a"`
	RecordsB int64 `json:"records_b"`
	// Labels: the share of each label in A and B, sorted by label;
	// LabelTV is the total variation distance between the two distributions
	// (0: same, 1: disjoint).
	Labels        []LabelShift `json:"labels,omitempty"`
	LabelTV       float64      `json:"label_tv"`
	LabelsAdded   []string     `json:"labels_added,omitempty"`
	LabelsRemoved []string     `json:"labels_removed,omitempty"`
	// LengthPSI is the population stability index of the length histogram
	// (below 0.1: stable, 0.1–0.25: moderate shift, above: large shift).
	LengthPSI       float64   `json:"length_psi"`
	MeanLengthDelta float64   `json:"mean_length_delta"`
	Chars           CharStats `json:"chars_delta"` // B minus A, Total included
	VocabularyA     int64     `json:"vocabulary_a"`
	VocabularyB     int64     `json:"vocabulary_b"`
	Unigrams        GramDiff  `json:"unigrams"`
	Bigrams         GramDiff  `json:"bigrams"`
}

// LabelShift is one label's share in A and B.
type LabelShift struct {
	Label string  `json:"label"`
	A     float64 `json:"a"`
	B     float64 `json:"b"`
	Delta float64 `json:"delta"`
}

// GramDiff compares two top n-gram lists as sets.
type GramDiff struct {
	Jaccard float64  `json:"jaccard"` // |A∩B| / |A∪B|; 1 when both are empty
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// psiFloor replaces empty buckets' shares so PSI stays finite.
const psiFloor = 1e-4

// Compare returns the change from p (reference) to q.
func (p *Profile) Compare(q *Profile) ProfileDiff {
	d := ProfileDiff{
		RecordsA: p.Records, RecordsB: q.Records,
		LengthPSI:       round6(psi(p.Length.Counts, q.Length.Counts)),
		MeanLengthDelta: round6(q.Length.Mean - p.Length.Mean),
		Chars: CharStats{
			Total:       q.Chars.Total - p.Chars.Total,
			Letters:     round6(q.Chars.Letters - p.Chars.Letters),
			Digits:      round6(q.Chars.Digits - p.Chars.Digits),
			Whitespace:  round6(q.Chars.Whitespace - p.Chars.Whitespace),
			Punctuation: round6(q.Chars.Punctuation - p.Chars.Punctuation),
			NonASCII:    round6(q.Chars.NonASCII - p.Chars.NonASCII),
		},
		VocabularyA: p.Words.Vocabulary, VocabularyB: q.Words.Vocabulary,
		Unigrams: gramDiff(p.Unigrams, q.Unigrams),
		Bigrams:  gramDiff(p.Bigrams, q.Bigrams),
	}
	d.Labels, d.LabelTV, d.LabelsAdded, d.LabelsRemoved = labelShift(p, q)
	return d
}

func labelShift(p, q *Profile) (shifts []LabelShift, tv float64, added, removed []string) {
	if len(p.Labels) == 0 && len(q.Labels) == 0 {
		return nil, 0, nil, nil
	}
	all := map[string]bool{}
	for l := range p.Labels {
		all[l] = true
	}
	for l := range q.Labels {
		all[l] = true
	}
	for _, l := range sortedKeys(all) {
		a, inA := p.Labels[l]
		b, inB := q.Labels[l]
		s := LabelShift{Label: l, A: frac(a, p.Records), B: frac(b, q.Records)}
		s.Delta = round6(s.B - s.A)
		tv += math.Abs(s.Delta)
		shifts = append(shifts, s)
		switch {
		case !inA:
			added = append(added, l)
		case !inB:
			removed = append(removed, l)
		}
	}
	return shifts, round6(tv / 2), added, removed
}

// psi is the population stability index between two histograms with the
// same buckets.
func psi(a, b []int64) float64 {
	if len(a) != len(b) {
		return math.NaN()
	}
	var ta, tb int64
	for i := range a {
		ta += a[i]
		tb += b[i]
	}
	if ta == 0 || tb == 0 {
		return 0
	}
	var s float64
	for i := range a {
		pa := math.Max(float64(a[i])/float64(ta), psiFloor)
		pb := math.Max(float64(b[i])/float64(tb), psiFloor)
		s += (pb - pa) * math.Log(pb/pa)
	}
	return s
}

func gramDiff(a, b []NGram) GramDiff {
	inA, inB := map[string]bool{}, map[string]bool{}
	for _, g := range a {
		inA[g.Gram] = true
	}
	for _, g := range b {
		inB[g.Gram] = true
	}
	var d GramDiff
	both := 0
	for g := range inA {
		if inB[g] {
			both++
		} else {
			d.Removed = append(d.Removed, g)
		}
	}
	for g := range inB {
		if !inA[g] {
			d.Added = append(d.Added, g)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	d.Jaccard = 1
	if union := len(inA) + len(inB) - both; union > 0 {
		d.Jaccard = round6(float64(both) / float64(union))
	}
	return d
}
