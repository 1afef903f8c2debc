package data

import (
	"maps"
	"math"
	"unicode"
	"unicode/utf8"
)

// Profile summarizes a dataset version. It is computed while streaming, in
// bounded memory, and is deterministic: the same records in the same order
// give the same Profile. Text means: classify, the text; sft, the prompt and
// completion, or the content of every message.
type Profile struct {
	Records     int64            `json:"records"`
	Labels      map[string]int64 `json:"labels,omitempty"`       // classify; the first maxLabels labels seen
	OtherLabels int64            `json:"other_labels,omitempty"` // records whose label did not fit
	Length      LengthStats      `json:"length"`
	Chars       CharStats        `json:"chars"`
	Words       WordStats        `json:"words"`
	Unigrams    []NGram          `json:"unigrams"` // top word unigrams
	Bigrams     []NGram          `json:"bigrams"`  // top word bigrams ("a b")
}

// LengthStats is the distribution of text length per record, in characters.
// Counts[i] counts lengths in [Edges[i-1], Edges[i]); the first bucket
// starts at 0 and the last has no upper edge.
type LengthStats struct {
	Edges  []int64 `json:"edges"`
	Counts []int64 `json:"counts"`
	Mean   float64 `json:"mean"`
	Std    float64 `json:"std"`
	Min    int64   `json:"min"`
	Max    int64   `json:"max"`
}

// CharStats gives the fraction of all text characters in each class.
type CharStats struct {
	Total       int64   `json:"total"`
	Letters     float64 `json:"letters"`
	Digits      float64 `json:"digits"`
	Whitespace  float64 `json:"whitespace"`
	Punctuation float64 `json:"punctuation"` // Unicode punctuation and symbols
	NonASCII    float64 `json:"non_ascii"`
}

// WordStats describes words: maximal runs of letters and digits, lower-cased.
type WordStats struct {
	Count      int64   `json:"count"`
	MeanLength float64 `json:"mean_length"` // characters
	Vocabulary int64   `json:"vocabulary"`  // distinct words, KMV estimate (exact below 4096)
}

// Profile limits.
const (
	maxLabels   = 1000
	topNGrams   = 50
	kmvK        = 4096
	hhUnigrams  = 1 << 14 // heavy-hitter counters for unigrams
	hhBigrams   = 1 << 15 // and bigrams
	floatDigits = 1e6     // profile floats are rounded to 6 decimals
)

// lengthEdges are the fixed histogram bucket edges, in characters.
var lengthEdges = []int64{16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192}

type profiler struct {
	task                                            string
	records                                         int64
	labels                                          map[string]int64
	otherLabels                                     int64
	hist                                            []int64
	mean, m2                                        float64 // Welford
	minLen                                          int64
	maxLen                                          int64
	total, letters, digits, spaces, punct, nonASCII int64
	words, wordChars                                int64
	vocab                                           *kmv
	uni                                             *heavyHitters
	bi                                              *bigrams
	pairs                                           *bigramPipe // nil: bigrams counted inline
	word                                            []byte      // text's buffer, kept between calls
	first                                           bool        // the next word starts a text
}

func newProfiler(task string) *profiler {
	return &profiler{
		task: task, labels: map[string]int64{}, hist: make([]int64, len(lengthEdges)+1),
		vocab: newKMV(kmvK), uni: newHeavyHitters(hhUnigrams), bi: &bigrams{hh: newHeavyHitters(hhBigrams)},
	}
}

func (p *profiler) add(r *Record) {
	p.records++
	if p.task == TaskClassify {
		if _, ok := p.labels[r.Label]; ok || len(p.labels) < maxLabels {
			p.labels[r.Label]++
		} else {
			p.otherLabels++
		}
	}
	var n int64
	switch {
	case p.task == TaskClassify || p.task == TaskText:
		n = p.text(r.Text)
	case len(r.Messages) > 0:
		for _, m := range r.Messages {
			n += p.text(m.Content)
		}
	default:
		n = p.text(r.Prompt) + p.text(r.Completion)
	}
	p.length(n)
}

func (p *profiler) length(n int64) {
	i := 0
	for i < len(lengthEdges) && n >= lengthEdges[i] {
		i++
	}
	p.hist[i]++
	if p.records == 1 || n < p.minLen {
		p.minLen = n
	}
	if n > p.maxLen {
		p.maxLen = n
	}
	d := float64(n) - p.mean
	p.mean += d / float64(p.records)
	p.m2 += d * (float64(n) - p.mean)
}

// asciiInfo describes one ASCII character as the unicode package's tables
// classify it: lower is its lower-case form when it is a letter or digit
// (part of a word), else 0; the flags are 0 or 1 so they can be added.
type asciiInfo struct {
	lower                       byte
	letter, digit, space, punct uint8
}

