package corpus

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/textproto"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Limits on one message, so that hostile input cannot blow up the parser.
const (
	maxMessageBytes = 32 << 20
	maxMIMEDepth    = 8
	maxMIMEParts    = 256
)

// Header is the header-only view of a message: From, Subject and Date as
// decoded UTF-8 text (RFC 2047 encoded words decoded, whitespace
// collapsed). It is the target of the "email headers → JSON" SFT example.
type Header struct {
	Date    string `json:"date"`
	From    string `json:"from"`
	Subject string `json:"subject"`
}

// JSON returns h as compact JSON with keys in sorted order, without HTML
// escaping: {"date":…,"from":…,"subject":…}.
func (h Header) JSON() string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(h) // a struct of strings always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}

// Message is a decoded RFC 822 message.
type Message struct {
	Header Header
	// RawHeader is the header block as UTF-8 text with LF line ends (an
	// mbox "From " line dropped).
	RawHeader string
	// Body is the readable text of the body: text/plain parts preferred,
	// HTML stripped, transfer encodings and charsets decoded. Not truncated.
	Body string
}

// Text returns the readable form of m: the Subject and From lines, a blank
// line and the body, cut to at most maxRunes characters (no limit when
// maxRunes <= 0).
func (m Message) Text(maxRunes int) string {
	s := "Subject: " + m.Header.Subject + "\nFrom: " + m.Header.From
	if m.Body != "" {
		s += "\n\n" + m.Body
	}
	return truncateRunes(s, maxRunes)
}

// headers holds a parsed header block: the first value of each field,
// keyed by canonical MIME key.
type headers map[string]string

// ParseMessage decodes one raw message. It is lenient with malformed mail
// (bad headers, missing boundaries, broken encodings): the result is always
// valid UTF-8. It fails only for input that is not a message at all: empty,
// over 32 MiB, or without a single header field.
func ParseMessage(raw []byte) (Message, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return Message{}, errs.Invalid("empty message")
	}
	if len(raw) > maxMessageBytes {
		return Message{}, errs.Invalid("message of %d bytes, over the %d byte limit", len(raw), maxMessageBytes)
	}
	return (&bodyParser{}).message(raw, 0)
}

// message parses one message at MIME nesting depth depth.
func (p *bodyParser) message(raw []byte, depth int) (Message, error) {
	if bytes.HasPrefix(raw, []byte("From ")) { // mbox separator line
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		} else {
			raw = nil
		}
	}
	block, body := splitHeader(raw)
	h := parseHeaders(block)
	if len(h) == 0 {
		return Message{}, errs.Invalid("no header fields (want \"Name: value\" lines before the first blank line)")
	}
	return Message{
		Header: Header{
			Date:    decodeHeaderValue(h["Date"]),
			From:    decodeHeaderValue(h["From"]),
			Subject: decodeHeaderValue(h["Subject"]),
		},
		RawHeader: strings.ReplaceAll(toUTF8(block, ""), "\r\n", "\n"),
		Body:      tidy(p.readable(h, body, depth)),
	}, nil
}

// splitHeader splits raw at the first empty line into the header block
// (without the empty line) and the body.
func splitHeader(raw []byte) (block, body []byte) {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			return raw, nil
		}
		line := bytes.TrimRight(raw[i:i+j], "\r")
		if len(line) == 0 {
			return raw[:i], raw[i+j+1:]
		}
		i += j + 1
	}
	return raw, nil
}

// parseHeaders reads "Name: value" fields, unfolding continuation lines.
// Lines that are not fields are skipped; the first value of a name wins.
func parseHeaders(block []byte) headers {
	h := headers{}
	var key string
	var val strings.Builder
	flush := func() {
		if key != "" {
			if _, seen := h[key]; !seen {
				h[key] = strings.TrimSpace(val.String())
			}
		}
		key = ""
		val.Reset()
	}
	for line := range strings.SplitSeq(string(block), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if key != "" {
				val.WriteByte(' ')
				val.WriteString(strings.TrimSpace(line))
			}
			continue
		}
		flush()
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		key = textproto.CanonicalMIMEHeaderKey(name)
		val.WriteString(value)
	}
	flush()
	return h
}

// decodeHeaderValue turns a raw header value into readable UTF-8: 8-bit
// bytes via the Latin-1 fallback, RFC 2047 encoded words decoded.
func decodeHeaderValue(v string) string {
	v = toUTF8([]byte(v), "")
	dec := mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		return strings.NewReader(toUTF8(b, charset)), nil
	}}
	if d, err := dec.DecodeHeader(v); err == nil {
		v = d
	}
	return collapseSpaces(tidy(v))
}

