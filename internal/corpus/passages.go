package corpus

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Passage is one pretraining record: a piece of a document of at most the
// requested length, cut at paragraph boundaries where possible.
type Passage struct {
	ID       string            `json:"id"`
	Text     string            `json:"text"`
	Metadata map[string]string `json:"metadata"`
}

// Passages cuts documents into passages of at most maxRunes characters:
// paragraphs (separated by blank lines) are packed together while they fit;
// a paragraph longer than maxRunes is cut at the last space before the
// limit. Whitespace inside a paragraph is kept; ids are "<doc id>#<n>".
func Passages(docs []Document, maxRunes int) []Passage {
	var out []Passage
	for _, d := range docs {
		var cur strings.Builder
		n := 0
		flush := func() {
			if t := strings.TrimSpace(cur.String()); t != "" {
				out = append(out, Passage{ID: fmt.Sprintf("%s#%d", d.ID, n), Text: t, Metadata: map[string]string{"doc": d.ID, "title": d.Title}})
				n++
			}
			cur.Reset()
		}
		for _, para := range strings.Split(strings.ReplaceAll(d.Text, "\r\n", "\n"), "\n\n") {
			para = strings.TrimSpace(para)
			for utf8.RuneCountInString(para) > maxRunes {
				flush()
				head, rest := cutRunes(para, maxRunes)
				cur.WriteString(head)
				flush()
				para = strings.TrimSpace(rest)
			}
			if para == "" {
				continue
			}
			if cur.Len() > 0 && utf8.RuneCountInString(cur.String())+2+utf8.RuneCountInString(para) > maxRunes {
				flush()
			}
			if cur.Len() > 0 {
				cur.WriteString("\n\n")
			}
			cur.WriteString(para)
		}
		flush()
	}
	return out
}

// cutRunes splits s before rune max, at the last space if there is one.
func cutRunes(s string, max int) (string, string) {
	i, count := 0, 0
	for i < len(s) && count < max {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	if sp := strings.LastIndexByte(s[:i], ' '); sp > 0 {
		return s[:sp], s[sp+1:]
	}
	return s[:i], s[i:]
}

// WritePassagesJSONL writes passages as the JSONL that
// `tailor dataset import --task text` reads, in order.
func WritePassagesJSONL(w io.Writer, ps []Passage) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, p := range ps {
		if err := enc.Encode(p); err != nil {
			return err
		}
	}
	return nil
}
