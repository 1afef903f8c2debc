package data

import (
	"context"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/blob/local"
)

func TestTextTask(t *testing.T) {
	ctx := context.Background()
	sink, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := Import(ctx, strings.NewReader("{\"id\":\"doc1\",\"text\":\"Call me Ishmael.\"}\n{\"text\":\"Some years ago\"}\n"),
		ImportOptions{Name: "books", Task: TaskText, FileName: "books.jsonl"}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if m.Records != 2 || m.Profile.Length.Mean == 0 || len(m.Profile.Labels) != 0 {
		t.Fatalf("manifest %+v", m)
	}
	var got []string
	if err := ReadRecords(ctx, sink, m, "", func(r Record) error { got = append(got, r.Text); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "Call me Ishmael." {
		t.Fatalf("records %q", got)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"a.jsonl", "{\"id\":\"x\"}\n", `a.jsonl:1: field "text": missing`},
		{"a.csv", "id,text\n1,\n", `a.csv:2`},
	} {
		_, err := Import(ctx, strings.NewReader(tc.body), ImportOptions{Name: "books", Task: TaskText, FileName: tc.name}, sink)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}
