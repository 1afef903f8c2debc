package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// spec mirrors the parts of tokenizer.json this package understands.
type spec struct {
	AddedTokens   []addedSpec     `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         modelSpec       `json:"model"`
}

type addedSpec struct {
	ID         *int64 `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelSpec struct {
	Type                    string           `json:"type"`
	Vocab                   map[string]int64 `json:"vocab"`
	Merges                  json.RawMessage  `json:"merges"`
	UnkToken                *string          `json:"unk_token"`
	FuseUnk                 bool             `json:"fuse_unk"`
	ByteFallback            bool             `json:"byte_fallback"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	Dropout                 *float64         `json:"dropout"`
}

// component is any normalizer, pre-tokenizer, post-processor or decoder
// object: a "type" plus the fields the supported types use.
type component struct {
	Type string `json:"type"`

	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	Decoders      []json.RawMessage `json:"decoders"`
	Processors    []json.RawMessage `json:"processors"`

	Prepend    string       `json:"prepend"`
	Pattern    *patternSpec `json:"pattern"`
	Content    string       `json:"content"`
	Behavior   string       `json:"behavior"`
	Invert     bool         `json:"invert"`
	StripLeft  *bool        `json:"strip_left"`
	StripRight *bool        `json:"strip_right"`

	AddPrefixSpace   *bool  `json:"add_prefix_space"`
	UseRegex         *bool  `json:"use_regex"`
	Replacement      string `json:"replacement"`
	PrependScheme    string `json:"prepend_scheme"`
	Split            *bool  `json:"split"`
	IndividualDigits bool   `json:"individual_digits"`

	Start int `json:"start"`
	Stop  int `json:"stop"`

	Single        []templatePiece          `json:"single"`
	SpecialTokens map[string]templateToken `json:"special_tokens"`
	Sep           []json.RawMessage        `json:"sep"`
	Cls           []json.RawMessage        `json:"cls"`
}

type patternSpec struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type templatePiece struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

type templateToken struct {
	ID  string  `json:"id"`
	IDs []int64 `json:"ids"`
}

// parseSpec decodes tokenizer.json. Field-level checks happen in build.
func parseSpec(data []byte) (*spec, error) {
	var s spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, errs.Invalid("tokenizer.json: %s", jsonErr(err))
	}
	return &s, nil
}

// parseComponent decodes one component object at the given field path; a
// JSON null or an absent field gives nil.
func parseComponent(raw json.RawMessage, field string) (*component, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, errs.Invalid("tokenizer.json: %s: %s", field, jsonErr(err))
	}
	return &c, nil
}

// parseMerges accepts both merge encodings: "a b" strings and ["a", "b"]
// pairs.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errs.Invalid("tokenizer.json: model.merges: %s", jsonErr(err))
	}
	out := make([][2]string, len(items))
	for i, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err == nil {
			a, b, ok := strings.Cut(s, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, errs.Invalid("tokenizer.json: model.merges[%d]: %q is not two tokens separated by one space", i, s)
			}
			out[i] = [2]string{a, b}
			continue
		}
		var p []string
		if err := json.Unmarshal(it, &p); err != nil || len(p) != 2 {
			return nil, errs.Invalid("tokenizer.json: model.merges[%d]: want \"a b\" or [\"a\", \"b\"]", i)
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// configSpec is what tokenizer_config.json contributes.
type configSpec struct {
	ChatTemplate string
	BOSToken     string
	EOSToken     string
	AddBOS       *bool
	AddEOS       *bool
}

func parseConfig(data []byte) (*configSpec, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errs.Invalid("tokenizer_config.json: %s", jsonErr(err))
	}
	c := &configSpec{}
	var err error
	if c.ChatTemplate, err = chatTemplateField(m["chat_template"]); err != nil {
		return nil, err
	}
	if c.BOSToken, err = tokenField(m["bos_token"], "bos_token"); err != nil {
		return nil, err
	}
	if c.EOSToken, err = tokenField(m["eos_token"], "eos_token"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		dst  **bool
	}{{"add_bos_token", &c.AddBOS}, {"add_eos_token", &c.AddEOS}} {
		raw, ok := m[f.name]
		if !ok || string(raw) == "null" {
			continue
		}
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, errs.Invalid("tokenizer_config.json: %s: want true or false", f.name)
		}
		*f.dst = &b
	}
	return c, nil
}

// chatTemplateField reads chat_template: a string, or a list of
// {name, template} of which "default" is used.
func chatTemplateField(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", errs.Invalid("tokenizer_config.json: chat_template: want a string or a list of {name, template}")
	}
	for _, t := range list {
		if t.Name == "default" {
			return t.Template, nil
		}
	}
	return "", nil
}

// tokenField reads a special-token field: a string or {"content": ...}.
func tokenField(raw json.RawMessage, name string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", errs.Invalid("tokenizer_config.json: %s: want a string or {\"content\": ...}", name)
	}
	return obj.Content, nil
}

// jsonErr shortens encoding/json errors and names the field when it can.
func jsonErr(err error) string {
	var te *json.UnmarshalTypeError
	if ok := errors.As(err, &te); ok && te.Field != "" {
		return fmt.Sprintf("field %s: cannot use JSON %s as %s", te.Field, te.Value, te.Type)
	}
	var se *json.SyntaxError
	if ok := errors.As(err, &se); ok {
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)
	}
	return err.Error()
}
