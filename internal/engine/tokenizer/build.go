package tokenizer

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/tailor-ml/tailor/internal/errs"
)

// maxID bounds token ids so a malformed file cannot make us allocate
// gigabytes.
const maxID = 1<<24 - 1

// build validates a parsed tokenizer.json (and optional config) and
// assembles a Tokenizer.
func build(s *spec, cfg *configSpec) (*Tokenizer, error) {
	m, err := buildModel(&s.Model)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{model: m, bos: -1, eos: -1}
	if err := t.buildVocab(s.AddedTokens); err != nil {
		return nil, err
	}
	if err := t.buildPipeline(s); err != nil {
		return nil, err
	}
	if err := t.buildSpecials(s.PostProcessor, cfg); err != nil {
		return nil, err
	}
	template := ""
	if cfg != nil {
		template = cfg.ChatTemplate
	}
	t.chat, t.chatErr = detectChat(template, t)
	return t, nil
}

func buildModel(ms *modelSpec) (*bpeModel, error) {
	if ms.Type != "" && ms.Type != "BPE" {
		return nil, errs.Invalid("tokenizer.json: model.type: %q is not supported (want BPE)", ms.Type)
	}
	if ms.Vocab == nil {
		return nil, errs.Invalid("tokenizer.json: model.vocab: missing")
	}
	if ms.ContinuingSubwordPrefix != nil && *ms.ContinuingSubwordPrefix != "" {
		return nil, errs.Invalid("tokenizer.json: model.continuing_subword_prefix: %q is not supported", *ms.ContinuingSubwordPrefix)
	}
	if ms.EndOfWordSuffix != nil && *ms.EndOfWordSuffix != "" {
		return nil, errs.Invalid("tokenizer.json: model.end_of_word_suffix: %q is not supported", *ms.EndOfWordSuffix)
	}
	m := &bpeModel{
		vocab:        make(map[string]int32, len(ms.Vocab)),
		unk:          -1,
		fuseUnk:      ms.FuseUnk,
		byteFallback: ms.ByteFallback,
		ignoreMerges: ms.IgnoreMerges,
	}
	keys := make([]string, 0, len(ms.Vocab))
	for k := range ms.Vocab {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	byID := make(map[int64]string, len(keys))
	for _, k := range keys {
		id := ms.Vocab[k]
		if id < 0 || id > maxID {
			return nil, errs.Invalid("tokenizer.json: model.vocab[%q]: id %d out of range [0, %d]", k, id, maxID)
		}
		if other, dup := byID[id]; dup {
			return nil, errs.Invalid("tokenizer.json: model.vocab: id %d used by both %q and %q", id, other, k)
		}
		byID[id] = k
		m.vocab[k] = int32(id)
	}
	if err := m.buildMerges(ms.Merges); err != nil {
		return nil, err
	}
	if ms.UnkToken != nil && *ms.UnkToken != "" {
		id, ok := m.vocab[*ms.UnkToken]
		if !ok {
			return nil, errs.Invalid("tokenizer.json: model.unk_token: %q is not in model.vocab", *ms.UnkToken)
		}
		m.unk = id
	}
	for b := 0; b < 256; b++ {
		m.byteTok[b] = -1
		if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteTok[b] = id
		}
	}
	return m, nil
}

func (m *bpeModel) buildMerges(raw json.RawMessage) error {
	pairs, err := parseMerges(raw)
	if err != nil {
		return err
	}
	m.merges = make(map[[2]int32]mergeRule, len(pairs))
	m.mergeList = make([][2]int32, 0, len(pairs))
	for i, p := range pairs {
		a, ok := m.vocab[p[0]]
		if !ok {
			return errs.Invalid("tokenizer.json: model.merges[%d]: token %q is not in model.vocab", i, p[0])
		}
		b, ok := m.vocab[p[1]]
		if !ok {
			return errs.Invalid("tokenizer.json: model.merges[%d]: token %q is not in model.vocab", i, p[1])
		}
		id, ok := m.vocab[p[0]+p[1]]
		if !ok {
			return errs.Invalid("tokenizer.json: model.merges[%d]: merged token %q is not in model.vocab", i, p[0]+p[1])
		}
		key := [2]int32{a, b}
		if _, dup := m.merges[key]; dup {
			continue // the first (lowest) rank wins
		}
		// #nosec G115 -- merge ranks are below the vocabulary size, which fits int32
		m.merges[key] = mergeRule{rank: int32(len(m.mergeList)), id: id}
		m.mergeList = append(m.mergeList, key)
	}
	return nil
}

