package monitor

import (
	"hash/fnv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultBuckets is the number of hash buckets for token unigrams and,
// separately, character 3-grams.
const DefaultBuckets = 1024

// Request is one served classify request as the monitor sees it.
type Request struct {
	Text      string    `json:"text"`
	Probs     []float64 `json:"probs"`               // over Profile.Labels, in that order
	Embedding []float64 `json:"embedding,omitempty"` // pooled hidden state, optional
	Label     string    `json:"label,omitempty"`     // the true label, once known
}

// Gram is one hashed n-gram bucket with its count and an example n-gram
// that fell into it (the first seen).
type Gram struct {
	Bucket  int    `json:"bucket"`
	Count   int    `json:"count"`
	Example string `json:"example"`
}

// Features is what the monitor extracts from one request.
type Features struct {
	Bytes        int       `json:"bytes"`         // len(text)
	Tokens       int       `json:"tokens"`        // see Tokenize
	UnknownBytes int       `json:"unknown_bytes"` // invalid UTF-8 bytes + 3 per U+FFFD
	RareTokens   int       `json:"rare_tokens"`   // tokens not in the reference vocabulary
	Unigrams     []Gram    `json:"unigrams"`      // hashed tokens, by bucket
	Char3        []Gram    `json:"char3"`         // hashed character 3-grams, by bucket
	Pred         int       `json:"pred"`          // argmax of Probs (first on ties); −1 without Probs
	Confidence   float64   `json:"confidence"`    // max of Probs
	Probs        []float64 `json:"probs"`
	Embedding    []float64 `json:"embedding,omitempty"`
	Truth        int       `json:"truth"` // index of the true label; −1 when unknown
}

// Tokenize splits text into tokens: maximal runs of Unicode letters and
// digits, lower-cased. Invalid UTF-8 and U+FFFD end a token like any other
// separator.
func Tokenize(text string) []string {
	var toks []string
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			toks = append(toks, b.String())
			b.Reset()
		}
	}
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		if r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		flush()
	}
	flush()
	return toks
}

// UnknownBytes counts the bytes of text that are invalid UTF-8 plus the
// three bytes of each encoded U+FFFD replacement character.
func UnknownBytes(text string) int {
	n := 0
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError {
			n += size // 1 for an invalid byte, 3 for an encoded U+FFFD
		}
		i += size
	}
	return n
}

// Char3Grams returns the character 3-grams of " " + tokens joined by " " +
// " ", in runes, so that n-grams mark word starts and ends.
func Char3Grams(tokens []string) []string {
	if len(tokens) == 0 {
		return nil
	}
	rs := []rune(" " + strings.Join(tokens, " ") + " ")
	out := make([]string, 0, len(rs)-2)
	for i := 0; i+3 <= len(rs); i++ {
		out = append(out, string(rs[i:i+3]))
	}
	return out
}

// Bucket is the FNV-1a 32-bit hash of s's UTF-8 bytes modulo buckets.
func Bucket(s string, buckets int) int {
	h := fnv.New32a()
	// #nosec G104 -- writes to a hash.Hash never fail
	h.Write([]byte(s))
	// #nosec G115 -- buckets is a small positive configured count
	return int(h.Sum32() % uint32(buckets))
}

// hashGrams counts grams by bucket, in ascending bucket order.
func hashGrams(grams []string, buckets int) []Gram {
	idx := map[int]int{}
	var out []Gram
	for _, g := range grams {
		b := Bucket(g, buckets)
		if i, ok := idx[b]; ok {
			out[i].Count++
			continue
		}
		idx[b] = len(out)
		out = append(out, Gram{Bucket: b, Count: 1, Example: g})
	}
	sortGrams(out)
	return out
}

func sortGrams(g []Gram) {
	for i := 1; i < len(g); i++ {
		for j := i; j > 0 && g[j].Bucket < g[j-1].Bucket; j-- {
			g[j], g[j-1] = g[j-1], g[j]
		}
	}
}

// Extractor turns requests into Features against one reference profile
// (its buckets, vocabulary and label set).
type Extractor struct {
	buckets int
	vocab   map[string]struct{}
	labels  map[string]int
}

// Extractor returns the profile's feature extractor.
func (p *Profile) Extractor() *Extractor {
	e := &Extractor{buckets: p.Buckets, vocab: make(map[string]struct{}, len(p.Vocabulary)), labels: map[string]int{}}
	for _, w := range p.Vocabulary {
		e.vocab[w] = struct{}{}
	}
	for i, l := range p.Labels {
		e.labels[l] = i
	}
	return e
}

// Extract computes the features of one request. A true label not in the
// profile's label set counts as unknown (Truth −1).
func (e *Extractor) Extract(r Request) Features {
	toks := Tokenize(r.Text)
	f := Features{
		Bytes:        len(r.Text),
		Tokens:       len(toks),
		UnknownBytes: UnknownBytes(r.Text),
		Unigrams:     hashGrams(toks, e.buckets),
		Char3:        hashGrams(Char3Grams(toks), e.buckets),
		Pred:         -1,
		Probs:        r.Probs,
		Embedding:    r.Embedding,
		Truth:        -1,
	}
	for _, t := range toks {
		if _, ok := e.vocab[t]; !ok {
			f.RareTokens++
		}
	}
	for i, p := range r.Probs {
		if f.Pred < 0 || p > f.Confidence {
			f.Pred, f.Confidence = i, p
		}
	}
	if i, ok := e.labels[r.Label]; ok && r.Label != "" {
		f.Truth = i
	}
	return f
}
