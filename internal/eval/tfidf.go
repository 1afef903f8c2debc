package eval

import (
	"math"
	"slices"
	"strings"
	"unicode"

	"github.com/tailor-ml/tailor/internal/errs"
)

// TFIDFOptions configure the TF-IDF vectoriser. The zero value matches
// scikit-learn's TfidfVectorizer(ngram_range=(1, 2)) with its other
// defaults: lower-casing, tokens of two or more word characters, raw term
// counts, smooth idf, l2-normalised rows.
type TFIDFOptions struct {
	MinN int `json:"min_n"` // smallest n-gram length; default 1
	MaxN int `json:"max_n"` // largest n-gram length; default 2
	// Sublinear replaces a term count tf with 1 + ln(tf).
	Sublinear bool `json:"sublinear"`
}

func (o TFIDFOptions) withDefaults() TFIDFOptions {
	if o.MinN == 0 {
		o.MinN = 1
	}
	if o.MaxN == 0 {
		o.MaxN = max(2, o.MinN)
	}
	return o
}

// TFIDF is a fitted vectoriser: the vocabulary in sorted (byte) order, which
// is scikit-learn's feature order, and each term's idf =
// ln((1+n)/(1+df)) + 1 over the n fitting documents.
type TFIDF struct {
	Vocab []string
	IDF   []float64
	opts  TFIDFOptions
	index map[string]int
}

// SparseVec is a sparse row: ascending feature indices and their values.
type SparseVec struct {
	Idx []int
	Val []float64
}

// Tokenize lower-cases s and returns its tokens the way scikit-learn's
// default token_pattern (?u)\b\w\w+\b does: maximal runs of two or more
// word characters (Unicode letters, digits and underscore).
func Tokenize(s string) []string {
	s = strings.ToLower(s)
	var toks []string
	start, runes := -1, 0
	flush := func(end int) {
		if start >= 0 && runes >= 2 {
			toks = append(toks, s[start:end])
		}
		start, runes = -1, 0
	}
	for i, r := range s {
		if r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) {
			if start < 0 {
				start = i
			}
			runes++
			continue
		}
		flush(i)
	}
	flush(len(s))
	return toks
}

// terms returns the n-grams of doc, tokens joined by one space, in
// scikit-learn's order (all MinN-grams, then longer ones).
func (o TFIDFOptions) terms(doc string) []string {
	toks := Tokenize(doc)
	var out []string
	for n := o.MinN; n <= o.MaxN; n++ {
		for i := 0; i+n <= len(toks); i++ {
			out = append(out, strings.Join(toks[i:i+n], " "))
		}
	}
	return out
}

// FitTFIDF learns the vocabulary and idf of docs.
func FitTFIDF(docs []string, opts TFIDFOptions) (*TFIDF, error) {
	opts = opts.withDefaults()
	if opts.MinN < 1 || opts.MaxN < opts.MinN {
		return nil, errs.Invalid("tfidf: n-gram range (%d, %d), want 1 ≤ min_n ≤ max_n", opts.MinN, opts.MaxN)
	}
	if len(docs) == 0 {
		return nil, errs.Invalid("tfidf: no documents to fit")
	}
	df := map[string]int{}
	for _, d := range docs {
		seen := map[string]bool{}
		for _, t := range opts.terms(d) {
			if !seen[t] {
				seen[t] = true
				df[t]++
			}
		}
	}
	if len(df) == 0 {
		return nil, errs.Invalid("tfidf: the %d documents hold no token of two or more word characters", len(docs))
	}
	v := &TFIDF{Vocab: sortedKeys(df), opts: opts, index: make(map[string]int, len(df))}
	n := float64(len(docs))
	for i, t := range v.Vocab {
		v.index[t] = i
		v.IDF = append(v.IDF, math.Log((1+n)/(1+float64(df[t])))+1)
	}
	return v, nil
}

// Transform returns the l2-normalised tf·idf row of doc; terms outside the
// vocabulary are dropped, and a document with none is the zero row.
func (v *TFIDF) Transform(doc string) SparseVec {
	counts := map[int]int{}
	for _, t := range v.opts.terms(doc) {
		if i, ok := v.index[t]; ok {
			counts[i]++
		}
	}
	var x SparseVec
	for i := range counts {
		x.Idx = append(x.Idx, i)
	}
	slices.Sort(x.Idx)
	norm := 0.0
	for _, i := range x.Idx {
		tf := float64(counts[i])
		if v.opts.Sublinear {
			tf = 1 + math.Log(tf)
		}
		w := tf * v.IDF[i]
		x.Val = append(x.Val, w)
		norm += w * w
	}
	if norm > 0 {
		norm = math.Sqrt(norm)
		for k := range x.Val {
			x.Val[k] /= norm
		}
	}
	return x
}

// TransformAll transforms every document.
func (v *TFIDF) TransformAll(docs []string) []SparseVec {
	out := make([]SparseVec, len(docs))
	for i, d := range docs {
		out[i] = v.Transform(d)
	}
	return out
}
