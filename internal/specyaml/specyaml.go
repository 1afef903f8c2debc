// Package specyaml decodes the versioned YAML specs the server stores
// (monitors, triggers): strict fields, and errors that name the file, the
// line and the field. A spec type checks itself and reports a failed rule
// with Bad; Decode turns that into file:line: field: message.
package specyaml

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tailor-ml/tailor/internal/errs"
)

// FieldError is a rule a field broke; Field is a path such as
// "window.size" or "do[1].retrain.recipe".
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Bad reports that field breaks a rule.
func Bad(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Decode reads src into v with unknown fields refused, then runs check.
// needs completes "empty document; a <needs>" for an empty file. Every
// error is errs.Invalid and starts with file (and the line of the field
// when check returned a FieldError).
func Decode(file string, src []byte, needs string, v any, check func() error) error {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return errs.Invalid("%s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 {
		return errs.Invalid("%s: empty document; a %s", file, needs)
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return errs.Invalid("%s: %s", file, strings.Join(te.Errors, "; "))
		}
		return errs.Invalid("%s: %v", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := check(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return errs.Invalid("%s:%d: %s: %s", file, LineOf(root.Content[0], fe.Field), fe.Field, fe.Msg)
		}
		return err
	}
	return nil
}

// LineOf finds the line of a field path such as "do[1].retrain.recipe" in
// a mapping node (the deepest part found; 1 when none).
func LineOf(n *yaml.Node, path string) int {
	line := 1
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i > 0 && strings.HasSuffix(part, "]") {
			key = part[:i]
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

// ID is a stored spec's content id: the sha256 of its normalized form.
func ID(normalized []byte) string {
	sum := sha256.Sum256(normalized)
	return hex.EncodeToString(sum[:])
}