// buildVocab merges the model vocabulary and the added tokens into the
// id <-> string tables.
func (t *Tokenizer) buildVocab(specs []addedSpec) error {
	size := 0
	for _, id := range t.model.vocab {
		size = max(size, int(id)+1)
	}
	added := make([]addedToken, 0, len(specs))
	for i, a := range specs {
		if a.ID == nil {
			return errs.Invalid("tokenizer.json: added_tokens[%d]: missing id", i)
		}
		id := *a.ID
		if id < 0 || id > maxID {
			return errs.Invalid("tokenizer.json: added_tokens[%d]: id %d out of range [0, %d]", i, id, maxID)
		}
		if a.Content == "" {
			return errs.Invalid("tokenizer.json: added_tokens[%d]: empty content", i)
		}
		if vid, ok := t.model.vocab[a.Content]; ok && int64(vid) != id {
			return errs.Invalid("tokenizer.json: added_tokens[%d]: %q has id %d but model.vocab gives it %d", i, a.Content, id, vid)
		}
		size = max(size, int(id)+1)
		added = append(added, addedToken{
			id: int32(id), content: a.Content, special: a.Special, lstrip: a.LStrip,
			rstrip: a.RStrip, singleWord: a.SingleWord, normalized: a.Normalized,
		})
	}
	t.tokens = make([]string, size)
	t.valid = make([]bool, size)
	t.ids = make(map[string]int32, size)
	for k, id := range t.model.vocab {
		t.tokens[id], t.valid[id] = k, true
		t.ids[k] = id
	}
	for i, a := range added {
		if t.valid[a.id] && t.tokens[a.id] != a.content {
			return errs.Invalid("tokenizer.json: added_tokens[%d]: id %d is already %q, not %q", i, a.id, t.tokens[a.id], a.content)
		}
		if other, ok := t.ids[a.content]; ok && other != a.id {
			return errs.Invalid("tokenizer.json: added_tokens[%d]: %q has ids %d and %d", i, a.content, other, a.id)
		}
		t.tokens[a.id], t.valid[a.id] = a.content, true
		t.ids[a.content] = a.id
	}
	t.added = newAddedVocab(added)
	return nil
}

func (t *Tokenizer) buildPipeline(s *spec) error {
	nc, err := parseComponent(s.Normalizer, "normalizer")
	if err != nil {
		return err
	}
	if t.norm, err = buildNormalizers(nc, "normalizer"); err != nil {
		return err
	}
	pc, err := parseComponent(s.PreTokenizer, "pre_tokenizer")
	if err != nil {
		return err
	}
	if t.pre, _, err = buildPreTokenizer(pc, "pre_tokenizer"); err != nil {
		return err
	}
	dc, err := parseComponent(s.Decoder, "decoder")
	if err != nil {
		return err
	}
	t.dec, err = buildDecoder(dc, "decoder")
	return err
}

