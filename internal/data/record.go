package data

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// validate checks the task's required fields once a record has been built
// from any format. bad turns a field name and message into a positioned error.
func validate(r *Record, task string, bad func(field, msg string) error) error {
	switch task {
	case TaskClassify:
		if r.Text == "" {
			return bad("text", "missing or empty")
		}
		if r.Label == "" {
			return bad("label", "missing or empty")
		}
	case TaskText:
		if r.Text == "" {
			return bad("text", "missing or empty")
		}
	case TaskSFT:
		if len(r.Messages) > 0 {
			if r.Prompt != "" || r.Completion != "" {
				return bad("messages", `not allowed together with "prompt"/"completion"`)
			}
			return validateMessages(r.Messages, bad)
		}
		if r.Prompt == "" {
			return bad("prompt", `missing or empty (want "prompt" and "completion", or "messages")`)
		}
		if r.Completion == "" {
			return bad("completion", "missing or empty")
		}
	default:
		return checkTask(task)
	}
	return nil
}

func validateMessages(ms []Message, bad func(field, msg string) error) error {
	assistant := false
	for i, m := range ms {
		if !roles[m.Role] {
			return bad(fmt.Sprintf("messages[%d].role", i),
				fmt.Sprintf("unknown role %q (want system, user, assistant or tool)", m.Role))
		}
		if m.Role == "assistant" && m.Content != "" {
			assistant = true
		}
	}
	if !assistant {
		return bad("messages", "no assistant message with content to learn from")
	}
	return nil
}

// canonicalEncoder writes the canonical form of records: compact JSON, keys
// sorted, no HTML escaping, one record per line ending in "\n". The common
// shapes take appendCanonical; the rest encoding/json, which defines the form.
type canonicalEncoder struct {
	line []byte
	keys []string
	buf  bytes.Buffer
	enc  *json.Encoder
}

func newCanonicalEncoder() *canonicalEncoder {
	c := &canonicalEncoder{}
	c.enc = json.NewEncoder(&c.buf)
	c.enc.SetEscapeHTML(false)
	return c
}

// encode returns the canonical line of r; the slice is valid until the next call.
func (c *canonicalEncoder) encode(r *Record) ([]byte, error) {
	var ok bool
	if c.line, ok = appendCanonical(c.line[:0], r, &c.keys); ok {
		return c.line, nil
	}
	return c.encodeJSON(r)
}

// encodeJSON is encode through encoding/json.
func (c *canonicalEncoder) encodeJSON(r *Record) ([]byte, error) {
	c.buf.Reset()
	if err := c.enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return c.buf.Bytes(), nil
}

// derivedIDPrefix starts every id derived from content.
const derivedIDPrefix = "c-"

// assignID sets r.ID from content when the input gave none: "c-" and the
// first 16 bytes (hex) of sha256 over the canonical record without id.
func (c *canonicalEncoder) assignID(r *Record) error {
	if r.ID != "" {
		return nil
	}
	line, err := c.encode(r)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(line)
	r.ID = derivedIDPrefix + hex.EncodeToString(sum[:16])
	return nil
}

// idHash is the key of the duplicate-id set and the source of the split draw.
type idHash [sha256.Size]byte

func hashID(id string) idHash { return sha256.Sum256([]byte(id)) }

// key returns the 16 bytes kept in memory per record.
func (h idHash) key() [16]byte { return [16]byte(h[:16]) }

// validUTF8Fields names the first field (sorted) whose raw JSON holds invalid
// UTF-8, or "" when every value is valid.
func invalidUTF8Field(raw map[string]json.RawMessage) string {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !utf8.Valid(raw[k]) {
			return k
		}
	}
	return ""
}

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// isInteger reports whether a JSON number literal is an integer.
func isInteger(lit string) bool {
	s := strings.TrimPrefix(lit, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
