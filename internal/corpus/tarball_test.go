package corpus

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func TestReadTarball(t *testing.T) {
	tgz := makeTGZ(t,
		tarEntry{name: "package/", typeflag: tar.TypeDir},
		tarEntry{name: "package/data/a.txt", body: "alpha"},
		tarEntry{name: "./package/data//b.txt", body: "beta"},
	)
	files, err := ReadTarball(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || string(files["package/data/a.txt"]) != "alpha" || string(files["package/data/b.txt"]) != "beta" {
		t.Errorf("files = %v", files)
	}
}

func TestTarballRejects(t *testing.T) {
	tests := []struct {
		name  string
		entry tarEntry
		want  string // in the error
	}{
		{"parent", tarEntry{name: "../evil.txt", body: "x"}, `"../evil.txt": path traversal`},
		{"nested parent", tarEntry{name: "package/../../evil.txt", body: "x"}, `"package/../../evil.txt": path traversal`},
		{"absolute", tarEntry{name: "/etc/passwd", body: "x"}, `"/etc/passwd": absolute path`},
		{"backslash", tarEntry{name: `package\..\..\evil`, body: "x"}, "path traversal"},
		{"drive", tarEntry{name: `C:/evil`, body: "x"}, "absolute path"},
		{"symlink", tarEntry{name: "package/link", typeflag: tar.TypeSymlink, link: "/etc/passwd"}, `"package/link": unsupported type`},
		{"hardlink", tarEntry{name: "package/hard", typeflag: tar.TypeLink, link: "../../x"}, `"package/hard": unsupported type`},
		{"only dot", tarEntry{name: ".", body: ""}, "empty path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tgz := makeTGZ(t, tarEntry{name: "package/ok.txt", body: "ok"}, tc.entry)
			_, err := ReadTarball(bytes.NewReader(tgz))
			if err == nil || !strings.Contains(err.Error(), tc.want) || errs.Kind(err) != "invalid" {
				t.Fatalf("ReadTarball err = %v, want an invalid-kind error containing %q", err, tc.want)
			}
			// Extracting writes nothing outside the target directory.
			root := t.TempDir()
			dir := filepath.Join(root, "out")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := ExtractTarball(bytes.NewReader(tgz), dir); err == nil {
				t.Fatal("ExtractTarball accepted the archive")
			}
			entries, _ := os.ReadDir(root)
			if len(entries) != 1 {
				t.Errorf("files appeared next to the target: %v", entries)
			}
			if _, err := os.Stat("/etc/passwd.txt"); err == nil {
				t.Errorf("unexpected file outside the target")
			}
		})
	}
}

func TestExtractTarball(t *testing.T) {
	tgz := makeTGZ(t,
		tarEntry{name: "package/data/a.txt", body: "alpha"},
		tarEntry{name: "package/b.json", body: "{}"},
	)
	dir := t.TempDir()
	if err := ExtractTarball(bytes.NewReader(tgz), dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"package/data/a.txt": "alpha", "package/b.json": "{}"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestTarballNotGzip(t *testing.T) {
	_, err := ReadTarball(strings.NewReader("plain text, not gzip"))
	if errs.Kind(err) != "invalid" || !strings.Contains(err.Error(), "gzip") {
		t.Fatalf("err = %v", err)
	}
}

func TestDuplicateEntry(t *testing.T) {
	tgz := makeTGZ(t, tarEntry{name: "package/a", body: "1"}, tarEntry{name: "package/./a", body: "2"})
	if _, err := ReadTarball(bytes.NewReader(tgz)); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("err = %v", err)
	}
}
