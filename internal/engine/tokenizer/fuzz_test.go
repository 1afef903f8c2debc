package tokenizer

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzLoad: Load never panics, and whatever loads can encode and decode.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"load", "sp", "tiny"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(`{"model":{"vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]},"pre_tokenizer":{"type":"Metaspace"},"decoder":{"type":"Metaspace"}}`))
	f.Add([]byte(`{"model":{"vocab":{"a":0}},"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"Split","pattern":{"String":"a"},"behavior":"Removed"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Load(data, nil)
		if err != nil {
			if !isInvalid(err) {
				t.Fatalf("error of kind other than invalid: %v", err)
			}
			return
		}
		ids := tok.Encode("ab a1 é <s>\n", true)
		for _, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("id %d out of range [0, %d)", id, tok.VocabSize())
			}
		}
		_ = tok.Decode(append(ids, -1, 1<<30), true)
	})
}

// FuzzEncodeDecode: for byte-level BPE, Decode(Encode(s)) == s for valid
// UTF-8 s (the tiny fixture has no added tokens in fuzz input's way: they
// decode to their own text too).
func FuzzEncodeDecode(f *testing.F) {
	tj, err := os.ReadFile(filepath.Join("testdata", "tiny", "tokenizer.json"))
	if err != nil {
		f.Fatal(err)
	}
	tok, err := Load(tj, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range sampleTexts(11, 20) {
		f.Add(s)
	}
	f.Add("<|im_start|>user\n<s>x</s>")
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s, false)
		if !utf8.ValidString(s) {
			return
		}
		if got := tok.Decode(ids, false); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, got)
		}
	})
}
