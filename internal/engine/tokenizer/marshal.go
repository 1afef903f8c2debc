package tokenizer

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/tailor-ml/tailor/internal/errs"
)

// MarshalJSON returns the tokenizer as a Hugging Face tokenizer.json: the
// file it was loaded from, or for a trained tokenizer the file Train wrote
// (model BPE, ByteLevel pre-tokenizer, post-processor and decoder, special
// tokens as added tokens). Loading the result gives a tokenizer that
// encodes identically.
func (t *Tokenizer) MarshalJSON() ([]byte, error) {
	if t.raw == nil {
		return nil, errs.Invalid("tokenizer: no tokenizer.json to write")
	}
	return append([]byte(nil), t.raw...), nil
}

// marshal writes the trained tokenizer.json deterministically: vocabulary
// in id order, merges in rank order as "a b" strings.
func (tr *trainer) marshal(specials []string) []byte {
	var b bytes.Buffer
	b.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
	for i, s := range specials {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    {\"id\": " + strconv.Itoa(i) + ", \"content\": " + jsonString(s) +
			", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}")
	}
	if len(specials) > 0 {
		b.WriteString("\n  ")
	}
	b.WriteString("],\n  \"normalizer\": null,\n")
	b.WriteString("  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true},\n")
	b.WriteString("  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, \"use_regex\": true},\n")
	b.WriteString("  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n")
	b.WriteString("  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n" +
		"    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n" +
		"    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {")
	for id, tok := range tr.tokens {
		if id < len(specials) {
			continue
		}
		if id > len(specials) {
			b.WriteByte(',')
		}
		b.WriteString("\n      " + jsonString(toByteLevel(string(tok))) + ": " + strconv.Itoa(id))
	}
	b.WriteString("\n    },\n    \"merges\": [")
	for i, m := range tr.merges {
		if i > 0 {
			b.WriteByte(',')
		}
		pair := toByteLevel(string(tr.tokens[m[0]])) + " " + toByteLevel(string(tr.tokens[m[1]]))
		b.WriteString("\n      " + jsonString(pair))
	}
	b.WriteString("\n    ]\n  }\n}\n")
	return b.Bytes()
}

// jsonString quotes s as a JSON string without HTML escaping.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}
