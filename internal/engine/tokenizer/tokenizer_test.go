package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func isInvalid(err error) bool { return errors.Is(err, errs.ErrInvalid) }

func scan(sc scanner, s string) []string {
	var out []string
	for i := 0; i < len(s); {
		n := sc(s, i)
		out = append(out, s[i:i+n])
		i += n
	}
	return out
}

func TestScanners(t *testing.T) {
	gpt2 := scannerFor(patternGPT2)
	llama3 := scannerFor(patternLlama3)
	qwen2 := scannerFor(patternQwen2)
	for _, tc := range []struct {
		name string
		sc   scanner
		in   string
		want []string
	}{
		{"gpt2 words", gpt2, "Hello world", []string{"Hello", " world"}},
		{"gpt2 contraction", gpt2, "I'm don't", []string{"I", "'m", " don", "'t"}},
		{"gpt2 upper contraction", gpt2, "IT'S", []string{"IT", "'", "S"}},
		{"gpt2 space runs", gpt2, "a  b   ", []string{"a", " ", " b", "   "}},
		{"gpt2 tabs", gpt2, "a\t\tb", []string{"a", "\t", "\t", "b"}},
		{"gpt2 numbers", gpt2, "x 12345 ²", []string{"x", " 12345", " ²"}},
		{"gpt2 punct", gpt2, "hi!!! ?!", []string{"hi", "!!!", " ?!"}},
		{"gpt2 newline before word", gpt2, "a\n hello", []string{"a", "\n", " hello"}},
		{"llama3 digits", llama3, "I'm 12345 ok", []string{"I", "'m", " ", "123", "45", " ok"}},
		{"llama3 folded contraction", llama3, "IT'S", []string{"IT", "'S"}},
		{"llama3 newlines", llama3, "a\n\nb", []string{"a", "\n\n", "b"}},
		{"llama3 mixed space", llama3, "x  \n  y", []string{"x", "  \n", " ", " y"}},
		{"llama3 punct newline", llama3, "hello!!!\n\nworld", []string{"hello", "!!!\n\n", "world"}},
		{"llama3 punct prefix", llama3, "(hello) \tworld", []string{"(hello", ")", " ", "\tworld"}},
		{"qwen2 digits", qwen2, "v12", []string{"v", "1", "2"}},
		{"gpt2 invalid utf8", gpt2, "a\xffb", []string{"a", "\xff", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := scan(tc.sc, tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("split %q = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func loadTiny(t *testing.T, config string) *Tokenizer {
	t.Helper()
	tj, err := os.ReadFile(filepath.Join("testdata", "tiny", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Load(tj, []byte(config))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTinyEncodeDecode(t *testing.T) {
	tok := loadTiny(t, "")
	for _, s := range []string{"", "hello world", "<s>hi</s>", "naïve 😀\n\n\tx", "<|im_start|>user\nhey<|im_end|>"} {
		ids := tok.Encode(s, false)
		if got := tok.Decode(ids, false); got != s {
			t.Errorf("Decode(Encode(%q)) = %q", s, got)
		}
	}
	ids := tok.Encode("<s>hi</s>", false)
	if ids[0] != 1 || ids[len(ids)-1] != 2 {
		t.Errorf("Encode(<s>hi</s>) = %v, want special ids 1 … 2", ids)
	}
	if got := tok.Decode(ids, true); got != "hi" {
		t.Errorf("Decode(skipSpecial) = %q, want %q", got, "hi")
	}
	if id, ok := tok.TokenToID("<|eot_id|>"); !ok || id != 8 {
		t.Errorf("TokenToID(<|eot_id|>) = %d, %v", id, ok)
	}
	if s, ok := tok.IDToToken(9); !ok || s != "Ā" { // byte 0
		t.Errorf("IDToToken(9) = %q, %v; want byte 0", s, ok)
	}
	if _, ok := tok.IDToToken(int32(tok.VocabSize())); ok {
		t.Error("IDToToken(VocabSize) succeeded")
	}
}

func TestSpecialsFromConfig(t *testing.T) {
	tok := loadTiny(t, `{"bos_token": "<s>", "eos_token": {"content": "</s>"}, "add_bos_token": true}`)
	if tok.BOS() != 1 || tok.EOS() != 2 {
		t.Fatalf("BOS, EOS = %d, %d; want 1, 2", tok.BOS(), tok.EOS())
	}
	if ids := tok.Encode("a", true); ids[0] != 1 {
		t.Errorf("Encode(a, addSpecial) = %v, want BOS first", ids)
	}
	if ids := tok.Encode("a", false); ids[0] == 1 {
		t.Errorf("Encode(a, no special) = %v, has BOS", ids)
	}
}

// TestLoadInvalid loads testdata/load/*.bad.json and checks the error
// names the field.
func TestLoadInvalid(t *testing.T) {
	for _, tc := range []struct {
		file string
		want string
	}{
		{"model_type", "model.type"},
		{"merge_unknown", "model.merges[1]: token \"zz\""},
		{"merge_result_unknown", "merged token \"ab\""},
		{"vocab_collision", "id 1 used by both"},
		{"vocab_range", "out of range"},
		{"added_range", "added_tokens[0]: id -3"},
		{"added_conflict", "added_tokens[0]: id 0 is already"},
		{"syntax", "malformed JSON"},
		{"field_type", "field model.vocab"},
		{"merge_format", "model.merges[0]"},
		{"pre_tokenizer_type", "pre_tokenizer.pretokenizers[1]: pre-tokenizer type \"Bogus\""},
		{"split_regex", "pre_tokenizer.pattern.Regex"},
		{"template_token", "post_processor.single[0]: special token \"<x>\""},
		{"unk_missing", "model.unk_token"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "load", tc.file+".bad.json"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Load(data, nil)
			if err == nil || !isInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: err = %v, want invalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestLoadDirNames(t *testing.T) {
	_, err := LoadDir(filepath.Join("testdata", "missing"))
	if !errors.Is(err, errs.ErrNotFound) || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Fatalf("LoadDir(missing) = %v, want not found naming tokenizer.json", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"type": "Unigram", "vocab": {}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadDir(dir)
	if !isInvalid(err) || !strings.Contains(err.Error(), filepath.Join(dir, "tokenizer.json")) {
		t.Fatalf("LoadDir(bad) = %v, want invalid naming the path", err)
	}
}

// TestSentencePieceFixture checks byte fallback, fused unknowns and the
// Replace/ByteFallback/Fuse/Strip decoder on a small Llama-2-shaped file.
func TestSentencePieceFixture(t *testing.T) {
	tok, err := LoadDir(filepath.Join("testdata", "sp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"ab c", []string{"▁ab", "▁c"}},
		{"é", []string{"▁", "<0xC3>", "<0xA9>"}},
		{"a中中b", []string{"▁a", "<unk>", "b"}},
		{"<s>ab", []string{"<s>", "▁ab"}},
	} {
		got := tokStrings(tok, tok.Encode(tc.in, false))
		if !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := tok.Decode(tok.Encode("ab é c", true), true); got != "ab é c" {
		t.Errorf("Decode = %q", got)
	}
	if ids := tok.Encode("c", true); ids[0] != tok.BOS() || tok.BOS() != 1 {
		t.Errorf("Encode(c, addSpecial) = %v, BOS %d", ids, tok.BOS())
	}
}
