package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestByteLevelPipelines loads the tiny byte-level fixture with the
// pre-tokenizers of the supported families and checks that every split
// boundary of the family's pattern is a token boundary and that decoding
// inverts encoding.
func TestByteLevelPipelines(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("testdata", "tiny", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	const bl = `"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}`
	split := func(p string) string {
		return `"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": ` +
			jsonString(p) + `}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}`
	}
	for _, tc := range []struct {
		name, pre, extra string
		sc               scanner
	}{
		{"gpt2", bl, "", scannerFor(patternGPT2)},
		{"llama3", split(patternLlama3), `"ignore_merges": true`, scannerFor(patternLlama3)},
		{"qwen2", split(patternQwen2), "", scannerFor(patternQwen2)},
		{"smollm digits", `"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]}`, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(string(base), bl, tc.pre, 1)
			if tc.extra != "" {
				doc = strings.Replace(doc, `"ignore_merges": false`, tc.extra, 1)
			}
			if tc.name == "qwen2" {
				doc = strings.Replace(doc, `"normalizer": null`, `"normalizer": {"type": "NFC"}`, 1)
			}
			tok, err := Load([]byte(doc), nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range sampleTexts(21, 200) {
				ids := tok.Encode(s, false)
				if got := tok.Decode(ids, false); got != s && tc.name != "qwen2" {
					t.Fatalf("text %d: Decode(Encode(%q)) = %q", i, s, got)
				}
				if tc.sc == nil {
					continue
				}
				cuts := map[int]bool{}
				pos := 0
				for _, id := range ids {
					str, _ := tok.IDToToken(id)
					pos += utf8.RuneCountInString(str) // one byte-level character per byte
					cuts[pos] = true
				}
				pos = 0
				for _, piece := range scan(tc.sc, s) {
					pos += len(piece)
					if !cuts[pos] && pos < len(s) {
						t.Fatalf("text %d %q: split boundary %d (after %q) is inside a token", i, s, pos, piece)
					}
				}
			}
		})
	}
}
