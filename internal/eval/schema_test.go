package eval

import (
	"errors"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestSchemaValidate(t *testing.T) {
	person := `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
		"tags":{"type":"array","items":{"type":"string","enum":["a","b"]}}},"required":["name"],"additionalProperties":false}`
	tests := []struct {
		name, schema, doc, want string // want "" means valid
	}{
		{"string ok", `{"type":"string"}`, `"hi"`, ""},
		{"string vs number", `{"type":"string"}`, `3`, "$: want string, got number"},
		{"integer 1.0", `{"type":"integer"}`, `1.0`, ""},
		{"integer 1e3", `{"type":"integer"}`, `1e3`, ""},
		{"integer 1.5", `{"type":"integer"}`, `1.5`, "want integer, got number"},
		{"number accepts integer", `{"type":"number"}`, `7`, ""},
		{"type list", `{"type":["string","null"]}`, `null`, ""},
		{"type list fails", `{"type":["string","null"]}`, `true`, "want one of [string null], got boolean"},
		{"object ok", person, `{"name":"x","age":3,"tags":["a","b"]}`, ""},
		{"missing required", person, `{"age":3}`, `$: missing required member "name"`},
		{"nested type", person, `{"name":"x","age":"3"}`, "$.age: want integer, got string"},
		{"item enum", person, `{"name":"x","tags":["a","c"]}`, "$.tags[1]: value not in enum"},
		{"additional false", person, `{"name":"x","zip":1}`, `member "zip" not allowed`},
		{"additional schema", `{"additionalProperties":{"type":"number"}}`, `{"a":1,"b":"2"}`, "$.b: want number, got string"},
		{"enum numbers by value", `{"enum":[1,"x",{"a":[1,2]}]}`, `1.0`, ""},
		{"enum object any order", `{"enum":[{"a":1,"b":2}]}`, `{"b":2,"a":1}`, ""},
		{"enum miss", `{"enum":[1,"x"]}`, `"y"`, "not in enum"},
		{"true schema", `true`, `[1]`, ""},
		{"false schema", `{"properties":{"a":false}}`, `{"a":1}`, "$.a: the schema false allows no value"},
		{"annotations ignored", `{"title":"t","description":"d","$schema":"x","type":"boolean"}`, `false`, ""},
		{"not json", `{"type":"string"}`, `{"a":`, "not valid JSON"},
		{"trailing data", `{"type":"string"}`, `"a" "b"`, "trailing data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := CompileSchema([]byte(tc.schema))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate([]byte(tc.doc))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("valid document rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one containing %q", err, tc.want)
			case err != nil && !errors.Is(err, errs.ErrInvalid):
				t.Errorf("error kind %s, want invalid", errs.Kind(err))
			}
		})
	}
}

func TestCompileSchemaErrors(t *testing.T) {
	tests := []struct{ name, schema, want string }{
		{"unknown keyword", `{"type":"number","minimum":0}`, "schema $.minimum: keyword not supported"},
		{"unknown type", `{"type":"int"}`, `schema $.type[0]: unknown type int`},
		{"type not string", `{"type":3}`, "want a type name"},
		{"properties not object", `{"properties":[]}`, "schema $.properties: want an object, got array"},
		{"nested bad", `{"properties":{"a":{"items":{"type":"x"}}}}`, "schema $.properties.a.items.type[0]"},
		{"required not strings", `{"required":["a",1]}`, "schema $.required[1]: want a string"},
		{"enum not list", `{"enum":"a"}`, "$.enum: want a list"},
		{"schema is a number", `3`, "want an object or a boolean, got number"},
		{"malformed", `{"type":`, "schema:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileSchema([]byte(tc.schema))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error %v, want an invalid error containing %q", err, tc.want)
			}
		})
	}
}

func FuzzJSONSchema(f *testing.F) {
	seeds := [][2]string{
		{`{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}`, `{"a":1}`},
		{`{"type":["array","null"],"items":{"enum":[1,"x",{"k":[true]}]}}`, `[1,"x",{"k":[true]}]`},
		{`{"additionalProperties":{"type":"number"}}`, `{"b":1e400}`},
		{`true`, `null`},
		{`{"type":"integer"}`, `123456789012345678901234567890.000`},
		{`{"enum":[1e-999999999]}`, `0`},
		{`{`, `}`},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, schema, doc string) {
		s, err := CompileSchema([]byte(schema))
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("compile error %v is not invalid", err)
			}
			return
		}
		if err := s.Validate([]byte(doc)); err != nil && !errors.Is(err, errs.ErrInvalid) {
			t.Fatalf("validate error %v is not invalid", err)
		}
	})
}
