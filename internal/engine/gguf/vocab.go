package gguf

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/errs"
)

// Pre-tokenizer names written as tokenizer.ggml.pre. llama.cpp
// (src/llama-vocab.cpp, llama_vocab::impl::load and llm_tokenizer_bpe)
// turns the name into a LLAMA_VOCAB_PRE_TYPE_* and that into the split
// regexes it runs before BPE. Only names whose regexes split every text
// exactly as the tokenizer.json pre_tokenizer does are written:
//
//	tokenizer.json pre_tokenizer                          name        llama.cpp type, regexes
//	ByteLevel(use_regex) or Split(GPT-2)+ByteLevel         "gpt-2"     GPT2: the GPT-2 pattern alone
//	Digits(individual)+ByteLevel(use_regex)                "smollm"    SMOLLM: \p{N}, then the GPT-2 pattern
//	Split(Llama 3)+ByteLevel, model.ignore_merges=true     "llama-bpe" LLAMA3: the Llama 3 pattern; ignore_merges
//	Split(Qwen2)+ByteLevel                                 "qwen2"     QWEN2: the Qwen2 pattern
//
// "default" (what the exporter wrote before) is not any of these: it
// selects LLAMA_VOCAB_PRE_TYPE_DEFAULT, whose regexes first split off
// runs of punctuation ([\p{P}\$\+<=>\^~\|]+), then apply the GPT-2
// pattern, then cut digit runs into groups of three ([0-9][0-9][0-9]). On
// plain prose the two agree; on "Date: Thu, 22 Aug 2002 14:54:25 +0100"
// llama.cpp made 24 tokens where tailor-tiny's tokenizer.json makes 20
// (llamacpp_test.go keeps that disagreement as a check). Tailor's own
// tokenizers (tokenizer.Train, models/tailor-tiny) use ByteLevel with the
// GPT-2 pattern, so they export as "gpt-2", whose regex is exactly
// tokenizer.json's ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
// ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ — llama.cpp lists it without the last
// alternative, but its hand-written GPT-2 splitter implements it).
const (
	PreGPT2   = "gpt-2"
	PreSmolLM = "smollm"
	PreLlama3 = "llama-bpe"
	PreQwen2  = "qwen2"
)

