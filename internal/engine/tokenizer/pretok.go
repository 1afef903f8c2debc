package tokenizer

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// preStep is one pre-tokenizer: it splits or rewrites words. first is true
// when the text being encoded starts at offset 0 of the caller's input (no
// added token before it).
type preStep func(words []string, first bool) []string

// The split patterns recognized by their exact source text. Go's regexp has
// no lookahead, so these run as hand-written scanners.
const (
	patternGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	patternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	patternQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// scanner returns the byte length of the match starting at s[i:] (never 0
// for i < len(s)).
type scanner func(s string, i int) int

// scannerFor returns the hand-written scanner for a known pattern.
func scannerFor(pattern string) scanner {
	switch pattern {
	case patternGPT2:
		return gpt2Match
	case patternLlama3:
		return func(s string, i int) int { return llama3Match(s, i, 3) }
	case patternQwen2:
		return func(s string, i int) int { return llama3Match(s, i, 1) }
	}
	return nil
}

// splitWith applies a scanner to every word (behaviour "Isolated": every
// match becomes a word; the patterns cover every character).
func splitWith(sc scanner) preStep {
	return func(words []string, _ bool) []string {
		out := make([]string, 0, len(words)*4)
		for _, w := range words {
			for i := 0; i < len(w); {
				n := sc(w, i)
				out = append(out, w[i:i+n])
				i += n
			}
		}
		return out
	}
}

// splitRegexp splits with a Go regular expression; removed drops the
// matches instead of keeping them as words.
func splitRegexp(re *regexp.Regexp, removed bool) preStep {
	return func(words []string, _ bool) []string {
		var out []string
		for _, w := range words {
			last := 0
			for _, m := range re.FindAllStringIndex(w, -1) {
				if m[0] > last {
					out = append(out, w[last:m[0]])
				}
				if !removed && m[1] > m[0] {
					out = append(out, w[m[0]:m[1]])
				}
				last = m[1]
			}
			if last < len(w) {
				out = append(out, w[last:])
			}
		}
		return out
	}
}

type charClass uint8

const (
	classSpace charClass = iota
	classLetter
	classNumber
	classOther
)

func classOf(r rune) charClass {
	switch {
	case unicode.IsSpace(r):
		return classSpace
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	}
	return classOther
}

// runEnd returns the end of the run of characters of class c from s[i:].
func runEnd(s string, i int, c charClass) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if classOf(r) != c {
			break
		}
		i += size
	}
	return i
}

// contraction matches 's 't 're 've 'm 'll 'd at s[i:], optionally ignoring
// case, and returns its length or 0.
func contraction(s string, i int, fold bool) int {
	if s[i] != '\'' {
		return 0
	}
	rest := s[i+1:]
	for _, c := range [...]string{"s", "t", "re", "ve", "m", "ll", "d"} {
		if !fold {
			if strings.HasPrefix(rest, c) {
				return 1 + len(c)
			}
			continue
		}
		// Compare rune by rune with simple case folding.
		j, k := 0, 0
		for k < len(c) && j < len(rest) {
			r, size := utf8.DecodeRuneInString(rest[j:])
			if !strings.EqualFold(string(r), c[k:k+1]) {
				break
			}
			j += size
			k++
		}
		if k == len(c) {
			return 1 + j
		}
	}
	return 0
}

// whitespaceMatch implements `\s+(?!\S)|\s+` at a whitespace character: the
// whole run at the end of the text, else the run less its last character,
// else the single character.
func whitespaceMatch(s string, i int) int {
	end := runEnd(s, i, classSpace)
	if end == len(s) {
		return end - i
	}
	_, last := utf8.DecodeLastRuneInString(s[i:end])
	if end-last > i {
		return end - last - i
	}
	return end - i
}

