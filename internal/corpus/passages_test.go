package corpus

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPassages(t *testing.T) {
	long := strings.Repeat("word ", 60) // 300 runes
	docs := []Document{
		{ID: "a", Title: "A", Text: "First paragraph.\n\nSecond one.\r\n\r\nThird é paragraph here."},
		{ID: "b", Title: "B", Text: long + "\n\nshort tail"},
		{ID: "c", Title: "C", Text: "\n\n  \n\n"},
	}
	ps := Passages(docs, 40)
	for _, p := range ps {
		if n := utf8.RuneCountInString(p.Text); n > 40 || n == 0 {
			t.Errorf("passage %s has %d runes", p.ID, n)
		}
		if strings.HasPrefix(p.Text, " ") || strings.HasSuffix(p.Text, " ") {
			t.Errorf("passage %s not trimmed: %q", p.ID, p.Text)
		}
	}
	if ps[0].ID != "a#0" || ps[0].Text != "First paragraph.\n\nSecond one." || ps[1].Text != "Third é paragraph here." {
		t.Fatalf("packing: %+v", ps[:2])
	}
	var joined []string
	for _, p := range ps {
		if p.Metadata["doc"] == "b" {
			joined = append(joined, p.Text)
		}
	}
	if got := strings.Fields(strings.Join(joined, " ")); strings.Join(got, " ") != strings.TrimSpace(long)+" short tail" {
		t.Fatalf("long paragraph lost text: %q", got)
	}
	for _, p := range ps {
		if p.Metadata["doc"] == "c" {
			t.Fatalf("empty document made passage %+v", p)
		}
	}
}
