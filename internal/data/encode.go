package data

import (
	"encoding/json"
	"slices"
	"unicode/utf8"
)

// appendCanonical appends the canonical line of r (with its "\n") to dst,
// byte for byte what encoding/json writes for a Record with HTML escaping
// off, without reflection. It reports ok=false when Metadata holds a value
// other than a string, json.Number, bool or nil (nested values come only
// from the encoding/json path), and the caller then uses encoding/json.
// keys is scratch space for the sorted metadata keys.
func appendCanonical(dst []byte, r *Record, keys *[]string) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, '{')
	if r.Completion != "" {
		dst = appendJSONString(appendKey(dst, start, "completion"), r.Completion)
	}
	if r.ID != "" {
		dst = appendJSONString(appendKey(dst, start, "id"), r.ID)
	}
	if r.Label != "" {
		dst = appendJSONString(appendKey(dst, start, "label"), r.Label)
	}
	if len(r.Messages) > 0 {
		dst = append(appendKey(dst, start, "messages"), '[')
		for i, m := range r.Messages {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(append(dst, `{"content":`...), m.Content)
			dst = append(appendJSONString(append(dst, `,"role":`...), m.Role), '}')
		}
		dst = append(dst, ']')
	}
	if len(r.Metadata) > 0 {
		var ok bool
		if dst, ok = appendMetadata(appendKey(dst, start, "metadata"), r.Metadata, keys); !ok {
			return dst, false
		}
	}
	if r.Prompt != "" {
		dst = appendJSONString(appendKey(dst, start, "prompt"), r.Prompt)
	}
	if r.Text != "" {
		dst = appendJSONString(appendKey(dst, start, "text"), r.Text)
	}
	return append(dst, '}', '\n'), true
}

// appendKey appends `"name":`, after a comma unless it is the first key of
// the object that starts at dst[start].
func appendKey(dst []byte, start int, name string) []byte {
	if len(dst) > start+1 {
		dst = append(dst, ',')
	}
	dst = append(append(dst, '"'), name...)
	return append(dst, '"', ':')
}

// appendMetadata appends a flat metadata object with its keys sorted.
func appendMetadata(dst []byte, md map[string]any, keys *[]string) ([]byte, bool) {
	ks := (*keys)[:0]
	for k := range md {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	*keys = ks
	dst = append(dst, '{')
	for i, k := range ks {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendJSONString(dst, k), ':')
		switch v := md[k].(type) {
		case string:
			dst = appendJSONString(dst, v)
		case json.Number:
			if !isJSONNumber(string(v)) {
				return dst, false
			}
			dst = append(dst, v...)
		case bool:
			if v {
				dst = append(dst, "true"...)
			} else {
				dst = append(dst, "false"...)
			}
		case nil:
			dst = append(dst, "null"...)
		default:
			return dst, false
		}
	}
	return append(dst, '}'), true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does with HTML
// escaping off: `"` and `\` escaped, control characters as \b \f \n \r \t
// or \u00XX, invalid UTF-8 as \ufffd, U+2028 and U+2029 as \u2028, \u2029.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(dst, s[start:]...), '"')
}
