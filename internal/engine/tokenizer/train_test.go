package tokenizer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// syntheticCorpus builds about size bytes of text from Zipf-distributed
// pseudo-words, mixed with the sample texts, deterministically from seed.
func syntheticCorpus(seed uint64, size int) []string {
	rng := rand.New(rand.NewPCG(seed, 7))
	syl := []string{"ka", "to", "ri", "ne", "su", "mo", "la", "vi", "pe", "dor", "an", "ex", "qu", "ist", "ing", "tion", "ü", "é", "ж", "中", "th", "sh"}
	lex := make([]string, 20000)
	for i := range lex {
		var sb strings.Builder
		for n := 1 + rng.IntN(4); n > 0; n-- {
			sb.WriteString(syl[rng.IntN(len(syl))])
		}
		lex[i] = sb.String()
	}
	z := rand.NewZipf(rng, 1.1, 2, uint64(len(lex)-1))
	var out []string
	samples := sampleTexts(seed, 200)
	total := 0
	for total < size {
		var sb strings.Builder
		for n := 5 + rng.IntN(80); n > 0; n-- {
			sb.WriteString(lex[z.Uint64()])
			sb.WriteString(sampleSpaces[rng.IntN(len(sampleSpaces))])
		}
		if rng.IntN(5) == 0 {
			sb.WriteString(samples[rng.IntN(len(samples))])
		}
		out = append(out, sb.String())
		total += sb.Len()
	}
	return out
}

func trainOn(t *testing.T, corpus []string, opts TrainOptions) (*Tokenizer, []byte) {
	t.Helper()
	tok, err := Train(slices.Values(corpus), opts)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tok.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return tok, data
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func TestTrainDeterministic(t *testing.T) {
	corpus := syntheticCorpus(3, 300_000)
	opts := TrainOptions{VocabSize: 1500, SpecialTokens: []string{"<|endoftext|>", "<pad>"}}
	_, a := trainOn(t, corpus, opts)
	_, b := trainOn(t, corpus, opts)
	shuffled := slices.Clone(corpus)
	rand.New(rand.NewPCG(9, 9)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	_, c := trainOn(t, shuffled, opts)
	if sum(a) != sum(b) || sum(a) != sum(c) {
		t.Fatalf("training is not deterministic: sha256 %s, %s, %s (shuffled)", sum(a), sum(b), sum(c))
	}
}

// TestTrainGolden pins the trainer's output bytes; the file doubles as the
// small byte-level fixture other tests load. Rewrite with -update.
func TestTrainGolden(t *testing.T) {
	corpus := sampleTexts(7, 400)
	_, data := trainOn(t, corpus, TrainOptions{VocabSize: 600, SpecialTokens: tinySpecials})
	path := filepath.Join("testdata", "tiny", "tokenizer.json")
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) {
		t.Fatalf("trained tokenizer.json sha256 %s, golden %s has %s (run with -update if the change is intended)", sum(data), path, sum(want))
	}
}

var tinySpecials = []string{"<|endoftext|>", "<s>", "</s>", "<|im_start|>", "<|im_end|>",
	"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}

func TestTrainRoundTrip(t *testing.T) {
	corpus := syntheticCorpus(4, 400_000)
	tok, data := trainOn(t, corpus, TrainOptions{VocabSize: 2000, MinFrequency: 2, SpecialTokens: []string{"<|endoftext|>"}})
	if tok.VocabSize() != 2000 {
		t.Errorf("VocabSize = %d, want 2000", tok.VocabSize())
	}
	back, err := Load(data, nil)
	if err != nil {
		t.Fatalf("load trained tokenizer.json: %v", err)
	}
	texts := append(sampleTexts(5, 300), "<|endoftext|>x", "\xff\xfe invalid")
	for i, s := range texts {
		a, b := tok.Encode(s, false), back.Encode(s, false)
		if !equalIDs(a, b) {
			t.Fatalf("text %d: trained %v, reloaded %v", i, a, b)
		}
		if strings.ToValidUTF8(s, "") == s {
			if got := back.Decode(b, false); got != s {
				t.Fatalf("text %d: Decode(Encode(s)) = %q, want %q", i, got, s)
			}
		}
	}
	if ids := tok.Encode("<|endoftext|>", false); len(ids) != 1 || ids[0] != 0 {
		t.Errorf("special token encodes to %v, want [0]", ids)
	}
	// Frequent words of the corpus become single tokens.
	if ids := tok.Encode(corpus[0][:strings.IndexAny(corpus[0], " \t\n\u00a0\u3000")], false); len(ids) > 3 {
		t.Errorf("a frequent word takes %d tokens", len(ids))
	}
}

func TestTrainOptionsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts TrainOptions
	}{
		{"vocab too small", TrainOptions{VocabSize: 100}},
		{"repeated special", TrainOptions{VocabSize: 300, SpecialTokens: []string{"<a>", "<a>"}}},
		{"empty special", TrainOptions{VocabSize: 300, SpecialTokens: []string{""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Train(slices.Values([]string{"abc"}), tc.opts); err == nil || !isInvalid(err) {
				t.Fatalf("Train: err = %v, want invalid", err)
			}
		})
	}
}
