package data

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/profile")

func TestProfileGolden(t *testing.T) {
	tests := []struct{ file, task string }{
		{"classify.jsonl", TaskClassify},
		{"sft.jsonl", TaskSFT},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m, err := importBytes(t, newMemStore(), tc.file, tc.task, readFixture(t, "good/"+tc.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(m.Profile, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "profile", tc.file+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestProfileGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("profile differs from %s (sha256 %s, want %s); rerun with -update if intended\n%s",
					golden, sha(got), sha(want), got)
			}
		})
	}
}

func TestProfileStats(t *testing.T) {
	p := newProfiler(TaskClassify)
	for _, text := range []string{"Hello, World 42", "héllo world", "x"} {
		p.add(&Record{Text: text, Label: "a"})
	}
	got := p.finish()
	if got.Records != 3 || got.Labels["a"] != 3 {
		t.Errorf("records %d labels %v", got.Records, got.Labels)
	}
	if got.Length.Min != 1 || got.Length.Max != 15 || got.Length.Mean != 9 {
		t.Errorf("length %+v, want min 1 max 15 mean 9", got.Length)
	}
	if want := round6(math.Sqrt((36.0 + 4 + 64) / 3)); got.Length.Std != want {
		t.Errorf("std %v, want %v", got.Length.Std, want)
	}
	// 27 characters: 21 letters, 2 digits, 3 spaces, 1 comma, 1 non-ASCII.
	c := got.Chars
	if c.Total != 27 || c.Letters != round6(21.0/27) || c.Digits != round6(2.0/27) ||
		c.Whitespace != round6(3.0/27) || c.Punctuation != round6(1.0/27) || c.NonASCII != round6(1.0/27) {
		t.Errorf("chars %+v", c)
	}
	if got.Words.Count != 6 || got.Words.Vocabulary != 5 {
		t.Errorf("words %+v, want 6 words, 5 distinct", got.Words)
	}
	if got.Unigrams[0] != (NGram{Gram: "world", Count: 2}) || got.Bigrams[0].Gram != "hello world" {
		t.Errorf("unigrams %v bigrams %v", got.Unigrams, got.Bigrams)
	}
}

func TestHeavyHitters(t *testing.T) {
	// Under capacity the counts are exact and ties are broken by string.
	s := newHeavyHitters(8)
	for _, w := range []string{"b", "a", "c", "a", "b", "a", "d"} {
		s.add([]byte(w), hashBytes([]byte(w)))
	}
	want := []NGram{{Gram: "a", Count: 3}, {Gram: "b", Count: 2}, {Gram: "c", Count: 1}}
	if got := s.top(3); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("top %v, want %v", got, want)
	}
	// Over capacity, heavy hitters survive a long tail.
	s = newHeavyHitters(64)
	for i := 0; i < 20000; i++ {
		tail := []byte(fmt.Sprintf("tail%d", i))
		s.add(tail, hashBytes(tail))
		if i%10 == 0 {
			s.add([]byte("heavy"), hashBytes([]byte("heavy")))
		}
	}
	if top := s.top(1)[0]; top.Gram != "heavy" || top.Count-top.Error > 2000 || top.Count < 2000 {
		t.Errorf("top %+v, want heavy with a count bounding 2000", top)
	}
}

func TestKMV(t *testing.T) {
	tests := []struct{ distinct, repeats int }{{100, 3}, {50000, 2}}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.distinct), func(t *testing.T) {
			s := newKMV(kmvK)
			for r := 0; r < tc.repeats; r++ {
				for i := 0; i < tc.distinct; i++ {
					s.add(hashBytes([]byte(fmt.Sprintf("w%d", i))))
				}
			}
			got := float64(s.estimate())
			if rel := math.Abs(got-float64(tc.distinct)) / float64(tc.distinct); rel > 0.05 {
				t.Errorf("estimate %v for %d distinct (%.1f%% off)", got, tc.distinct, 100*rel)
			}
		})
	}
}

func TestProfileCompare(t *testing.T) {
	build := func(texts []string, labels []string) *Profile {
		p := newProfiler(TaskClassify)
		for i, x := range texts {
			p.add(&Record{Text: x, Label: labels[i%len(labels)]})
		}
		return p.finish()
	}
	short := []string{"cheap pills now", "win a prize", "hello there"}
	long := []string{
		"the quarterly report is attached, please review the numbers before the meeting on monday",
		"minutes of the board meeting are attached, with the budget review and the hiring plan",
	}
	a := build(short, []string{"spam", "ham"})
	tests := []struct {
		name    string
		b       *Profile
		psiZero bool
		tv      float64
		added   []string
	}{
		{"same", build(short, []string{"spam", "ham"}), true, 0, nil},
		{"shifted", build(long, []string{"urgent", "ham"}), false, 0.666667, []string{"urgent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := a.Compare(tc.b)
			if (d.LengthPSI == 0) != tc.psiZero || d.LabelTV != tc.tv || fmt.Sprint(d.LabelsAdded) != fmt.Sprint(tc.added) {
				t.Errorf("psi %v tv %v added %v", d.LengthPSI, d.LabelTV, d.LabelsAdded)
			}
			if tc.psiZero && (d.Unigrams.Jaccard != 1 || len(d.Unigrams.Added) != 0) {
				t.Errorf("unigrams %+v", d.Unigrams)
			}
			if !tc.psiZero && (d.LengthPSI < 0.25 || d.Unigrams.Jaccard > 0.2 || len(d.LabelsRemoved) != 1) {
				t.Errorf("shift not visible: %+v", d)
			}
		})
	}
}
