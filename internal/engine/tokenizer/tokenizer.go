// Package tokenizer reads Hugging Face tokenizer.json files (and, for chat
// templates and special tokens, tokenizer_config.json) and encodes and
// decodes text with them. It owns:
//
//   - BPE with byte-level pre-tokenization (GPT-2, Llama 3, Qwen2, SmolLM),
//     with the GPT-2 and Llama-3/Qwen2 split patterns implemented as
//     hand-written scanners (Go's regexp has no lookahead);
//   - SentencePiece-style BPE (Llama 2, Mistral): Prepend/Replace
//     normalizers or a Metaspace pre-tokenizer, byte fallback, fused unknowns;
//   - added and special tokens, post-processor templates (BOS/EOS);
//   - chat templates for the common formats (ChatML, Llama 2, Llama 3,
//     Mistral), recognized from their source, without a Jinja engine;
//   - a deterministic byte-level BPE trainer and a tokenizer.json writer.
//
// It imports only internal/errs from Tailor and reads no files except in
// LoadDir, whose paths the caller passes in.
package tokenizer

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Tokenizer encodes text to token ids and back. It is safe for concurrent
// use by multiple goroutines.
type Tokenizer struct {
	model    *bpeModel
	tokens   []string         // id -> token string (model vocab and added tokens)
	valid    []bool           // whether an id has a token (ids may have gaps)
	ids      map[string]int32 // token string -> id (model vocab and added tokens)
	added    *addedVocab
	norm     []normalizer
	pre      []preStep
	dec      []decodeStep
	prefix   []int32 // post-processor ids before a single sequence
	suffix   []int32 // post-processor ids after a single sequence
	bos, eos int32
	chat     chatFormat
	chatErr  error  // why no chat format was recognized, if none
	raw      []byte // the tokenizer.json this was loaded from; nil if trained
	cache    wordCache
}

// Load parses a tokenizer.json document and, when configJSON is not empty,
// its tokenizer_config.json (chat template, BOS/EOS, add_bos_token).
func Load(tokenizerJSON, configJSON []byte) (*Tokenizer, error) {
	spec, err := parseSpec(tokenizerJSON)
	if err != nil {
		return nil, err
	}
	var cfg *configSpec
	if len(configJSON) > 0 {
		if cfg, err = parseConfig(configJSON); err != nil {
			return nil, err
		}
	}
	t, err := build(spec, cfg)
	if err != nil {
		return nil, err
	}
	t.raw = append([]byte(nil), tokenizerJSON...)
	return t, nil
}

// LoadDir loads dir/tokenizer.json and, if present, dir/tokenizer_config.json.
// Errors name the file.
func LoadDir(dir string) (*Tokenizer, error) {
	tokPath := filepath.Join(dir, "tokenizer.json")
	// #nosec G304 -- tokenizer.json in the model folder the caller loads
	tj, err := os.ReadFile(tokPath)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errs.NotFound("tokenizer %s: no such file", tokPath)
		}
		return nil, fmt.Errorf("read tokenizer %s: %w", tokPath, err)
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	// #nosec G304 -- tokenizer_config.json in the model folder the caller loads
	cj, err := os.ReadFile(cfgPath)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read tokenizer config %s: %w", cfgPath, err)
	}
	spec, err := parseSpec(tj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tokPath, err)
	}
	var cfg *configSpec
	if len(cj) > 0 {
		if cfg, err = parseConfig(cj); err != nil {
			return nil, fmt.Errorf("%s: %w", cfgPath, err)
		}
	}
	t, err := build(spec, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tokPath, err)
	}
	t.raw = tj
	return t, nil
}

// VocabSize is one more than the largest id (model vocabulary and added
// tokens), the size an embedding table needs.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// TokenToID returns the id of a token string (model vocabulary or added).
func (t *Tokenizer) TokenToID(tok string) (int32, bool) {
	id, ok := t.ids[tok]
	return id, ok
}

// IDToToken returns the token string of an id.
func (t *Tokenizer) IDToToken(id int32) (string, bool) {
	if id < 0 || int(id) >= len(t.tokens) || !t.valid[id] {
		return "", false
	}
	return t.tokens[id], true
}

// BOS returns the beginning-of-sequence id, or -1 if the tokenizer has none.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence id, or -1 if the tokenizer has none.
func (t *Tokenizer) EOS() int32 { return t.eos }

// IsSpecial reports whether id is an added token marked special.
func (t *Tokenizer) IsSpecial(id int32) bool { return t.added.isSpecial(id) }

// Encode turns text into ids. Added tokens in the text are recognized
// (longest match first); addSpecial adds the post-processor's tokens (for
// example BOS) around the sequence.
func (t *Tokenizer) Encode(text string, addSpecial bool) []int32 {
	var out []int32
	if addSpecial {
		out = append(out, t.prefix...)
	}
	for _, seg := range t.added.split(text) {
		if seg.id >= 0 {
			out = append(out, seg.id)
			continue
		}
		out = t.encodeSection(out, seg.text, seg.start == 0)
	}
	if addSpecial {
		out = append(out, t.suffix...)
	}
	return out
}

// encodeSection normalizes, pre-tokenizes and runs the model over one piece
// of text that holds no added token.
func (t *Tokenizer) encodeSection(out []int32, text string, first bool) []int32 {
	if text == "" {
		return out
	}
	for _, n := range t.norm {
		text = n(text)
	}
	words := []string{text}
	for _, p := range t.pre {
		words = p(words, first)
	}
	for _, w := range words {
		if w == "" {
			continue
		}
		if ids, ok := t.cache.get(w); ok {
			out = append(out, ids...)
			continue
		}
		ids := t.model.encodeWord(w)
		t.cache.put(w, ids)
		out = append(out, ids...)
	}
	return out
}

// Decode turns ids back into text. skipSpecial drops added tokens marked
// special; ids outside the vocabulary are dropped.
func (t *Tokenizer) Decode(ids []int32, skipSpecial bool) string {
	toks := make([]string, 0, len(ids))
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.tokens) || !t.valid[id] {
			continue
		}
		if skipSpecial && t.added.isSpecial(id) {
			continue
		}
		toks = append(toks, t.tokens[id])
	}
	for _, d := range t.dec {
		toks = d(toks)
	}
	n := 0
	for _, s := range toks {
		n += len(s)
	}
	buf := make([]byte, 0, n)
	for _, s := range toks {
		buf = append(buf, s...)
	}
	return string(buf)
}

// wordCache remembers the ids of recently encoded words. It is bounded and
// cleared when full.
type wordCache struct {
	mu sync.Mutex
	m  map[string][]int32
}

const wordCacheMax = 1 << 16

func (c *wordCache) get(w string) ([]int32, bool) {
	c.mu.Lock()
	ids, ok := c.m[w]
	c.mu.Unlock()
	return ids, ok
}

func (c *wordCache) put(w string, ids []int32) {
	if len(w) > 256 {
		return
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= wordCacheMax {
		c.m = make(map[string][]int32)
	}
	c.m[w] = ids
	c.mu.Unlock()
}
