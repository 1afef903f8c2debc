package corpus

import (
	"encoding/base64"
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
)

// decodeTransfer undoes a Content-Transfer-Encoding. It is lenient: bad
// base64 characters are dropped and malformed quoted-printable escapes are
// kept literally, because real mail (spam above all) is often malformed.
func decodeTransfer(b []byte, encoding string) []byte {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		return decodeBase64(b)
	case "quoted-printable":
		return decodeQP(b)
	}
	return b
}

func decodeBase64(b []byte) []byte {
	clean := make([]byte, 0, len(b))
	for _, c := range b {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			clean = append(clean, c)
		case c == '=':
			// Padding ends the data; anything after it is ignored.
			goto done
		}
	}
done:
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1]
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, err := base64.RawStdEncoding.Decode(out, clean)
	if err != nil {
		// Non-canonical trailing bits: keep what decoded.
		return out[:n]
	}
	return out[:n]
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func decodeQP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		// Soft line break: "=" then optional spaces then a newline.
		j := i + 1
		for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
			j++
		}
		if j < len(b) && (b[j] == '\n' || b[j] == '\r') {
			if b[j] == '\r' && j+1 < len(b) && b[j+1] == '\n' {
				j++
			}
			i = j
			continue
		}
		if j == len(b) {
			i = j
			continue
		}
		if i+2 < len(b) {
			hi, ok1 := unhex(b[i+1])
			lo, ok2 := unhex(b[i+2])
			if ok1 && ok2 {
				out = append(out, hi<<4|lo)
				i += 2
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// toUTF8 converts b from the declared charset to valid UTF-8. Undeclared,
// ASCII and UTF-8 text that is not valid UTF-8, unknown charsets and failed
// conversions fall back to Latin-1 (read as Windows-1252, its superset for
// the printable range), so the result is always valid UTF-8.
func toUTF8(b []byte, charset string) string {
	cs := strings.ToLower(strings.Trim(strings.TrimSpace(charset), `"'`))
	switch cs {
	case "", "us-ascii", "ascii", "utf-8", "utf8", "unicode-1-1-utf-7", "default", "x-unknown":
		if utf8.Valid(b) {
			return string(b)
		}
		return latin1(b)
	}
	enc, err := htmlindex.Get(cs)
	if err != nil {
		if utf8.Valid(b) {
			return string(b)
		}
		return latin1(b)
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil || !utf8.Valid(out) {
		return latin1(b)
	}
	return string(out)
}

// latin1 decodes b as Windows-1252, whose printable range is a superset of
// ISO 8859-1; it cannot fail.
func latin1(b []byte) string {
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		var sb strings.Builder
		for _, c := range b {
			sb.WriteRune(rune(c))
		}
		return sb.String()
	}
	return strings.ToValidUTF8(string(out), "\uFFFD")
}

// blockTags are HTML elements that end a line of text.
var blockTags = map[string]bool{
	"br": true, "p": true, "div": true, "tr": true, "li": true, "table": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"blockquote": true, "hr": true, "title": true, "ul": true, "ol": true, "pre": true,
}

// htmlToText strips tags, comments, scripts and styles from s, turns block
// elements into line breaks and decodes character references. A "<" that
// does not start a tag is kept as text.
func htmlToText(s string) string {
	var sb strings.Builder
	low := asciiLower(s)
	for i := 0; i < len(s); {
		if s[i] != '<' {
			j := strings.IndexByte(s[i:], '<')
			if j < 0 {
				j = len(s) - i
			}
			sb.WriteString(s[i : i+j])
			i += j
			continue
		}
		next := byte(0)
		if i+1 < len(s) {
			next = low[i+1]
		}
		switch {
		case strings.HasPrefix(s[i:], "<!--"):
			i = skipPast(low, i+4, "-->")
			continue
		case next == '!' || next == '?':
			i = skipPast(low, i, ">")
			continue
		}
		name, closing := tagName(low, i+1)
		if name == "" {
			sb.WriteByte('<')
			i++
			continue
		}
		i = skipPast(low, i+1, ">")
		if !closing && (name == "script" || name == "style") {
			i = skipPast(low, i, "</"+name)
			i = skipPast(low, i, ">")
			continue
		}
		switch {
		case blockTags[name]:
			sb.WriteByte('\n')
		case name == "td" || name == "th":
			sb.WriteByte(' ')
		}
	}
	return html.UnescapeString(sb.String())
}

// asciiLower lower-cases ASCII letters only, so byte offsets into the
// result match the input.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// tagName reads the tag name in low (lower-cased text) at i, after an
// optional "/" for a closing tag. It returns "" when no tag starts at i.
func tagName(low string, i int) (name string, closing bool) {
	if i < len(low) && low[i] == '/' {
		closing = true
		i++
	}
	j := i
	for j < len(low) && (low[j] >= 'a' && low[j] <= 'z' || j > i && low[j] >= '0' && low[j] <= '9') {
		j++
	}
	return low[i:j], closing
}

// skipPast returns the index just after the first occurrence of sep in
// low at or after i, or len(low) when there is none.
func skipPast(low string, i int, sep string) int {
	if i > len(low) {
		return len(low)
	}
	j := strings.Index(low[i:], sep)
	if j < 0 {
		return len(low)
	}
	return i + j + len(sep)
}

// looksLikeHTML reports whether text declared as plain is really HTML.
func looksLikeHTML(s string) bool {
	low := asciiLower(s[:min(len(s), 4096)])
	return strings.Contains(low, "<html") || strings.Contains(low, "<body") ||
		strings.Contains(low, "<table") || strings.Contains(low, "<font")
}

// tidy makes decoded text readable and safe: CRLF to LF, controls other
// than tab and newline dropped, no-break spaces to spaces, runs of spaces
// collapsed, lines trimmed and at most one blank line in a row.
func tidy(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var sb strings.Builder
	blank := 0
	for line := range strings.SplitSeq(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line = strings.Map(func(r rune) rune {
			switch {
			case r == '\t' || r == '\u00a0' || r == '\r':
				return ' '
			case r == '\uFEFF' || r == '\u200b':
				return -1
			case unicode.IsControl(r):
				return -1
			}
			return r
		}, line)
		line = collapseSpaces(line)
		if line == "" {
			blank++
			continue
		}
		if sb.Len() > 0 {
			if blank > 0 {
				sb.WriteString("\n\n")
			} else {
				sb.WriteByte('\n')
			}
		}
		blank = 0
		sb.WriteString(line)
	}
	return sb.String()
}

func collapseSpaces(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncateRunes cuts s to at most n runes, at a rune boundary.
func truncateRunes(s string, n int) string {
	if n <= 0 || len(s) <= n {
		return s
	}
	count := 0
	for i := range s {
		if count == n {
			return strings.TrimRightFunc(s[:i], unicode.IsSpace)
		}
		count++
	}
	return s
}
