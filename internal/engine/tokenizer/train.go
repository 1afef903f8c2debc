package tokenizer

import (
	"bytes"
	"iter"
	"sort"

	"github.com/tailor-ml/tailor/internal/errs"
)

// TrainOptions configures Train.
type TrainOptions struct {
	// VocabSize is the final vocabulary size, counting the special tokens
	// and the 256 byte tokens. Default 8192.
	VocabSize int
	// MinFrequency stops training when the most frequent pair occurs fewer
	// times than this. Default 2.
	MinFrequency int
	// SpecialTokens get ids 0, 1, … in this order and are added tokens
	// marked special.
	SpecialTokens []string
}

// Train learns a byte-level BPE tokenizer (GPT-2 split pattern, ByteLevel
// pre-tokenizer and decoder) from a corpus. It is deterministic: ties in
// pair frequency are broken by the pair's bytes (left token, then right
// token, in byte order), so the same corpus and options give the same
// tokenizer.json bytes.
func Train(corpus iter.Seq[string], opts TrainOptions) (*Tokenizer, error) {
	if opts.VocabSize == 0 {
		opts.VocabSize = 8192
	}
	if opts.MinFrequency == 0 {
		opts.MinFrequency = 2
	}
	nSpecial := len(opts.SpecialTokens)
	if opts.VocabSize < nSpecial+256 {
		return nil, errs.Invalid("train: vocab size %d is below the %d special and 256 byte tokens", opts.VocabSize, nSpecial)
	}
	seen := make(map[string]bool, nSpecial)
	for i, s := range opts.SpecialTokens {
		if s == "" || seen[s] {
			return nil, errs.Invalid("train: special token %d %q is empty or repeated", i, s)
		}
		seen[s] = true
	}
	tr := newTrainer(nSpecial)
	tr.countWords(corpus)
	tr.run(opts.VocabSize, int64(opts.MinFrequency))
	data := tr.marshal(opts.SpecialTokens)
	t, err := Load(data, nil)
	if err != nil {
		return nil, err // a bug: the trainer wrote a file it cannot read
	}
	return t, nil
}

// trainer holds the BPE training state.
type trainer struct {
	tokens [][]byte         // id -> raw bytes (specials have none)
	ids    map[string]int32 // raw bytes -> id, for reuse of merged strings
	merges [][2]int32
	words  [][]int32 // unique words as symbol ids
	freq   []int64   // occurrences of each word
	counts map[uint64]int64
	where  map[uint64][]int32 // pair -> words that may hold it (duplicates allowed)
}

// #nosec G115 -- packs two non-negative int32 ids into one uint64 key
func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func newTrainer(nSpecial int) *trainer {
	tr := &trainer{ids: make(map[string]int32), counts: make(map[uint64]int64), where: make(map[uint64][]int32)}
	for i := 0; i < nSpecial; i++ {
		tr.tokens = append(tr.tokens, nil)
	}
	for b := 0; b < 256; b++ {
		// #nosec G115 -- the 256 byte tokens
		tr.ids[string([]byte{byte(b)})] = int32(len(tr.tokens))
		tr.tokens = append(tr.tokens, []byte{byte(b)})
	}
	return tr
}

// countWords splits every text with the GPT-2 pattern and counts words.
func (tr *trainer) countWords(corpus iter.Seq[string]) {
	wc := make(map[string]int64)
	for text := range corpus {
		for i := 0; i < len(text); {
			n := gpt2Match(text, i)
			wc[text[i:i+n]]++
			i += n
		}
	}
	keys := make([]string, 0, len(wc))
	for k := range wc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tr.words = make([][]int32, len(keys))
	tr.freq = make([]int64, len(keys))
	for wi, k := range keys {
		w := make([]int32, len(k))
		for i := 0; i < len(k); i++ {
			w[i] = tr.ids[k[i:i+1]]
		}
		tr.words[wi], tr.freq[wi] = w, wc[k]
		tr.addPairs(int32(wi), 1)
	}
}

// addPairs adds sign × frequency of every adjacent pair of word wi to the
// counts, and records wi under each pair when adding.
func (tr *trainer) addPairs(wi int32, sign int64) {
	w, f := tr.words[wi], tr.freq[wi]*sign
	for i := 0; i+1 < len(w); i++ {
		k := pairKey(w[i], w[i+1])
		tr.counts[k] += f
		if sign > 0 {
			tr.where[k] = append(tr.where[k], wi)
		}
	}
}

