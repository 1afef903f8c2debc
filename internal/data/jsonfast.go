package data

import (
	"encoding/json"
	"errors"
	"unicode/utf16"
	"unicode/utf8"
)

// fastJSONL decodes the common shape of a JSONL line without encoding/json:
// one object whose values are strings, numbers, booleans or null, plus a flat
// "metadata" object of the same and, for sft, "messages" as an array of
// {role, content} string pairs. It reports ok=false for anything else
// (other nested values, escaped keys, duplicate keys, lone
// surrogates, invalid UTF-8, malformed JSON, a record that fails
// validation), and the caller then decodes the line with decodeJSONLine,
// which gives the same record or the documented error. The fuzz test
// FuzzFastJSONLAgrees holds the two paths to the same results.
type fastJSONL struct {
	task    string
	scratch []byte // unescaped string bytes
	extra   []fastField
}

// fastField is one top-level field the task does not know.
type fastField struct {
	key string
	val any
}

// fastState is the scanner's position in one line.
type fastState struct {
	b []byte
	i int
}

func (s *fastState) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips whitespace and returns the next byte (0 at the end).
func (s *fastState) next() byte {
	s.skipSpace()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// decode returns the validated record of line, or ok=false.
func (d *fastJSONL) decode(line []byte) (rec Record, ok bool) {
	if !utf8.Valid(line) {
		return Record{}, false
	}
	s := &fastState{b: line}
	if s.next() != '{' {
		return Record{}, false
	}
	s.i++
	d.extra = d.extra[:0]
	var seen uint8 // bit per known field, to refuse duplicates
	if s.next() == '}' {
		return Record{}, false // an empty object never validates
	}
	for {
		if s.next() != '"' {
			return Record{}, false
		}
		key, ok := d.rawKey(s)
		if !ok || s.next() != ':' {
			return Record{}, false
		}
		s.i++
		if !d.field(s, &rec, key, &seen) {
			return Record{}, false
		}
		switch s.next() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
		default:
			return Record{}, false
		}
		break
	}
	if s.skipSpace(); s.i != len(s.b) || !d.foldExtra(&rec) {
		return Record{}, false
	}
	if validate(&rec, d.task, func(string, string) error { return errFastInvalid }) != nil {
		return Record{}, false
	}
	return rec, true
}

// errFastInvalid only tells decode that validation failed.
var errFastInvalid = errors.New("invalid record")

// Bits of fastJSONL.decode's seen mask.
const (
	seenID = 1 << iota
	seenText
	seenLabel
	seenPrompt
	seenCompletion
	seenMetadata
	seenMessages
)

// field decodes the value of one top-level key into rec.
func (d *fastJSONL) field(s *fastState, rec *Record, key []byte, seen *uint8) bool {
	var dst *string
	var bit uint8
	switch string(key) {
	case "id":
		dst, bit = &rec.ID, seenID
	case "text":
		if d.task == TaskClassify || d.task == TaskText {
			dst, bit = &rec.Text, seenText
		}
	case "label":
		if d.task == TaskClassify {
			dst, bit = &rec.Label, seenLabel
		}
	case "prompt":
		if d.task == TaskSFT {
			dst, bit = &rec.Prompt, seenPrompt
		}
	case "completion":
		if d.task == TaskSFT {
			dst, bit = &rec.Completion, seenCompletion
		}
	case "metadata":
		if *seen&seenMetadata != 0 {
			return false
		}
		*seen |= seenMetadata
		return d.metadata(s, rec)
	case "messages":
		if d.task == TaskSFT {
			if *seen&seenMessages != 0 {
				return false
			}
			*seen |= seenMessages
			return d.messages(s, rec)
		}
	}
	if dst == nil { // a field the task does not know: folded into metadata
		v, ok := d.scalar(s)
		if ok {
			d.extra = append(d.extra, fastField{key: string(key), val: v})
		}
		return ok
	}
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return d.knownScalar(s, dst, bit)
}

// knownScalar decodes a known field's value as decodeScalar does, refusing
// what decodeScalar rejects.
func (d *fastJSONL) knownScalar(s *fastState, dst *string, bit uint8) bool {
	switch c := s.next(); {
	case c == '"':
		v, ok := d.str(s)
		*dst = v
		return ok
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		lit, ok := s.number()
		if !ok || bit != seenLabel && (bit != seenID || !isInteger(lit)) {
			return false
		}
		*dst = lit
		return true
	}
	return false
}

// scalar decodes a string, number, boolean or null as decodeAny does.
func (d *fastJSONL) scalar(s *fastState) (any, bool) {
	switch c := s.next(); {
	case c == '"':
		return d.str(s)
	case c == 'n':
		return nil, s.literal("null")
	case c == 't':
		return true, s.literal("true")
	case c == 'f':
		return false, s.literal("false")
	case c == '-' || c >= '0' && c <= '9':
		lit, ok := s.number()
		return json.Number(lit), ok
	}
	return nil, false
}

