package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Schema is a compiled JSON Schema in the small subset generation checks
// need. Keywords understood:
//
//   - type: a name or a list of names among object, array, string, number,
//     integer (a number with no fractional part), boolean, null;
//   - properties: an object of sub-schemas for named members;
//   - required: a list of member names that must be present;
//   - enum: a list of allowed values (compared as JSON values: numbers by
//     value, objects regardless of member order);
//   - items: one sub-schema every array element must satisfy;
//   - additionalProperties: false (no members beyond properties) or a
//     sub-schema for the members not named in properties.
//
// The annotations $schema, $id, title, description, default and examples
// are accepted and ignored. Any other keyword is rejected by CompileSchema,
// so a schema never silently checks less than its author meant. Boolean
// schemas (true, false) are accepted.
type Schema struct {
	always     *bool // a boolean schema
	types      []string
	properties map[string]*Schema
	required   []string
	enum       []any
	items      *Schema
	addlFalse  bool
	addl       *Schema
}

// maxSchemaDepth bounds schema and document nesting the validator follows.
const maxSchemaDepth = 256

var schemaTypes = []string{"array", "boolean", "integer", "null", "number", "object", "string"}

var schemaAnnotations = map[string]bool{
	"$schema": true, "$id": true, "title": true, "description": true, "default": true, "examples": true,
}

// CompileSchema parses a schema; errors name the JSON path of the bad
// keyword ("schema $.properties.age.type: …").
func CompileSchema(data []byte) (*Schema, error) {
	v, err := decodeJSON(data)
	if err != nil {
		return nil, errs.Invalid("schema: %v", err)
	}
	return compileSchema(v, "$", 0)
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}

func compileSchema(v any, path string, depth int) (*Schema, error) {
	if depth > maxSchemaDepth {
		return nil, errs.Invalid("schema %s: nested deeper than %d", path, maxSchemaDepth)
	}
	if b, ok := v.(bool); ok {
		return &Schema{always: &b}, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errs.Invalid("schema %s: want an object or a boolean, got %s", path, jsonKind(v))
	}
	s := &Schema{}
	for _, k := range sortedKeys(obj) {
		if err := s.keyword(k, obj[k], path, depth); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Schema) keyword(k string, val any, path string, depth int) error {
	at := path + "." + k
	switch k {
	case "type":
		return s.compileType(val, at)
	case "properties":
		props, ok := val.(map[string]any)
		if !ok {
			return errs.Invalid("schema %s: want an object, got %s", at, jsonKind(val))
		}
		s.properties = map[string]*Schema{}
		for _, name := range sortedKeys(props) {
			sub, err := compileSchema(props[name], at+"."+name, depth+1)
			if err != nil {
				return err
			}
			s.properties[name] = sub
		}
	case "required":
		list, ok := val.([]any)
		if !ok {
			return errs.Invalid("schema %s: want a list of names, got %s", at, jsonKind(val))
		}
		for i, e := range list {
			name, ok := e.(string)
			if !ok {
				return errs.Invalid("schema %s[%d]: want a string, got %s", at, i, jsonKind(e))
			}
			s.required = append(s.required, name)
		}
	case "enum":
		list, ok := val.([]any)
		if !ok {
			return errs.Invalid("schema %s: want a list, got %s", at, jsonKind(val))
		}
		s.enum = list
	case "items":
		sub, err := compileSchema(val, at, depth+1)
		if err != nil {
			return err
		}
		s.items = sub
	case "additionalProperties":
		if b, ok := val.(bool); ok {
			s.addlFalse = !b
			return nil
		}
		sub, err := compileSchema(val, at, depth+1)
		if err != nil {
			return err
		}
		s.addl = sub
	default:
		if !schemaAnnotations[k] {
			return errs.Invalid("schema %s: keyword not supported (supported: type, properties, required, enum, items, additionalProperties)", at)
		}
	}
	return nil
}

func (s *Schema) compileType(val any, at string) error {
	var names []any
	switch t := val.(type) {
	case string:
		names = []any{t}
	case []any:
		names = t
	default:
		return errs.Invalid("schema %s: want a type name or a list of them, got %s", at, jsonKind(val))
	}
	for i, n := range names {
		name, ok := n.(string)
		if !ok || !slices.Contains(schemaTypes, name) {
			return errs.Invalid("schema %s[%d]: unknown type %v (want one of %v)", at, i, n, schemaTypes)
		}
		s.types = append(s.types, name)
	}
	return nil
}

// Validate checks one JSON document against the schema. The error names the
// JSON path of the first violation ("$.items[2].name: want string, got
// number").
func (s *Schema) Validate(doc []byte) error {
	v, err := decodeJSON(doc)
	if err != nil {
		return errs.Invalid("not valid JSON: %v", err)
	}
	return s.validate(v, "$", 0)
}

func (s *Schema) validate(v any, path string, depth int) error {
	if depth > maxSchemaDepth {
		return errs.Invalid("%s: nested deeper than %d", path, maxSchemaDepth)
	}
	if s.always != nil {
		if !*s.always {
			return errs.Invalid("%s: the schema false allows no value", path)
		}
		return nil
	}
	if len(s.types) > 0 && !slices.ContainsFunc(s.types, func(t string) bool { return hasType(v, t) }) {
		return errs.Invalid("%s: want %s, got %s", path, typeList(s.types), jsonKind(v))
	}
	if s.enum != nil && !slices.ContainsFunc(s.enum, func(e any) bool { return jsonEqual(e, v) }) {
		return errs.Invalid("%s: value not in enum", path)
	}
	switch t := v.(type) {
	case map[string]any:
		return s.validateObject(t, path, depth)
	case []any:
		if s.items == nil {
			return nil
		}
		for i, e := range t {
			if err := s.items.validate(e, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Schema) validateObject(obj map[string]any, path string, depth int) error {
	for _, name := range s.required {
		if _, ok := obj[name]; !ok {
			return errs.Invalid("%s: missing required member %q", path, name)
		}
	}
	for _, name := range sortedKeys(obj) {
		sub, named := s.properties[name]
		switch {
		case named:
		case s.addlFalse:
			return errs.Invalid("%s: member %q not allowed (additionalProperties is false)", path, name)
		case s.addl != nil:
			sub = s.addl
		default:
			continue
		}
		if err := sub.validate(obj[name], path+"."+name, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func typeList(ts []string) string {
	if len(ts) == 1 {
		return ts[0]
	}
	return fmt.Sprintf("one of %v", ts)
}

func hasType(v any, t string) bool {
	k := jsonKind(v)
	switch t {
	case "number":
		return k == "number"
	case "integer":
		n, ok := v.(json.Number)
		return ok && isInteger(n)
	}
	return k == t
}

func isInteger(n json.Number) bool {
	if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return true
	}
	f, ok := new(big.Float).SetString(string(n))
	return ok && f.IsInt()
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// jsonEqual compares two decoded JSON values: numbers by value, arrays in
// order, objects by member set.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		return ok && numberEqual(x, y)
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, jsonEqual)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !jsonEqual(xv, yv) {
				return false
			}
		}
		return true
	}
	return a == b
}

func numberEqual(x, y json.Number) bool {
	if x == y {
		return true
	}
	fx, okx := new(big.Float).SetString(string(x))
	fy, oky := new(big.Float).SetString(string(y))
	if okx && oky {
		return fx.Cmp(fy) == 0
	}
	a, errA := x.Float64()
	b, errB := y.Float64()
	return errA == nil && errB == nil && !math.IsNaN(a) && a == b
}
