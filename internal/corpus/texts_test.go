package corpus

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestReadSOTU(t *testing.T) {
	tgz := makeTGZ(t,
		tarEntry{name: "package/data/1791_george_washington_n.json", body: `{"year":1791,"name":"George Washington","party":"none","text":"Second.\r\n"}`},
		tarEntry{name: "package/data/1790_george_washington_n.json", body: `{"year":1790,"name":"George Washington","party":"none","text":"  First address.  "}`},
		tarEntry{name: "package/data/1790_george_washington_n.txt", body: "ignored"},
		tarEntry{name: "package/lib/party.json", body: `{"n":"none"}`},
	)
	docs, err := ReadSOTU(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	want := []Document{
		{ID: "sotu/1790_george_washington_n", Title: "State of the Union Address, 1790, George Washington", Text: "First address."},
		{ID: "sotu/1791_george_washington_n", Title: "State of the Union Address, 1791, George Washington", Text: "Second."},
	}
	if len(docs) != len(want) || docs[0] != want[0] || docs[1] != want[1] {
		t.Errorf("docs = %+v", docs)
	}
}

func TestReadSOTUErrors(t *testing.T) {
	tests := []struct {
		name, entry, body, want string
	}{
		{"bad json", "package/data/1790_a_n.json", `{"year":`, `"package/data/1790_a_n.json"`},
		{"no name", "package/data/1790_a_n.json", `{"year":1790,"text":"x"}`, `field "year" or "name" missing`},
		{"empty text", "package/data/1790_a_n.json", `{"year":1790,"name":"A","text":"  "}`, "empty text"},
		{"none", "package/data/readme.json", `{}`, "no addresses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSOTU(bytes.NewReader(makeTGZ(t, tarEntry{name: tc.entry, body: tc.body})))
			if errs.Kind(err) != "invalid" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestReadMobyDick(t *testing.T) {
	tgz := makeTGZ(t,
		tarEntry{name: "package/data/chapter_1.txt", body: "CHAPTER 1. Loomings.\r\n\r\nCall me Ishmael.\n"},
		tarEntry{name: "package/data/etymology.txt", body: "ETYMOLOGY.\n\nWhale."},
		tarEntry{name: "package/data/file_list.json", body: `["etymology.txt","chapter_1.txt"]`},
	)
	docs, err := ReadMobyDick(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	want := []Document{
		{ID: "moby-dick/etymology", Title: "Moby Dick; or The Whale: ETYMOLOGY.", Text: "ETYMOLOGY.\n\nWhale."},
		{ID: "moby-dick/chapter_1", Title: "Moby Dick; or The Whale: CHAPTER 1. Loomings.", Text: "CHAPTER 1. Loomings.\n\nCall me Ishmael."},
	}
	if len(docs) != 2 || docs[0] != want[0] || docs[1] != want[1] {
		t.Errorf("docs = %+v", docs)
	}
}

func TestReadMobyDickErrors(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"no list", []tarEntry{{name: "package/data/a.txt", body: "a"}}, "file_list.json\" missing"},
		{"missing file", []tarEntry{{name: "package/data/file_list.json", body: `["a.txt"]`}}, `names "a.txt"`},
		{"traversal", []tarEntry{{name: "package/data/file_list.json", body: `["../../../etc/passwd"]`}}, "path traversal"},
		{"not utf8", []tarEntry{{name: "package/data/file_list.json", body: `["a.txt"]`}, {name: "package/data/a.txt", body: "caf\xe9"}}, "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadMobyDick(bytes.NewReader(makeTGZ(t, tc.entries...)))
			if errs.Kind(err) != "invalid" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestContentHash(t *testing.T) {
	a := []Document{{ID: "1", Title: "t", Text: "ab"}, {ID: "2", Title: "t", Text: "c"}}
	tests := []struct {
		name string
		docs []Document
	}{
		{"reordered", []Document{a[1], a[0]}},
		{"boundary moved", []Document{{ID: "1", Title: "t", Text: "a"}, {ID: "2", Title: "t", Text: "bc"}}},
		{"field boundary moved", []Document{{ID: "1t", Title: "", Text: "ab"}, a[1]}},
		{"one byte", []Document{{ID: "1", Title: "t", Text: "ab"}, {ID: "2", Title: "t", Text: "d"}}},
		{"prefix", a[:1]},
	}
	base := ContentHash(a)
	if base != ContentHash([]Document{a[0], a[1]}) || !strings.HasPrefix(base, "sha256:") || len(base) != 7+64 {
		t.Fatalf("ContentHash(a) = %s is not stable", base)
	}
	// Pinned value, computed independently with Python's hashlib and
	// struct.pack(">Q", len) per field: changing the layout breaks lineage.
	if want := "sha256:81c67a9e54f79f4666fdae1408bdf07a4748c4be2406dcfe2c2596508e6e3df0"; base != want {
		t.Errorf("ContentHash(a) = %s, want %s", base, want)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if ContentHash(tc.docs) == base {
				t.Errorf("same hash as the original")
			}
		})
	}
}
