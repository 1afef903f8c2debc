package tokenizer

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	id         int32
	content    string
	special    bool
	lstrip     bool
	rstrip     bool
	singleWord bool
	normalized bool
}

// addedVocab finds added tokens in raw text. All tokens are matched on the
// raw (not normalized) text, leftmost first and longest first at a
// position; for the supported model families every added token is either
// non-normalized or the normalizer is the identity.
type addedVocab struct {
	tokens  []addedToken
	byFirst map[byte][]int // indices into tokens, longest content first
	special map[int32]bool
}

func newAddedVocab(tokens []addedToken) *addedVocab {
	a := &addedVocab{tokens: tokens, byFirst: make(map[byte][]int), special: make(map[int32]bool)}
	for i, t := range tokens {
		a.byFirst[t.content[0]] = append(a.byFirst[t.content[0]], i)
		if t.special {
			a.special[t.id] = true
		}
	}
	for _, idx := range a.byFirst {
		sort.SliceStable(idx, func(x, y int) bool {
			return len(tokens[idx[x]].content) > len(tokens[idx[y]].content)
		})
	}
	return a
}

func (a *addedVocab) isSpecial(id int32) bool { return a != nil && a.special[id] }

// segment is either plain text (id -1) or one added token.
type segment struct {
	text  string
	id    int32
	start int // byte offset in the input
}

// split cuts text into plain-text segments and added tokens.
func (a *addedVocab) split(text string) []segment {
	if a == nil || len(a.tokens) == 0 {
		return []segment{{text: text, id: -1}}
	}
	var out []segment
	last := 0
	for i := 0; i < len(text); {
		tok, ok := a.matchAt(text, i)
		if !ok {
			i++
			continue
		}
		start, end := i, i+len(tok.content)
		if tok.lstrip {
			for start > last {
				r, size := utf8.DecodeLastRuneInString(text[last:start])
				if !unicode.IsSpace(r) {
					break
				}
				start -= size
			}
		}
		if tok.rstrip {
			for end < len(text) {
				r, size := utf8.DecodeRuneInString(text[end:])
				if !unicode.IsSpace(r) {
					break
				}
				end += size
			}
		}
		if start > last {
			out = append(out, segment{text: text[last:start], id: -1, start: last})
		}
		out = append(out, segment{text: text[start:end], id: tok.id, start: start})
		last, i = end, end
	}
	if last < len(text) {
		out = append(out, segment{text: text[last:], id: -1, start: last})
	}
	return out
}

// matchAt returns the longest added token that starts at text[i:] and
// satisfies its single_word condition.
func (a *addedVocab) matchAt(text string, i int) (addedToken, bool) {
	for _, idx := range a.byFirst[text[i]] {
		t := a.tokens[idx]
		if len(text)-i < len(t.content) || text[i:i+len(t.content)] != t.content {
			continue
		}
		if t.singleWord && !isWordBoundary(text, i, i+len(t.content)) {
			continue
		}
		return t, true
	}
	return addedToken{}, false
}

func isWordBoundary(text string, start, end int) bool {
	if start > 0 {
		r, _ := utf8.DecodeLastRuneInString(text[:start])
		if isWordChar(r) {
			return false
		}
	}
	if end < len(text) {
		r, _ := utf8.DecodeRuneInString(text[end:])
		if isWordChar(r) {
			return false
		}
	}
	return true
}

func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || r == '_'
}