// metadata decodes null or a flat object of scalars.
func (d *fastJSONL) metadata(s *fastState, rec *Record) bool {
	switch s.next() {
	case 'n':
		return s.literal("null")
	case '{':
		s.i++
	default:
		return false
	}
	if s.next() == '}' {
		s.i++
		return true // empty: no metadata
	}
	md := map[string]any{}
	for {
		if s.next() != '"' {
			return false
		}
		key, ok := d.rawKey(s)
		if !ok || s.next() != ':' {
			return false
		}
		s.i++
		if _, dup := md[string(key)]; dup {
			return false
		}
		v, ok := d.scalar(s)
		if !ok {
			return false
		}
		md[string(key)] = v
		switch s.next() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
			rec.Metadata = md
			return true
		}
		return false
	}
}

// messages decodes a non-empty array of {role, content} objects.
func (d *fastJSONL) messages(s *fastState, rec *Record) bool {
	if s.next() != '[' {
		return false
	}
	s.i++
	var ms []Message
	for {
		m, ok := d.message(s)
		if !ok {
			return false
		}
		ms = append(ms, m)
		switch s.next() {
		case ',':
			s.i++
			continue
		case ']':
			s.i++
			rec.Messages = ms
			return true
		}
		return false
	}
}

// message decodes one object with exactly the string keys role and content.
func (d *fastJSONL) message(s *fastState) (m Message, ok bool) {
	if s.next() != '{' {
		return m, false
	}
	s.i++
	var seen uint8
	for {
		if s.next() != '"' {
			return m, false
		}
		key, ok := d.rawKey(s)
		if !ok || s.next() != ':' {
			return m, false
		}
		s.i++
		if s.next() != '"' {
			return m, false
		}
		v, ok := d.str(s)
		switch {
		case !ok:
			return m, false
		case string(key) == "role" && seen&1 == 0:
			m.Role, seen = v, seen|1
		case string(key) == "content" && seen&2 == 0:
			m.Content, seen = v, seen|2
		default:
			return m, false
		}
		switch s.next() {
		case ',':
			s.i++
			continue
		case '}':
			s.i++
			return m, seen == 3
		}
		return m, false
	}
}

// foldExtra moves the unknown fields into Metadata; a key twice, or also in
// "metadata", is left to the slow path's error.
func (d *fastJSONL) foldExtra(rec *Record) bool {
	for i, f := range d.extra {
		for _, g := range d.extra[:i] {
			if g.key == f.key {
				return false
			}
		}
		if _, dup := rec.Metadata[f.key]; dup {
			return false
		}
	}
	if len(d.extra) > 0 && rec.Metadata == nil {
		rec.Metadata = make(map[string]any, len(d.extra))
	}
	for _, f := range d.extra {
		rec.Metadata[f.key] = f.val
	}
	return true
}

// literal consumes word.
func (s *fastState) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// number consumes a JSON number and returns its literal text.
func (s *fastState) number() (string, bool) {
	end := numberEnd(s.b, s.i)
	if end < 0 {
		return "", false
	}
	lit := string(s.b[s.i:end])
	s.i = end
	return lit, true
}

// isJSONNumber reports whether lit is exactly one JSON number.
func isJSONNumber(lit string) bool { return numberEnd(lit, 0) == len(lit) }

// numberEnd returns the end of the JSON number starting at b[i], or -1.
func numberEnd[T string | []byte](b T, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits[T string | []byte](b T, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// rawKey consumes a key without escapes and returns its bytes (valid until
// the next call on the line).
func (d *fastJSONL) rawKey(s *fastState) ([]byte, bool) {
	start := s.i + 1
	for i := start; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			return s.b[start:i], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// str consumes a string value and returns it unescaped.
func (d *fastJSONL) str(s *fastState) (string, bool) {
	start := s.i + 1
	i := start
	for i < len(s.b) {
		c := s.b[i]
		if c == '"' {
			s.i = i + 1
			return string(s.b[start:i]), true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", false
		}
		i++
	}
	d.scratch = append(d.scratch[:0], s.b[start:i]...)
	for i < len(s.b) {
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			return string(d.scratch), true
		case c < 0x20:
			return "", false
		case c != '\\':
			d.scratch = append(d.scratch, c)
			i++
			continue
		}
		n, ok := d.escape(s.b, i)
		if !ok {
			return "", false
		}
		i += n
	}
	return "", false
}

// escape appends the escape sequence at b[i] ('\\') to scratch and returns
// its length. Lone surrogates are left to encoding/json.
func (d *fastJSONL) escape(b []byte, i int) (int, bool) {
	if i+1 >= len(b) {
		return 0, false
	}
	switch c := b[i+1]; c {
	case '"', '\\', '/':
		d.scratch = append(d.scratch, c)
	case 'b':
		d.scratch = append(d.scratch, '\b')
	case 'f':
		d.scratch = append(d.scratch, '\f')
	case 'n':
		d.scratch = append(d.scratch, '\n')
	case 'r':
		d.scratch = append(d.scratch, '\r')
	case 't':
		d.scratch = append(d.scratch, '\t')
	case 'u':
		r, ok := hex4(b, i+2)
		if !ok {
			return 0, false
		}
		if !utf16.IsSurrogate(r) {
			d.scratch = utf8.AppendRune(d.scratch, r)
			return 6, true
		}
		if i+7 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
			return 0, false
		}
		r2, ok := hex4(b, i+8)
		if c := utf16.DecodeRune(r, r2); ok && c != utf8.RuneError {
			d.scratch = utf8.AppendRune(d.scratch, c)
			return 12, true
		}
		return 0, false
	default:
		return 0, false
	}
	return 2, true
}

// hex4 reads the 4 hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
