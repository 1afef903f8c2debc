package corpus

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

func FuzzParseMessage(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "mime", "*.eml"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed messages: %v", err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Subject: x\nContent-Type: multipart/mixed; boundary=a\n\n--a\n--a\n\n--a--"))
	f.Add([]byte("Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: deep\n\nbody"))
	f.Add([]byte("Subject: =?bogus?Q?=FF?=\nContent-Transfer-Encoding: base64\n\n////"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseMessage(raw)
		if err != nil {
			return
		}
		text := m.Text(0)
		for _, s := range []string{text, m.RawHeader, m.Header.JSON()} {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 in %q", s)
			}
		}
		if n := utf8.RuneCountInString(m.Text(50)); n > 50 {
			t.Fatalf("Text(50) has %d runes", n)
		}
		if m2, err := ParseMessage(raw); err != nil || m2 != m {
			t.Fatalf("not deterministic")
		}
	})
}

func FuzzReadTarball(f *testing.F) {
	f.Add(makeTGZ(f, tarEntry{name: "package/a.txt", body: "alpha"}))
	f.Add(makeTGZ(f, tarEntry{name: "../evil", body: "x"}))
	f.Add(makeTGZ(f, tarEntry{name: "package/data/file_list.json", body: `["a.txt"]`}, tarEntry{name: "package/data/a.txt", body: "A"}))
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, tgz []byte) {
		files, err := ReadTarball(bytes.NewReader(tgz))
		if err != nil {
			return
		}
		for name := range files {
			if _, err := entryName(name); err != nil || name != filepath.ToSlash(filepath.Clean(name)) {
				t.Fatalf("accepted unsafe name %q", name)
			}
		}
		// The readers built on the tarball reader must not panic either.
		_, _ = ReadMobyDick(bytes.NewReader(tgz))
		_, _ = ReadSOTU(bytes.NewReader(tgz))
		_, _, _ = ReadSpamAssassin(bytes.NewReader(tgz), 10)
	})
}