// gpt2Match implements patternGPT2.
func gpt2Match(s string, i int) int {
	if n := contraction(s, i, false); n > 0 {
		return n
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	j, c := i, classOf(r)
	if r == ' ' && i+1 < len(s) {
		r2, _ := utf8.DecodeRuneInString(s[i+1:])
		if c2 := classOf(r2); c2 != classSpace {
			j, c = i+1, c2
		}
	}
	if c != classSpace {
		return runEnd(s, j, c) - i
	}
	return whitespaceMatch(s, i)
}

// llama3Match implements patternLlama3 (maxDigits 3) and patternQwen2
// (maxDigits 1).
func llama3Match(s string, i int, maxDigits int) int {
	if n := contraction(s, i, true); n > 0 {
		return n
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	c := classOf(r)
	switch {
	case c == classLetter:
		return runEnd(s, i, classLetter) - i
	case c != classNumber && r != '\r' && r != '\n' && i+size < len(s):
		if r2, _ := utf8.DecodeRuneInString(s[i+size:]); classOf(r2) == classLetter {
			return runEnd(s, i+size, classLetter) - i
		}
	case c == classNumber:
		j := i
		for n := 0; n < maxDigits && j < len(s); n++ {
			r2, sz := utf8.DecodeRuneInString(s[j:])
			if classOf(r2) != classNumber {
				break
			}
			j += sz
		}
		return j - i
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j, cj := i, c
	if r == ' ' && i+1 < len(s) {
		r2, _ := utf8.DecodeRuneInString(s[i+1:])
		j, cj = i+1, classOf(r2)
	}
	if cj == classOther {
		end := runEnd(s, j, classOther)
		for end < len(s) && (s[end] == '\r' || s[end] == '\n') {
			end++
		}
		return end - i
	}
	// `\s*[\r\n]+`
	end := runEnd(s, i, classSpace)
	if k := strings.LastIndexAny(s[i:end], "\r\n"); k >= 0 {
		return k + 1
	}
	return whitespaceMatch(s, i)
}

// byteTable maps each byte to the printable character GPT-2's byte-level
// BPE uses for it (bytes_to_unicode), and back. It is never modified.
type byteTable struct {
	char  [256]string
	bytes map[rune]byte
}

func newByteTable() *byteTable {
	t := &byteTable{bytes: make(map[rune]byte, 256)}
	n := 0
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !(b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF) {
			r = rune(256 + n)
			n++
		}
		t.char[b] = string(r)
		t.bytes[r] = byte(b)
	}
	return t
}

// byteLevelTable is the fixed GPT-2 byte-to-character table.
var byteLevelTable = newByteTable()

// toByteLevel rewrites a word's bytes as byte-level characters.
func toByteLevel(w string) string {
	var sb strings.Builder
	sb.Grow(len(w) * 2)
	for i := 0; i < len(w); i++ {
		sb.WriteString(byteLevelTable.char[w[i]])
	}
	return sb.String()
}

// byteLevelStep is the ByteLevel pre-tokenizer: optional prefix space, the
// GPT-2 split when useRegex, then byte-to-character mapping.
func byteLevelStep(addPrefixSpace, useRegex bool) preStep {
	return func(words []string, _ bool) []string {
		out := make([]string, 0, len(words))
		for _, w := range words {
			if addPrefixSpace && !strings.HasPrefix(w, " ") {
				w = " " + w
			}
			if !useRegex {
				out = append(out, toByteLevel(w))
				continue
			}
			for i := 0; i < len(w); {
				n := gpt2Match(w, i)
				out = append(out, toByteLevel(w[i:i+n]))
				i += n
			}
		}
		return out
	}
}

// digitsStep is the Digits pre-tokenizer: runs of numbers (or single ones)
// become their own words.
func digitsStep(individual bool) preStep {
	return func(words []string, _ bool) []string {
		var out []string
		for _, w := range words {
			start := 0
			for i := 0; i < len(w); {
				r, size := utf8.DecodeRuneInString(w[i:])
				if unicode.IsNumber(r) {
					if i > start {
						out = append(out, w[start:i])
					}
					end := i + size
					if !individual {
						end = runEnd(w, i, classNumber)
					}
					out = append(out, w[i:end])
					start, i = end, end
					continue
				}
				i += size
			}
			if start < len(w) {
				out = append(out, w[start:])
			}
		}
		return out
	}
}

// Metaspace prepend schemes.
const (
	prependAlways = "always"
	prependFirst  = "first"
	prependNever  = "never"
)

// metaspaceStep replaces spaces with the replacement character, prepends
// it per scheme, and optionally splits before each replacement character.
func metaspaceStep(repl, scheme string, split bool) preStep {
	return func(words []string, first bool) []string {
		var out []string
		for wi, w := range words {
			w = strings.ReplaceAll(w, " ", repl)
			if !strings.HasPrefix(w, repl) &&
				(scheme == prependAlways || scheme == prependFirst && first && wi == 0) {
				w = repl + w
			}
			if !split {
				out = append(out, w)
				continue
			}
			start := 0
			for i := len(repl); i <= len(w); {
				k := strings.Index(w[i:], repl)
				if k < 0 {
					break
				}
				if i+k > start {
					out = append(out, w[start:i+k])
				}
				start = i + k
				i = start + len(repl)
			}
			out = append(out, w[start:])
		}
		return out
	}
}
