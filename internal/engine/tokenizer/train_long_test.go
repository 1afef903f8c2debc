//go:build long

package tokenizer

import (
	"slices"
	"testing"
	"time"
)

// TestTrainScale trains an 8192-token vocabulary on about 4 MB of text and
// logs how long it took (no threshold: timings depend on the machine).
func TestTrainScale(t *testing.T) {
	corpus := append(syntheticCorpus(5, 4<<20), realTexts()...)
	n := 0
	for _, s := range corpus {
		n += len(s)
	}
	start := time.Now()
	tok, err := Train(slices.Values(corpus), TrainOptions{VocabSize: 8192, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained %d tokens on %d bytes in %v", tok.VocabSize(), n, time.Since(start))
	if tok.VocabSize() != 8192 {
		t.Errorf("VocabSize = %d, want 8192", tok.VocabSize())
	}
}