// buildSpecials sets the post-processor prefix/suffix and BOS/EOS.
func (t *Tokenizer) buildSpecials(raw json.RawMessage, cfg *configSpec) error {
	pc, err := parseComponent(raw, "post_processor")
	if err != nil {
		return err
	}
	if t.prefix, t.suffix, err = t.postProcessor(pc, "post_processor"); err != nil {
		return err
	}
	lookup := func(field, tok string) (int32, error) {
		if tok == "" {
			return -1, nil
		}
		id, ok := t.ids[tok]
		if !ok {
			return -1, errs.Invalid("tokenizer_config.json: %s: %q is not in the vocabulary", field, tok)
		}
		return id, nil
	}
	if cfg != nil {
		if t.bos, err = lookup("bos_token", cfg.BOSToken); err != nil {
			return err
		}
		if t.eos, err = lookup("eos_token", cfg.EOSToken); err != nil {
			return err
		}
		if len(t.prefix) == 0 && len(t.suffix) == 0 {
			if cfg.AddBOS != nil && *cfg.AddBOS && t.bos >= 0 {
				t.prefix = []int32{t.bos}
			}
			if cfg.AddEOS != nil && *cfg.AddEOS && t.eos >= 0 {
				t.suffix = []int32{t.eos}
			}
		}
		return nil
	}
	if len(t.prefix) == 1 {
		t.bos = t.prefix[0]
	}
	if len(t.suffix) == 1 {
		t.eos = t.suffix[0]
	}
	for _, name := range []string{"<s>", "<|begin_of_text|>", "<|endoftext|>"} {
		if id, ok := t.ids[name]; ok && t.bos < 0 {
			t.bos = id
		}
	}
	for _, name := range []string{"</s>", "<|end_of_text|>", "<|endoftext|>"} {
		if id, ok := t.ids[name]; ok && t.eos < 0 {
			t.eos = id
		}
	}
	return nil
}

// postProcessor returns the ids placed before and after a single sequence.
func (t *Tokenizer) postProcessor(c *component, field string) (prefix, suffix []int32, err error) {
	if c == nil {
		return nil, nil, nil
	}
	switch c.Type {
	case "ByteLevel":
		return nil, nil, nil
	case "Sequence":
		for i, raw := range c.Processors {
			f := fmt.Sprintf("%s.processors[%d]", field, i)
			sub, err := parseComponent(raw, f)
			if err != nil {
				return nil, nil, err
			}
			p, s, err := t.postProcessor(sub, f)
			if err != nil {
				return nil, nil, err
			}
			prefix, suffix = append(prefix, p...), append(suffix, s...)
		}
		return prefix, suffix, nil
	case "TemplateProcessing":
		return t.template(c, field)
	case "RobertaProcessing", "BertProcessing":
		cls, err := t.pairToken(c.Cls, field+".cls")
		if err != nil {
			return nil, nil, err
		}
		sep, err := t.pairToken(c.Sep, field+".sep")
		if err != nil {
			return nil, nil, err
		}
		return []int32{cls}, []int32{sep}, nil
	}
	return nil, nil, unsupported(field, "post-processor", c.Type)
}

func (t *Tokenizer) template(c *component, field string) (prefix, suffix []int32, err error) {
	seenA := false
	for i, p := range c.Single {
		switch {
		case p.Sequence != nil:
			seenA = true
		case p.SpecialToken != nil:
			st, ok := c.SpecialTokens[p.SpecialToken.ID]
			if !ok {
				return nil, nil, errs.Invalid("tokenizer.json: %s.single[%d]: special token %q is not in special_tokens", field, i, p.SpecialToken.ID)
			}
			for _, id := range st.IDs {
				if id < 0 || int(id) >= len(t.tokens) || !t.valid[id] {
					return nil, nil, errs.Invalid("tokenizer.json: %s.special_tokens[%q]: id %d is not in the vocabulary", field, p.SpecialToken.ID, id)
				}
				if seenA {
					// #nosec G115 -- a vocabulary id, below 2^31
					suffix = append(suffix, int32(id))
				} else {
					// #nosec G115 -- a vocabulary id, below 2^31
					prefix = append(prefix, int32(id))
				}
			}
		default:
			return nil, nil, errs.Invalid("tokenizer.json: %s.single[%d]: want SpecialToken or Sequence", field, i)
		}
	}
	return prefix, suffix, nil
}

// pairToken reads a ["token", id] pair and checks it against the vocabulary.
func (t *Tokenizer) pairToken(raw []json.RawMessage, field string) (int32, error) {
	var id int64
	if len(raw) != 2 || json.Unmarshal(raw[1], &id) != nil {
		return -1, errs.Invalid("tokenizer.json: %s: want [\"token\", id]", field)
	}
	if id < 0 || int(id) >= len(t.tokens) || !t.valid[id] {
		return -1, errs.Invalid("tokenizer.json: %s: id %d is not in the vocabulary", field, id)
	}
	return int32(id), nil
}