// asciiTable is filled once from the unicode tables and never written again.
var asciiTable = func() (t [utf8.RuneSelf]asciiInfo) {
	for c := rune(0); c < utf8.RuneSelf; c++ {
		e := &t[c]
		switch {
		case unicode.IsLetter(c):
			e.lower, e.letter = byte(unicode.ToLower(c)), 1
		case unicode.IsDigit(c):
			e.lower, e.digit = byte(c), 1
		case unicode.IsSpace(c):
			e.space = 1
		case unicode.IsPunct(c) || unicode.IsSymbol(c):
			e.punct = 1
		}
	}
	return t
}()

// text scans one piece of text and returns its length in characters. The
// counters live in locals while it runs and are added to p at the end.
func (p *profiler) text(s string) int64 {
	var n, letters, digits, spaces, punct, nonASCII, wordLen int64
	word := p.word[:0]
	p.first = true
	for i := 0; i < len(s); {
		n++
		if c := s[i]; c < utf8.RuneSelf {
			i++
			e := &asciiTable[c]
			letters += int64(e.letter) // branch-free: letters and digits mix in words
			digits += int64(e.digit)
			if e.lower != 0 {
				word = append(word, e.lower)
				wordLen++
				continue
			}
			spaces += int64(e.space)
			punct += int64(e.punct)
			word, wordLen = p.endWord(word, wordLen)
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		i += size
		nonASCII++
		switch {
		case unicode.IsLetter(c) || unicode.IsDigit(c):
			if unicode.IsLetter(c) {
				letters++
			} else {
				digits++
			}
			word = utf8.AppendRune(word, unicode.ToLower(c))
			wordLen++
			continue
		case unicode.IsSpace(c):
			spaces++
		case unicode.IsPunct(c) || unicode.IsSymbol(c):
			punct++
		}
		word, wordLen = p.endWord(word, wordLen)
	}
	p.word, _ = p.endWord(word, wordLen)
	p.total += n
	p.letters += letters
	p.digits += digits
	p.spaces += spaces
	p.punct += punct
	p.nonASCII += nonASCII
	return n
}

// endWord counts the word being built, if any, of wordLen characters, and
// returns the emptied buffer. Bigrams are counted inline or, after
// countPairsApart, in a goroutine of their own.
func (p *profiler) endWord(word []byte, wordLen int64) ([]byte, int64) {
	if len(word) == 0 {
		return word, 0
	}
	p.words++
	p.wordChars += wordLen
	raw := fnvAdd(fnvOffset, word)
	h := mix64(raw)
	p.vocab.add(h)
	p.uni.add(word, h)
	if p.pairs != nil {
		p.pairs.word(word, raw, p.first)
	} else {
		p.bi.word(word, raw, p.first)
	}
	p.first = false
	return word[:0], 0
}

func round6(x float64) float64 { return math.Round(x*floatDigits) / floatDigits }

func frac(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return round6(float64(a) / float64(b))
}

// countPairsApart moves the bigram counting to a goroutine of its own; finish
// or stopPairs ends it.
func (p *profiler) countPairsApart() { p.pairs = newBigramPipe(p.bi) }

// stopPairs waits for the bigram goroutine, if any, to count what it was
// given and end.
func (p *profiler) stopPairs() {
	if p.pairs != nil {
		p.pairs.stop()
	}
}

// bigrams counts the pairs of consecutive words within one text.
type bigrams struct {
	hh      *heavyHitters
	prev    []byte
	prevRaw uint64 // FNV state after prev, before mix64
}

// word takes the next word, whose FNV state (before mix64) is raw; first
// says it starts a text. The pair's hash continues the previous word's
// state over " " and the word, so its bytes are built only when the counter
// sees the pair for the first time.
func (b *bigrams) word(w []byte, raw uint64, first bool) {
	if !first {
		b.hh.addPair(b.prev, w, mix64(fnvAdd(fnvAddByte(b.prevRaw, ' '), w)))
	}
	b.prev = append(b.prev[:0], w...)
	b.prevRaw = raw
}

func (p *profiler) finish() *Profile {
	p.stopPairs()
	out := &Profile{
		Records:     p.records,
		OtherLabels: p.otherLabels,
		Length: LengthStats{
			Edges: append([]int64(nil), lengthEdges...), Counts: append([]int64(nil), p.hist...),
			Mean: round6(p.mean), Min: p.minLen, Max: p.maxLen,
		},
		Chars: CharStats{
			Total: p.total, Letters: frac(p.letters, p.total), Digits: frac(p.digits, p.total),
			Whitespace: frac(p.spaces, p.total), Punctuation: frac(p.punct, p.total),
			NonASCII: frac(p.nonASCII, p.total),
		},
		Words:    WordStats{Count: p.words, MeanLength: frac(p.wordChars, p.words), Vocabulary: p.vocab.estimate()},
		Unigrams: p.uni.top(topNGrams),
		Bigrams:  p.bi.hh.top(topNGrams),
	}
	if p.records > 1 {
		out.Length.Std = round6(math.Sqrt(p.m2 / float64(p.records)))
	}
	if p.task == TaskClassify {
		out.Labels = maps.Clone(p.labels) // p.labels may live on in a Cache
	}
	return out
}
