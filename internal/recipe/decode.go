package recipe

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tailor-ml/tailor/internal/errs"
)

// pos is a 1-based line and column in the recipe source.
type pos struct{ line, col int }

// decoder walks a yaml.Node tree and remembers where every field was, so
// that errors found later (ranges, cross-field rules, regions) still name the
// line and column the user wrote.
type decoder struct {
	file string
	pos  map[string]pos
}

// field is one known key of a mapping and the function that decodes its value.
type field struct {
	key string
	set func(n *yaml.Node, path string) error
}

// errAt formats "file:line:col: path: message" as an errs.Invalid error.
func errAt(file string, p pos, path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	loc := file
	if p.line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", file, p.line, p.col)
	}
	if path == "" {
		return errs.Invalid("%s: %s", loc, msg)
	}
	return errs.Invalid("%s: %s: %s", loc, path, msg)
}

func (d *decoder) errNode(n *yaml.Node, path, format string, args ...any) error {
	return errAt(d.file, pos{n.Line, n.Column}, path, format, args...)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// describe renders a node for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return n.Value
	}
	return "nothing"
}

// mapping decodes a mapping node with the given known fields. It rejects
// duplicate keys and unknown keys (naming the nearest known key), skips null
// values (they mean "not set"), and records the position of every value.
func (d *decoder) mapping(n *yaml.Node, path string, fields []field) error {
	if n.Kind != yaml.MappingNode {
		return d.errNode(n, path, "expected a mapping, got %s", describe(n))
	}
	d.pos[path] = pos{n.Line, n.Column}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return d.errNode(k, path, "expected a field name, got %s", describe(k))
		}
		kp := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			return d.errNode(k, kp, "duplicate key %q (first at line %d)", k.Value, first)
		}
		seen[k.Value] = k.Line
		f, ok := lookup(fields, k.Value)
		if !ok {
			return d.errNode(k, kp, "unknown field %q%s", k.Value, suggest(k.Value, fields))
		}
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			return d.errNode(v, kp, "YAML anchors and aliases are not supported")
		}
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			continue
		}
		d.pos[kp] = pos{v.Line, v.Column}
		if err := f.set(v, kp); err != nil {
			return err
		}
	}
	return nil
}

func lookup(fields []field, key string) (field, bool) {
	for _, f := range fields {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// suggest names the nearest known key, or lists them all when none is close.
func suggest(key string, fields []field) string {
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		names = append(names, f.key)
	}
	if near := nearest(key, names); near != "" {
		return fmt.Sprintf(" (did you mean %q?)", near)
	}
	sort.Strings(names)
	return fmt.Sprintf(" (known: %s)", strings.Join(names, ", "))
}

// nearest returns the candidate closest to s by edit distance (ignoring
// case), or "" when none is within a third of its length (at least 2).
func nearest(s string, candidates []string) string {
	best, bestD := "", math.MaxInt
	for _, c := range candidates {
		if d := distance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" && bestD <= max(2, len(best)/3) {
		return best
	}
	return ""
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// list decodes a sequence node, calling each for every item.
func (d *decoder) list(n *yaml.Node, path string, each func(i int, item *yaml.Node, path string) error) error {
	if n.Kind != yaml.SequenceNode {
		return d.errNode(n, path, "expected a list, got %s", describe(n))
	}
	for i, item := range n.Content {
		ip := index(path, i)
		if item.Kind == yaml.AliasNode || item.Anchor != "" {
			return d.errNode(item, ip, "YAML anchors and aliases are not supported")
		}
		d.pos[ip] = pos{item.Line, item.Column}
		if err := each(i, item, ip); err != nil {
			return err
		}
	}
	return nil
}

// str accepts any plain or quoted scalar except booleans, null and binary,
// keeping the literal text (so `version: 3` and `version: "3"` read the same).
func (d *decoder) str(n *yaml.Node, path string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", d.errNode(n, path, "expected a string, got %s", describe(n))
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!timestamp":
		return n.Value, nil
	}
	return "", d.errNode(n, path, "expected a string, got %s", describe(n))
}

func (d *decoder) setStr(dst *string) func(*yaml.Node, string) error {
	return func(n *yaml.Node, path string) (err error) {
		*dst, err = d.str(n, path)
		return err
	}
}

func (d *decoder) int(n *yaml.Node, path string) (int64, error) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		v, err := strconv.ParseInt(n.Value, 0, 64)
		if err == nil {
			return v, nil
		}
		if errors.Is(err, strconv.ErrRange) {
			return 0, d.errNode(n, path, "integer %s out of range", n.Value)
		}
	}
	return 0, d.errNode(n, path, "expected an integer, got %s", describe(n))
}

func (d *decoder) setInt(dst *int) func(*yaml.Node, string) error {
	return func(n *yaml.Node, path string) error {
		v, err := d.int(n, path)
		if err != nil {
			return err
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return d.errNode(n, path, "integer %s out of range", n.Value)
		}
		*dst = int(v)
		return nil
	}
}

func (d *decoder) float(n *yaml.Node, path string) (float64, error) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int":
			if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				return float64(v), nil
			}
		case "!!float":
			v, err := strconv.ParseFloat(n.Value, 64)
			if err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
				return v, nil
			}
			return 0, d.errNode(n, path, "expected a finite number, got %s", n.Value)
		}
	}
	return 0, d.errNode(n, path, "expected a number, got %s", describe(n))
}

func (d *decoder) setFloat(dst *float64) func(*yaml.Node, string) error {
	return func(n *yaml.Node, path string) (err error) {
		*dst, err = d.float(n, path)
		return err
	}
}

func (d *decoder) setBool(dst *bool) func(*yaml.Node, string) error {
	return func(n *yaml.Node, path string) error {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
			v, err := strconv.ParseBool(n.Value)
			if err == nil {
				*dst = v
				return nil
			}
		}
		return d.errNode(n, path, "expected true or false, got %s", describe(n))
	}
}

func (d *decoder) setDuration(dst *time.Duration) func(*yaml.Node, string) error {
	return func(n *yaml.Node, path string) error {
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
			return d.errNode(n, path, "expected a duration string like \"30m\", got %s", describe(n))
		}
		v, err := time.ParseDuration(n.Value)
		if err != nil {
			return d.errNode(n, path, "invalid duration %q (use Go syntax like \"30m\" or \"1h30m\")", n.Value)
		}
		*dst = v
		return nil
	}
}

func (d *decoder) setStrList(dst *[]string) func(*yaml.Node, string) error {
	return func(n *yaml.Node, path string) error {
		out := []string{}
		err := d.list(n, path, func(_ int, item *yaml.Node, ip string) error {
			s, err := d.str(item, ip)
			out = append(out, s)
			return err
		})
		*dst = out
		return err
	}
}

// syntaxError turns a yaml.v3 error ("yaml: line 3: did not find expected
// key") into "file:3: syntax error: did not find expected key".
func syntaxError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var line int
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if i := strings.Index(rest, ": "); i > 0 {
			if n, convErr := strconv.Atoi(rest[:i]); convErr == nil {
				line, msg = n, rest[i+2:]
			}
		}
	}
	if line > 0 {
		return errs.Invalid("%s:%d: syntax error: %s", file, line, msg)
	}
	return errs.Invalid("%s: syntax error: %s", file, msg)
}