// The split patterns recognized, by their exact tokenizer.json source.
const (
	patternGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	patternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	patternQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// ChatMLTemplate is the Jinja chat template written for a tokenizer that
// has no chat_template but whose vocabulary has the ChatML tokens (Tailor
// then formats chats as ChatML: tokenizer.ApplyChat). It renders exactly
// what ApplyChat renders, and llama.cpp recognizes it as chatml.
const ChatMLTemplate = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// hfTokenizer is the part of tokenizer.json the mapping reads.
type hfTokenizer struct {
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer json.RawMessage `json:"pre_tokenizer"`
	Decoder      json.RawMessage `json:"decoder"`
	Model        struct {
		Type                    string            `json:"type"`
		Vocab                   map[string]int    `json:"vocab"`
		Merges                  []json.RawMessage `json:"merges"`
		IgnoreMerges            bool              `json:"ignore_merges"`
		ByteFallback            bool              `json:"byte_fallback"`
		ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
		EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
	} `json:"model"`
	AddedTokens []struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		Special    bool   `json:"special"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		SingleWord bool   `json:"single_word"`
	} `json:"added_tokens"`
}

// preComponent is a pre_tokenizer object, as far as the mapping needs.
type preComponent struct {
	Type             string            `json:"type"`
	Pretokenizers    []json.RawMessage `json:"pretokenizers"`
	AddPrefixSpace   *bool             `json:"add_prefix_space"`
	UseRegex         *bool             `json:"use_regex"`
	IndividualDigits bool              `json:"individual_digits"`
	Behavior         string            `json:"behavior"`
	Invert           bool              `json:"invert"`
	Pattern          *struct {
		Regex *string `json:"Regex"`
	} `json:"pattern"`
}

// Vocab maps a byte-level BPE tokenizer (tokenizer.json and, when not
// empty, tokenizer_config.json) to GGUF's tokenizer.ggml.* form for a model
// with cfg, so that llama.cpp tokenizes every text as Tailor's tokenizer
// package does: tokens and merges by id, token types (added tokens marked
// special are control tokens, other added tokens user-defined, so
// llama.cpp matches them in text as Tailor does), BOS/EOS and whether to
// add them, the pre-tokenizer (see PreGPT2) and the chat template. A
// tokenizer llama.cpp cannot reproduce is refused with the reason, never
// exported approximately.
func Vocab(tokenizerJSON, configJSON []byte, cfg engine.Config) (TokenizerInfo, error) {
	tok, err := tokenizer.Load(tokenizerJSON, configJSON)
	if err != nil {
		return TokenizerInfo{}, err
	}
	var t hfTokenizer
	if err := json.Unmarshal(tokenizerJSON, &t); err != nil {
		return TokenizerInfo{}, errs.Invalid("tokenizer.json: %v", err)
	}
	m := t.Model
	switch {
	case m.Type != "BPE":
		return TokenizerInfo{}, refuse("its model is %q, not byte-level BPE", m.Type)
	case m.ByteFallback || m.ContinuingSubwordPrefix != nil || m.EndOfWordSuffix != nil:
		return TokenizerInfo{}, refuse("its BPE model uses byte_fallback, continuing_subword_prefix or end_of_word_suffix (SentencePiece-style BPE)")
	case !isNull(t.Normalizer):
		return TokenizerInfo{}, refuse("it has a normalizer, and llama.cpp applies none to byte-level BPE")
	case !isNull(t.Decoder) && !hasType(t.Decoder, "ByteLevel"):
		return TokenizerInfo{}, refuse("its decoder is not ByteLevel")
	}
	pre, err := preName(t.PreTokenizer)
	if err != nil {
		return TokenizerInfo{}, err
	}
	// llama.cpp merges whole words found in the vocabulary without BPE
	// (ignore_merges) for llama-bpe only.
	if m.IgnoreMerges != (pre == PreLlama3) {
		return TokenizerInfo{}, refuse("model.ignore_merges is %v, and llama.cpp's %q pre-tokenizer implies %v", m.IgnoreMerges, pre, !m.IgnoreMerges)
	}
	if n := tok.VocabSize(); n > cfg.VocabSize {
		return TokenizerInfo{}, errs.Invalid("gguf export: the tokenizer has %d ids, config.json vocab_size is %d", n, cfg.VocabSize)
	}
	info := TokenizerInfo{Model: "gpt2", Pre: pre, UNK: -1, PAD: -1}
	n := tok.VocabSize()
	info.Tokens = make([]string, n)
	info.TokenTypes = make([]int32, n)
	for s, id := range m.Vocab {
		if id >= 0 && id < n {
			info.Tokens[id], info.TokenTypes[id] = s, TokenNormal
		}
	}
	for _, at := range t.AddedTokens {
		if at.LStrip || at.RStrip || at.SingleWord {
			return TokenizerInfo{}, refuse("added token %q uses lstrip, rstrip or single_word, which llama.cpp does not read from GGUF", at.Content)
		}
		if at.ID < 0 || at.ID >= n {
			continue
		}
		info.Tokens[at.ID], info.TokenTypes[at.ID] = at.Content, TokenUserDefined
		if at.Special {
			info.TokenTypes[at.ID] = TokenControl
		}
	}
	for i, s := range info.Tokens {
		if s == "" { // an id no token uses
			info.Tokens[i], info.TokenTypes[i] = fmt.Sprintf("[PAD%d]", i), TokenUnused
		}
	}
	for i, raw := range m.Merges {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			info.Merges = append(info.Merges, s)
			continue
		}
		var pair []string
		if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 {
			return TokenizerInfo{}, errs.Invalid("tokenizer.json: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", i)
		}
		info.Merges = append(info.Merges, pair[0]+" "+pair[1])
	}
	if err := specialTokens(&info, tok, cfg); err != nil {
		return TokenizerInfo{}, err
	}
	if info.ChatTemplate, err = chatTemplate(configJSON, tok); err != nil {
		return TokenizerInfo{}, err
	}
	return info, nil
}

// specialTokens sets BOS, EOS and whether llama.cpp adds them, from what
// Tailor adds around a sequence (the post-processor).
func specialTokens(info *TokenizerInfo, tok *tokenizer.Tokenizer, cfg engine.Config) error {
	info.BOS, info.EOS = cfg.BOSTokenID, cfg.EOSTokenID
	if info.BOS < 0 {
		info.BOS = int(tok.BOS())
	}
	if info.EOS < 0 {
		info.EOS = int(tok.EOS())
	}
	bare, with := tok.Encode("a", false), tok.Encode("a", true)
	i := 0
	for i+len(bare) <= len(with) && !slices.Equal(with[i:i+len(bare)], bare) {
		i++
	}
	prefix, suffix := with[:i], with[min(i+len(bare), len(with)):]
	switch {
	case len(prefix) == 0:
	// #nosec G115 -- BOS is a vocabulary id (>= 0 checked), below 2^31
	case len(prefix) == 1 && info.BOS >= 0 && prefix[0] == int32(info.BOS):
		info.AddBOS = true
	default:
		return refuse("its post-processor puts %v before a sequence, and llama.cpp can only add the BOS token", prefix)
	}
	switch {
	case len(suffix) == 0:
	// #nosec G115 -- EOS is a vocabulary id (>= 0 checked), below 2^31
	case len(suffix) == 1 && info.EOS >= 0 && suffix[0] == int32(info.EOS):
		info.AddEOS = true
	default:
		return refuse("its post-processor puts %v after a sequence, and llama.cpp can only add the EOS token", suffix)
	}
	// Without the key, llama.cpp's gpt2 vocabulary takes id 11 as BOS (a
	// leftover default). Point it at the end-of-text token instead, as
	// GPT-2 itself does; add_bos_token false keeps it out of every prompt.
	if info.BOS < 0 && !info.AddBOS {
		info.BOS = info.EOS
	}
	return nil
}

// chatTemplate returns tokenizer_config.json's chat template, or the
// ChatML one when Tailor recognizes ChatML from the vocabulary alone.
func chatTemplate(configJSON []byte, tok *tokenizer.Tokenizer) (string, error) {
	if len(configJSON) > 0 {
		var c struct {
			ChatTemplate json.RawMessage `json:"chat_template"`
		}
		if err := json.Unmarshal(configJSON, &c); err != nil {
			return "", errs.Invalid("tokenizer_config.json: %v", err)
		}
		var s string
		if json.Unmarshal(c.ChatTemplate, &s) == nil && s != "" {
			return s, nil
		}
		var named []struct{ Name, Template string }
		if json.Unmarshal(c.ChatTemplate, &named) == nil {
			for _, t := range named {
				if t.Name == "default" {
					return t.Template, nil
				}
			}
		}
	}
	if f, err := tok.ChatFormat(); err == nil && f == tokenizer.ChatML {
		return ChatMLTemplate, nil
	}
	return "", nil
}

// preName returns the tokenizer.ggml.pre name whose llama.cpp regexes equal
// the pre_tokenizer (see PreGPT2).
func preName(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", refuse("it has no pre_tokenizer")
	}
	var c preComponent
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", errs.Invalid("tokenizer.json: pre_tokenizer: %v", err)
	}
	steps := []preComponent{c}
	if c.Type == "Sequence" {
		steps = steps[:0]
		for i, r := range c.Pretokenizers {
			var s preComponent
			if err := json.Unmarshal(r, &s); err != nil {
				return "", errs.Invalid("tokenizer.json: pre_tokenizer.pretokenizers[%d]: %v", i, err)
			}
			steps = append(steps, s)
		}
	}
	byteLevel := func(s preComponent, regex bool) bool {
		return s.Type == "ByteLevel" && s.AddPrefixSpace != nil && !*s.AddPrefixSpace &&
			(s.UseRegex == nil || *s.UseRegex) == regex
	}
	split := func(s preComponent) string {
		if s.Type != "Split" || s.Invert || (s.Behavior != "Isolated" && s.Behavior != "") || s.Pattern == nil || s.Pattern.Regex == nil {
			return ""
		}
		return *s.Pattern.Regex
	}
	switch {
	case len(steps) == 1 && byteLevel(steps[0], true):
		return PreGPT2, nil
	case len(steps) == 2 && steps[0].Type == "Digits" && steps[0].IndividualDigits && byteLevel(steps[1], true):
		return PreSmolLM, nil
	case len(steps) == 2 && byteLevel(steps[1], false):
		switch split(steps[0]) {
		case patternGPT2:
			return PreGPT2, nil
		case patternLlama3:
			return PreLlama3, nil
		case patternQwen2:
			return PreQwen2, nil
		}
	}
	return "", refuse("its pre_tokenizer %s matches none of llama.cpp's pre-tokenizers exactly (supported: ByteLevel with the GPT-2 pattern, SmolLM's digits + ByteLevel, the Llama 3 and Qwen2 split patterns)", compact(raw))
}

func refuse(format string, args ...any) error {
	return errs.Invalid("gguf export: llama.cpp could not tokenize as this tokenizer does: "+format, args...)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func hasType(raw json.RawMessage, typ string) bool {
	var c struct{ Type string }
	return json.Unmarshal(raw, &c) == nil && c.Type == typ
}

func compact(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