// bodyParser walks a MIME tree, counting parts against maxMIMEParts.
type bodyParser struct{ parts int }

// readable returns the readable text of one entity with headers h.
func (p *bodyParser) readable(h headers, body []byte, depth int) string {
	p.parts++
	if depth > maxMIMEDepth || p.parts > maxMIMEParts {
		return ""
	}
	mt, params, err := mime.ParseMediaType(h["Content-Type"])
	if mt == "" || (err != nil && !strings.Contains(mt, "/")) {
		mt, params = "text/plain", map[string]string{}
	}
	if params == nil {
		params = map[string]string{}
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		parts := splitMultipart(body, params["boundary"])
		if len(parts) == 0 {
			return p.plain(h, body, params["charset"])
		}
		return p.multipart(mt, parts, depth)
	case mt == "message/rfc822":
		inner, err := p.message(decodeTransfer(body, h["Content-Transfer-Encoding"]), depth+1)
		if err != nil {
			return ""
		}
		return inner.Text(0)
	case mt == "text/html":
		return htmlToText(toUTF8(decodeTransfer(body, h["Content-Transfer-Encoding"]), params["charset"]))
	case strings.HasPrefix(mt, "text/"):
		return p.plain(h, body, params["charset"])
	}
	return "" // images, attachments and other non-text parts
}

// plain decodes a text part, stripping HTML when it is HTML in disguise.
func (p *bodyParser) plain(h headers, body []byte, charset string) string {
	s := toUTF8(decodeTransfer(body, h["Content-Transfer-Encoding"]), charset)
	if looksLikeHTML(s) {
		return htmlToText(s)
	}
	return s
}

// multipart combines the parts of a multipart entity: for
// multipart/alternative the first text/plain part with text (else the
// first part with any text), for the others every part's text in order.
func (p *bodyParser) multipart(mt string, parts []mimePart, depth int) string {
	if mt == "multipart/alternative" {
		var fallback string
		for _, part := range parts {
			t := p.readable(part.h, part.body, depth+1)
			if strings.TrimSpace(t) == "" {
				continue
			}
			ct, _, _ := mime.ParseMediaType(part.h["Content-Type"])
			if ct == "" || ct == "text/plain" {
				return t
			}
			if fallback == "" {
				fallback = t
			}
		}
		return fallback
	}
	var texts []string
	for _, part := range parts {
		if t := p.readable(part.h, part.body, depth+1); strings.TrimSpace(t) != "" {
			texts = append(texts, t)
		}
	}
	return strings.Join(texts, "\n\n")
}

// mimePart is one body part of a multipart entity.
type mimePart struct {
	h    headers
	body []byte
}

// splitMultipart splits body at "--boundary" lines, dropping the preamble
// and anything after the closing "--boundary--". A missing closing line is
// tolerated. It returns nil when no boundary line is found.
func splitMultipart(body []byte, boundary string) []mimePart {
	if boundary == "" {
		return nil
	}
	delim := []byte("--" + boundary)
	var parts []mimePart
	start := -1 // offset of the current part's first byte
	for i := 0; i <= len(body); {
		j := bytes.IndexByte(body[i:], '\n')
		next := len(body) + 1
		if j >= 0 {
			next = i + j + 1
		}
		line := bytes.TrimRight(body[i:min(next, len(body))], " \t\r\n")
		if bytes.HasPrefix(line, delim) {
			rest := line[len(delim):]
			if start >= 0 {
				parts = append(parts, newPart(body[start:max(start, i-1)]))
			}
			if bytes.HasPrefix(rest, []byte("--")) {
				return parts
			}
			start = min(next, len(body))
			if len(parts) >= maxMIMEParts {
				return parts
			}
		}
		i = next
	}
	if start >= 0 && start < len(body) {
		parts = append(parts, newPart(body[start:]))
	}
	return parts
}

func newPart(b []byte) mimePart {
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) > 0 && (b[0] == '\n' || bytes.HasPrefix(b, []byte("\r\n"))) {
		// No header fields: the body starts right away (RFC 2046 default).
		return mimePart{h: headers{}, body: bytes.TrimLeft(b, "\r\n")}
	}
	block, body := splitHeader(b)
	h := parseHeaders(block)
	if len(h) == 0 {
		return mimePart{h: h, body: b}
	}
	return mimePart{h: h, body: body}
}
