package corpus

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tailor-ml/tailor/internal/errs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/mime")

func TestParseMessageFixtures(t *testing.T) {
	tests := []struct {
		file    string
		header  Header
		want    []string // substrings of Text(0)
		notWant []string
	}{
		{
			file:    "multipart_alternative.eml",
			header:  Header{From: "Ross A <rossa@example.org>", Subject: "Re: meeting notes", Date: "Thu, 22 Aug 2002 07:36:16 -0400"},
			want:    []string{"The plain part wins.\nSee you at 10."},
			notWant: []string{"HTML", "multi-part message", "epilogue", "NextPart"},
		},
		{
			file:    "quoted_printable.eml",
			header:  Header{From: "René Dupont <rene@example.fr>", Subject: "Café au lait", Date: "Mon, 2 Sep 2002 10:00:00 +0200"},
			want:    []string{"le café est prêt", "soft line break right here", "A literal = sign", "=ZZ stays"},
			notWant: []string{"=E9", "soft=", "=3D"},
		},
		{
			file:    "base64.eml",
			header:  Header{From: "sender@example.com", Subject: "Grüße base64 test", Date: "Tue, 3 Sep 2002 11:00:00 +0000"},
			want:    []string{"Hello from base64 — naïve café ✓\nSecond line."},
			notWant: []string{"R0lGOD", "logo.gif", "SGVsbG8"},
		},
		{
			file:   "latin1.eml",
			header: Header{From: "Müller <mueller@example.de>", Subject: "Grüße aus Köln", Date: "Wed, 4 Sep 2002 12:00:00 +0200"},
			want:   []string{"äöü ß “zitiert”."},
		},
		{
			file:    "html_only.eml",
			header:  Header{From: `"Deals" <deals@spam.example>`, Subject: "LOW RATES!!!", Date: "Thu, 5 Sep 2002 13:00:00 -0000"},
			want:    []string{"Act now", "Rates & fees at 3% < 5%\nClick here.", "A B", "Café “quoted” text. 1 < 2 is true."},
			notWant: []string{"<p", "<br", "<td", "<a ", "color: red", "alert", "hidden comment", "DOCTYPE", "&amp;", "href"},
		},
		{
			file:    "forwarded.eml",
			header:  Header{From: "fwd@example.com", Subject: "Fwd: original", Date: "Fri, 6 Sep 2002 14:00:00 +0000"},
			want:    []string{"See the message below.\n\nSubject: original\nFrom: orig@example.com\n\ninner plain text"},
			notWant: []string{"inner html"},
		},
		{
			file:   "crlf_no_boundary.eml",
			header: Header{From: "a@example.com", Subject: "missing boundary folded"},
			want:   []string{"Body text without any boundary parameter."},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "mime", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseMessage(raw)
			if err != nil {
				t.Fatal(err)
			}
			if m.Header != tc.header {
				t.Errorf("header\n got %+v\nwant %+v", m.Header, tc.header)
			}
			text := m.Text(0)
			if !utf8.ValidString(text) {
				t.Errorf("text is not valid UTF-8")
			}
			if !strings.HasPrefix(text, "Subject: "+tc.header.Subject+"\nFrom: "+tc.header.From+"\n\n") {
				t.Errorf("text does not start with the Subject and From lines: %q", text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("text lacks %q:\n%s", w, text)
				}
			}
			body := strings.SplitN(text, "\n\n", 2)[1]
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("body holds %q:\n%s", w, body)
				}
			}
			checkGolden(t, strings.TrimSuffix(tc.file, ".eml")+".golden", m.Header.JSON()+"\n"+text+"\n")
		})
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "mime", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n got %q\nwant %q", name, got, want)
	}
}

func TestParseMessageErrors(t *testing.T) {
	tests := []struct {
		name string
		raw  string
	}{
		{"empty", ""},
		{"blank", " \n\r\n"},
		{"no header", "\nbody only\n"},
		{"mbox line only", "From someone Thu Aug 22 2002\n"},
		{"not a header", "just some words\n\nbody"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMessage([]byte(tc.raw))
			if errs.Kind(err) != "invalid" {
				t.Fatalf("err = %v, want an invalid-kind error", err)
			}
		})
	}
}

func TestMessageTextTruncates(t *testing.T) {
	m := Message{Header: Header{Subject: "s", From: "f"}, Body: strings.Repeat("é", 50)}
	tests := []struct {
		max, want int
	}{{0, 70}, {10, 10}, {13, 13}, {100, 70}}
	for _, tc := range tests {
		got := m.Text(tc.max)
		if n := utf8.RuneCountInString(got); n != tc.want || !utf8.ValidString(got) {
			t.Errorf("Text(%d): %d runes, want %d", tc.max, n, tc.want)
		}
	}
}

func TestHeaderJSON(t *testing.T) {
	h := Header{Date: "d", From: `"A <b>" <a@x>`, Subject: "x & y"}
	want := `{"date":"d","from":"\"A <b>\" <a@x>","subject":"x & y"}`
	if got := h.JSON(); got != want {
		t.Errorf("JSON() = %s, want %s", got, want)
	}
}

func TestToUTF8(t *testing.T) {
	tests := []struct {
		name, in, charset, want string
	}{
		{"utf8 declared", "caf\u00e9", "utf-8", "café"},
		{"utf8 undeclared", "caf\u00e9", "", "café"},
		{"latin1 undeclared", "caf\xe9", "", "café"},
		{"latin1 declared", "caf\xe9", "ISO-8859-1", "café"},
		{"bad utf8 declared", "caf\xe9", "utf-8", "café"},
		{"cp1252 quotes", "\x93hi\x94", "windows-1252", "“hi”"},
		{"koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "koi8-r", "Привет"},
		{"unknown charset", "caf\xe9", "x-no-such", "café"},
		{"quoted charset", "caf\xe9", `"iso-8859-1"`, "café"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := toUTF8([]byte(tc.in), tc.charset); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecodeTransfer(t *testing.T) {
	tests := []struct {
		name, in, enc, want string
	}{
		{"qp soft break", "ab=\r\ncd=  \nef", "quoted-printable", "abcdef"},
		{"qp hex", "=C3=A9=3d", "Quoted-Printable", "é="},
		{"qp bad escape", "a=G1b=", "quoted-printable", "a=G1b"},
		{"b64 wrapped", "aGVs\nbG8=\n", "base64", "hello"},
		{"b64 junk", "aGV*sbG8", "BASE64", "hello"},
		{"b64 unpadded", "aGk", "base64", "hi"},
		{"7bit", "as is=41", "7bit", "as is=41"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(decodeTransfer([]byte(tc.in), tc.enc)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHTMLToText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"tags", "<b>bold</b> and <i>it</i>", "bold and it"},
		{"blocks", "a<br>b<p>c</p>d", "a\nb\nc\nd"},
		{"script", "x<script type='a'>var s = '<b>';</script>y", "xy"},
		{"style upper", "x<STYLE>p{}</STYLE>y", "xy"},
		{"comment", "x<!-- <b>no</b> -->y", "xy"},
		{"entities", "&lt;tag&gt; &amp; &#233; &eacute;", "<tag> & é é"},
		{"bare lt", "1 < 2 and 3<4", "1 < 2 and 3<4"},
		{"unterminated", "a<b", "a"},
		{"non-ascii around tags", "İ<b>ş</b>İ", "İşİ"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := htmlToText(tc.in); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
