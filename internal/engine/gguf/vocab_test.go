package gguf

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/errs"
)

const tinyDir = "../../../models/tailor-tiny"

func tinyTokenizerJSON(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(tinyDir + "/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVocabTailorTiny(t *testing.T) {
	cfg := engine.Config{VocabSize: 8192, BOSTokenID: -1, EOSTokenID: 0}
	info, err := Vocab(tinyTokenizerJSON(t), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if info.Model != "gpt2" || info.Pre != PreGPT2 {
		t.Errorf("model %q pre %q, want gpt2 gpt-2", info.Model, info.Pre)
	}
	if len(info.Tokens) != 8192 || len(info.Merges) != 7935 {
		t.Errorf("%d tokens, %d merges", len(info.Tokens), len(info.Merges))
	}
	if info.Tokens[0] != "<|endoftext|>" || info.TokenTypes[0] != TokenControl || info.TokenTypes[300] != TokenNormal {
		t.Errorf("token 0 %q type %d; token 300 type %d", info.Tokens[0], info.TokenTypes[0], info.TokenTypes[300])
	}
	if info.EOS != 0 || info.BOS != 0 || info.AddBOS || info.AddEOS || info.ChatTemplate != "" {
		t.Errorf("bos %d eos %d add %v %v template %q", info.BOS, info.EOS, info.AddBOS, info.AddEOS, info.ChatTemplate)
	}
}

// TestVocabChatML: a trained tokenizer with the ChatML tokens and no
// tokenizer_config.json gets the ChatML template, rendering what
// tokenizer.ApplyChat renders (checked against Jinja in llamacpp_test.go).
func TestVocabChatML(t *testing.T) {
	tok, err := tokenizer.Train(func(yield func(string) bool) { yield("hello there, general kenobi") },
		tokenizer.TrainOptions{VocabSize: 280, MinFrequency: 1, SpecialTokens: []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}})
	if err != nil {
		t.Fatal(err)
	}
	tj, _ := tok.MarshalJSON()
	info, err := Vocab(tj, nil, engine.Config{VocabSize: 288, BOSTokenID: -1, EOSTokenID: -1})
	if err != nil {
		t.Fatal(err)
	}
	if info.ChatTemplate != ChatMLTemplate || info.TokenTypes[1] != TokenControl || info.Tokens[2] != "<|im_end|>" {
		t.Errorf("template %q, types %v", info.ChatTemplate, info.TokenTypes[:3])
	}
	if len(info.Tokens) != tok.VocabSize() || info.EOS != int(tok.EOS()) {
		t.Errorf("%d tokens (want %d), eos %d (want %d)", len(info.Tokens), tok.VocabSize(), info.EOS, tok.EOS())
	}
	info, err = Vocab(tj, []byte(`{"chat_template": "{{ custom }}"}`), engine.Config{VocabSize: 288, BOSTokenID: -1, EOSTokenID: -1})
	if err != nil || info.ChatTemplate != "{{ custom }}" {
		t.Errorf("template from tokenizer_config.json: %q, %v", info.ChatTemplate, err)
	}
}

// WithPre returns tailor-tiny's tokenizer.json with its pre_tokenizer
// (and ignore_merges) replaced.
func WithPre(t testing.TB, pre string, ignoreMerges bool) []byte {
	t.Helper()
	s := string(tinyTokenizerJSON(t))
	old := `"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}`
	if !strings.Contains(s, old) {
		t.Fatal("tailor-tiny's pre_tokenizer is not the expected ByteLevel one")
	}
	s = strings.Replace(s, old, `"pre_tokenizer": `+pre, 1)
	if ignoreMerges {
		s = strings.Replace(s, `"ignore_merges": false`, `"ignore_merges": true`, 1)
	}
	return []byte(s)
}

// PreTokenizerVariants are tailor-tiny's vocabulary with each pre-tokenizer
// the mapping accepts; llamacpp_test.go checks each against llama.cpp.
var PreTokenizerVariants = []struct {
	Name, Pre, JSON string
	IgnoreMerges    bool
}{
	{"bytelevel", PreGPT2, `{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}`, false},
	{"split-gpt2", PreGPT2, `{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}`, false},
	{"smollm", PreSmolLM, `{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}`, false},
	{"llama3", PreLlama3, `{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}`, true},
	{"qwen2", PreQwen2, `{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}`, false},
}

func TestVocabPreTokenizers(t *testing.T) {
	cfg := engine.Config{VocabSize: 8192, BOSTokenID: -1, EOSTokenID: 0}
	for _, v := range PreTokenizerVariants {
		t.Run(v.Name, func(t *testing.T) {
			info, err := Vocab(WithPre(t, v.JSON, v.IgnoreMerges), nil, cfg)
			if err != nil || info.Pre != v.Pre {
				t.Fatalf("pre %q, %v; want %q", info.Pre, err, v.Pre)
			}
		})
	}
	refused := []struct {
		name, pre    string
		ignoreMerges bool
		edit         func(string) string
		want         string
	}{
		{"prefix space", `{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}`, false, nil, "matches none"},
		{"prefix space default", `{"type": "ByteLevel", "use_regex": true}`, false, nil, "matches none"},
		{"digits runs", `{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": false}, {"type": "ByteLevel", "add_prefix_space": false}]}`, false, nil, "matches none"},
		{"llama3 without ignore_merges", PreTokenizerVariants[3].JSON, false, nil, "ignore_merges is false"},
		{"gpt2 with ignore_merges", PreTokenizerVariants[0].JSON, true, nil, "ignore_merges is true"},
		{"normalizer", PreTokenizerVariants[0].JSON, false, func(s string) string {
			return strings.Replace(s, `"normalizer": null`, `"normalizer": {"type": "NFC"}`, 1)
		}, "normalizer"},
		{"rstrip", PreTokenizerVariants[0].JSON, false, func(s string) string {
			return strings.Replace(s, `"rstrip": false`, `"rstrip": true`, 1)
		}, "rstrip"},
		{"post-processor", PreTokenizerVariants[0].JSON, false, func(s string) string {
			a := strings.Index(s, `"post_processor": {`)
			b := strings.Index(s[a:], "},") + a + 1
			return s[:a] + `"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}], "pair": [], "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}}}` + s[b:]
		}, "after a sequence"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			s := string(WithPre(t, c.pre, c.ignoreMerges))
			if c.edit != nil {
				s = c.edit(s)
			}
			_, err := Vocab([]byte(s), nil, cfg)
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}