// run performs merges until the vocabulary is full or no pair is frequent
// enough.
func (tr *trainer) run(vocabSize int, minFreq int64) {
	q := &pairHeap{tokens: &tr.tokens}
	for k, c := range tr.counts {
		q.push(pairItem{count: c, key: k})
	}
	for len(tr.tokens) < vocabSize && len(q.items) > 0 {
		top := q.pop()
		c := tr.counts[top.key]
		if c != top.count {
			if c > 0 {
				q.push(pairItem{count: c, key: top.key})
			}
			continue
		}
		if c < minFreq || c <= 0 {
			break
		}
		// #nosec G115 -- unpacks two int32 ids from a pairKey
		a, b := int32(top.key>>32), int32(uint32(top.key))
		id := tr.newToken(a, b)
		for _, k := range tr.mergePair(a, b, id) {
			q.push(pairItem{count: tr.counts[k], key: k})
		}
	}
}

// newToken records the merge (a, b) and returns the id of the merged bytes,
// reusing an existing token with the same bytes.
func (tr *trainer) newToken(a, b int32) int32 {
	tr.merges = append(tr.merges, [2]int32{a, b})
	joined := append(append([]byte(nil), tr.tokens[a]...), tr.tokens[b]...)
	if id, ok := tr.ids[string(joined)]; ok {
		return id
	}
	// #nosec G115 -- ids stay below the requested vocabulary size, which fits int32
	id := int32(len(tr.tokens))
	tr.tokens = append(tr.tokens, joined)
	tr.ids[string(joined)] = id
	return id
}

// mergePair rewrites every word holding (a, b) and returns the pairs with
// the new token, whose counts grew.
func (tr *trainer) mergePair(a, b, id int32) []uint64 {
	key := pairKey(a, b)
	list := tr.where[key]
	delete(tr.where, key)
	sort.Slice(list, func(i, j int) bool { return list[i] < list[j] })
	grown := make(map[uint64]bool)
	for i, wi := range list {
		if i > 0 && list[i-1] == wi {
			continue
		}
		w := tr.words[wi]
		if !hasPair(w, a, b) {
			continue
		}
		tr.addPairs(wi, -1)
		out := w[:0]
		for j := 0; j < len(w); j++ {
			if j+1 < len(w) && w[j] == a && w[j+1] == b {
				out = append(out, id)
				j++
				continue
			}
			out = append(out, w[j])
		}
		tr.words[wi] = out
		tr.addPairs(wi, 1)
		for j := 0; j+1 < len(out); j++ {
			if out[j] == id || out[j+1] == id {
				grown[pairKey(out[j], out[j+1])] = true
			}
		}
	}
	delete(tr.counts, key)
	keys := make([]uint64, 0, len(grown))
	for k := range grown {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

func hasPair(w []int32, a, b int32) bool {
	for j := 0; j+1 < len(w); j++ {
		if w[j] == a && w[j+1] == b {
			return true
		}
	}
	return false
}

type pairItem struct {
	count int64
	key   uint64
}

// pairHeap is a max-heap on count; ties go to the pair whose bytes sort
// first (left token, then right token).
type pairHeap struct {
	items  []pairItem
	tokens *[][]byte
}

func (h *pairHeap) before(x, y pairItem) bool {
	if x.count != y.count {
		return x.count > y.count
	}
	t := *h.tokens
	// #nosec G115 -- unpacks two int32 ids from a pairKey
	xa, xb := t[int32(x.key>>32)], t[int32(uint32(x.key))]
	// #nosec G115 -- unpacks two int32 ids from a pairKey
	ya, yb := t[int32(y.key>>32)], t[int32(uint32(y.key))]
	if c := bytes.Compare(xa, ya); c != 0 {
		return c < 0
	}
	return bytes.Compare(xb, yb) < 0
}

func (h *pairHeap) push(it pairItem) {
	h.items = append(h.items, it)
	s := h.items
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.before(s[i], s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *pairHeap) pop() pairItem {
	s := h.items
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, r, best := 2*i+1, 2*i+2, i
		if l < n && h.before(s[l], s[best]) {
			best = l
		}
		if r < n && h.before(s[r], s[best]) {
			best = r
		}
		if best == i {
			break
		}
		s[i], s[best] = s[best], s[i]
		i = best
	}
	h.items = s
	return top
}
