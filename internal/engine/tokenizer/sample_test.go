package tokenizer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// samplePieces are the building blocks of the generated test corpus:
// contractions, several scripts, emoji (with skin tones and ZWJ
// sequences), numbers of many widths and number-like characters.
var samplePieces = []string{
	"the", "The", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
	"don't", "I'll", "we've", "they're", "she'd", "it's", "IT'S", "'S", "O'Neil", "rock'n'roll", "''", "'",
	"naïve", "café", "Zürich", "straße", "ÆØÅ", "ﬁnance",
	"Ελληνικά", "русский", "язык", "中文字符", "日本語のテキスト", "カタカナ", "한국어", "العربية", "עברית", "हिन्दी", "ภาษาไทย",
	"😀", "👍🏽", "👨‍👩‍👧", "🤗", "🇫🇷", "❤️", "☃",
	"0", "7", "42", "123", "2024", "31415926", "3.14", "1,000,000", "-17", "1e-9", "0x1F",
	"²", "½", "Ⅻ", "١٢٣", "１２３",
	"hello_world", "foo.bar()", "x+=1;", "{\"k\": [1, 2]}", "<tag>", "C++", "e-mail", "...", "!!!", "?!", "#", "@user", "$5", "%", "&&", "||",
	"—", "–", "…", "“quoted”", "«guillemets»", "∑∫√", "→", "©", "®", "™", "·",
}

// sampleSpaces are the separators between pieces, weighted towards a
// single space.
var sampleSpaces = []string{
	" ", " ", " ", " ", " ", " ", "", "", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t", "\u00a0", "\u3000", " \t ", "    \n    ",
}

// sampleTexts generates n documents deterministically from seed.
func sampleTexts(seed uint64, n int) []string {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]string, n)
	for i := range out {
		var sb strings.Builder
		if rng.IntN(4) == 0 {
			sb.WriteString(sampleSpaces[rng.IntN(len(sampleSpaces))])
		}
		words := 1 + rng.IntN(60)
		for w := 0; w < words; w++ {
			sb.WriteString(samplePieces[rng.IntN(len(samplePieces))])
			if rng.IntN(8) == 0 {
				sb.WriteString(samplePieces[rng.IntN(len(samplePieces))]) // glued
			}
			if w+1 < words || rng.IntN(3) == 0 {
				sb.WriteString(sampleSpaces[rng.IntN(len(sampleSpaces))])
			}
		}
		out[i] = sb.String()
	}
	return out
}

// realTexts returns real prose and code available offline: this package's
// own source files and the licence texts Debian ships, split into
// paragraphs.
func realTexts() []string {
	var files []string
	if m, err := filepath.Glob("*.go"); err == nil {
		files = append(files, m...)
	}
	for _, f := range []string{"/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/Apache-2.0"} {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, para := range strings.Split(string(b), "\n\n") {
			if strings.TrimSpace(para) != "" {
				out = append(out, para)
			}
		}
	}
	return out
}
