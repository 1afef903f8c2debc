package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tailor-ml/tailor/api"
)

// hostileNames are file names a server must not be able to make the CLI
// write: outside the folder, into a sub-folder, hidden, or not a name.
var hostileNames = []struct{ name, want string }{
	{"../x", `entry "../x": only plain file names`},
	{"/etc/passwd", `entry "/etc/passwd": only plain file names`},
	{"a/b", `entry "a/b": only plain file names`},
	{`..\x`, `only plain file names`},
	{".hidden", `entry ".hidden": names starting with "."`},
	{"..", `entry "..": names starting with "."`},
	{"a\x00b", `name contains a NUL byte`},
	{"", `entry with an empty name`},
}

// exportDir is a folder for an export, inside a root whose other entries
// the test watches, holding one file already.
func exportDir(t *testing.T) (root, out string) {
	root = t.TempDir()
	out = filepath.Join(root, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, out
}

// untouched fails t unless root holds only out, and out only keep.txt as
// it was: nothing written, half-written or left over.
func untouched(t *testing.T, root, out string) {
	t.Helper()
	if ents, _ := os.ReadDir(root); len(ents) != 1 || ents[0].Name() != "out" {
		t.Fatalf("the export wrote beside its folder: %v", ents)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 1 || ents[0].Name() != "keep.txt" {
		names := []string{}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("the failed export left %v in its folder", names)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "keep.txt")); string(b) != "mine" {
		t.Fatalf("keep.txt changed: %q", b)
	}
}

func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Main(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// baseServer serves one base version "evil" listing files, and each
// file's bytes (body may differ from what the listing says); cut makes a
// file's transfer break halfway. It counts file downloads.
func baseServer(t *testing.T, files []api.BaseFile, body map[string][]byte, cut string) (*httptest.Server, *atomic.Int64) {
	var downloads atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/bases/{name}/versions/{ref}", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.BaseVersion{ID: strings.Repeat("ab", 32), Name: "evil", Version: 1, Files: files})
	})
	mux.HandleFunc("GET /v1/bases/{name}/versions/{ref}/files/{file}", func(w http.ResponseWriter, r *http.Request) {
		downloads.Add(1)
		b := body[r.PathValue("file")]
		if r.PathValue("file") == cut {
			w.Write(b[:len(b)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Write(b)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &downloads
}

// TestBaseExportRefusesWhatTheServerSends: `tailor base export` writes a
// file only under a plain name in its folder, only with the size and
// digest the version lists, and only when every file arrived; otherwise
// it writes nothing at all, and names what it refused.
func TestBaseExportRefusesWhatTheServerSends(t *testing.T) {
	good := []byte(`{"architectures": ["LlamaForCausalLM"]}`)
	type tc struct {
		name      string
		files     []api.BaseFile
		body      map[string][]byte
		cut       string
		code      int
		want      string
		downloads bool
	}
	var cases []tc
	for _, h := range hostileNames {
		cases = append(cases, tc{name: "name " + h.name, files: []api.BaseFile{{Name: "config.json", Digest: digestOf(good), Size: int64(len(good))},
			{Name: h.name, Digest: digestOf(good), Size: int64(len(good))}}, body: map[string][]byte{"config.json": good}, code: ExitInvalid, want: h.want})
	}
	cases = append(cases,
		tc{name: "twice", files: []api.BaseFile{{Name: "config.json", Digest: digestOf(good), Size: int64(len(good))}, {Name: "config.json", Digest: digestOf(good), Size: int64(len(good))}},
			body: map[string][]byte{"config.json": good}, code: ExitInvalid, want: `sent file "config.json" twice`},
		tc{name: "wrong digest", files: []api.BaseFile{{Name: "config.json", Digest: digestOf(good), Size: int64(len(good))}, {Name: "tokenizer.json", Digest: digestOf([]byte("other")), Size: 2}},
			body: map[string][]byte{"config.json": good, "tokenizer.json": []byte("{}")}, code: ExitInvalid, want: "the server announced sha256:", downloads: true},
		tc{name: "short", files: []api.BaseFile{{Name: "config.json", Digest: digestOf(good), Size: int64(len(good)) + 10}},
			body: map[string][]byte{"config.json": good}, code: ExitInvalid, want: "the server announced", downloads: true},
		tc{name: "cut transfer", files: []api.BaseFile{{Name: "config.json", Digest: digestOf(good), Size: int64(len(good))}, {Name: "model.safetensors", Digest: digestOf(bytes.Repeat(good, 100)), Size: int64(100 * len(good))}},
			body: map[string][]byte{"config.json": good, "model.safetensors": bytes.Repeat(good, 100)}, cut: "model.safetensors", code: ExitUnavailable, want: "the transfer broke", downloads: true},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, downloads := baseServer(t, c.files, c.body, c.cut)
			root, out := exportDir(t)
			code, _, stderr := runCLI("base", "export", "evil", "--out", out, "--server", srv.URL)
			if code != c.code || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "nothing was written") && c.code == ExitInvalid {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, c.code, c.want)
			}
			if !c.downloads && downloads.Load() != 0 {
				t.Fatalf("%d files downloaded before the names were checked", downloads.Load())
			}
			untouched(t, root, out)
		})
	}
	t.Run("ok", func(t *testing.T) {
		tok := []byte(`{"model": {}}`)
		srv, _ := baseServer(t, []api.BaseFile{{Name: "config.json", Digest: digestOf(good), Size: int64(len(good))}, {Name: "keep.txt", Digest: digestOf(tok), Size: int64(len(tok))}},
			map[string][]byte{"config.json": good, "keep.txt": tok}, "")
		_, out := exportDir(t)
		if code, _, stderr := runCLI("base", "export", "evil", "--out", out, "--server", srv.URL); code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		want := map[string][]byte{"config.json": good, "keep.txt": tok} // keep.txt replaced
		ents, _ := os.ReadDir(out)
		if len(ents) != len(want) {
			t.Fatalf("%d files, want %d", len(ents), len(want))
		}
		for name, b := range want {
			got, err := os.ReadFile(filepath.Join(out, name))
			st, _ := os.Stat(filepath.Join(out, name))
			if err != nil || !bytes.Equal(got, b) || st.Mode().Perm() != 0o644 {
				t.Fatalf("%s: %q %v %v", name, got, st.Mode(), err)
			}
		}
	})
}

type tarEntry struct {
	name string
	typ  byte
	body string
}

// exportTar is a tar stream of entries; without trailer it ends after the
// last entry's data, without the end-of-archive marker.
func exportTar(t *testing.T, entries []tarEntry, trailer bool) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: e.typ}
		if e.typ == tar.TypeSymlink {
			h.Size, h.Linkname = 0, "/etc/passwd"
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	b := buf.Bytes()
	if !trailer {
		b = b[:len(b)-1024]
	}
	return b
}

// TestModelExportRefusesWhatTheServerSends: `tailor model export` writes
// an export's files only under plain names, only regular files, and only
// when the whole stream arrived with its end-of-archive marker; otherwise
// nothing.
func TestModelExportRefusesWhatTheServerSends(t *testing.T) {
	conf := tarEntry{"config.json", tar.TypeReg, `{"architectures": ["LlamaForCausalLM"]}`}
	type tc struct {
		name   string
		stream []byte
		cutAt  int // >0: the connection breaks after this many bytes
		code   int
		want   string
	}
	var cases []tc
	for _, h := range hostileNames {
		if strings.ContainsRune(h.name, 0) {
			continue // a tar header cannot hold a NUL: archive/tar ends the name there
		}
		cases = append(cases, tc{name: "name " + h.name, stream: exportTar(t, []tarEntry{conf, {h.name, tar.TypeReg, "x"}}, true), code: ExitInvalid, want: h.want})
	}
	full := exportTar(t, []tarEntry{conf, {"model.safetensors", tar.TypeReg, strings.Repeat("w", 5000)}}, true)
	cases = append(cases,
		tc{name: "symlink", stream: exportTar(t, []tarEntry{conf, {"model.safetensors", tar.TypeSymlink, ""}}, true), code: ExitInvalid, want: `entry "model.safetensors" is not a regular file`},
		tc{name: "no end-of-archive marker", stream: exportTar(t, []tarEntry{conf}, false), code: ExitUnavailable, want: "without its end-of-archive marker"},
		tc{name: "half a marker", stream: full[:len(full)-512], code: ExitUnavailable, want: "without its end-of-archive marker"},
		tc{name: "cut inside a file", stream: full, cutAt: 3000, code: ExitUnavailable, want: "broke"},
		tc{name: "ends inside a file", stream: full[:3000], code: ExitUnavailable, want: "broke"},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-tar")
				if c.cutAt > 0 {
					w.Write(c.stream[:c.cutAt])
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler)
				}
				w.Write(c.stream)
			}))
			defer srv.Close()
			root, out := exportDir(t)
			code, _, stderr := runCLI("model", "export", "evil@v1", "--format", "merged", "--out", out, "--server", srv.URL)
			if code != c.code || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "nothing was written") {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, c.code, c.want)
			}
			untouched(t, root, out)
		})
	}
	t.Run("ok", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(full) }))
		defer srv.Close()
		_, out := exportDir(t)
		code, stdout, stderr := runCLI("model", "export", "evil@v1", "--format", "merged", "--out", out, "--server", srv.URL)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if got := strings.Fields(stdout); !slices.Equal(got, []string{filepath.Join(out, "config.json"), filepath.Join(out, "model.safetensors")}) {
			t.Fatalf("stdout %q", stdout)
		}
		if b, _ := os.ReadFile(filepath.Join(out, "model.safetensors")); string(b) != strings.Repeat("w", 5000) {
			t.Fatalf("model.safetensors: %d bytes", len(b))
		}
		if ents, _ := os.ReadDir(out); len(ents) != 3 {
			t.Fatalf("%d entries, want config.json, model.safetensors and keep.txt", len(ents))
		}
	})
}

// Through the real server: a base export writes exactly the files its
// version lists, with their digests; a model export writes its files.
func TestExportsFromTheRealServer(t *testing.T) {
	w := openDeployWorld(t, newDeployData(t))
	out := t.TempDir()
	w.mustCLI("base", "export", "tiny", "--out", out)
	v, err := w.client.Base(context.Background(), "tiny", "latest")
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != len(v.Files) || len(v.Files) == 0 {
		t.Fatalf("%d files written, the version lists %d", len(ents), len(v.Files))
	}
	for _, f := range v.Files {
		b, err := os.ReadFile(filepath.Join(out, f.Name))
		if err != nil || digestOf(b) != f.Digest {
			t.Fatalf("%s: %v, digest %s want %s", f.Name, err, digestOf(b), f.Digest)
		}
	}
	peft := t.TempDir()
	stdout := w.mustCLI("model", "export", "spam@v1", "--format", "peft", "--out", peft)
	for _, name := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		if st, err := os.Stat(filepath.Join(peft, name)); err != nil || st.Size() == 0 || !strings.Contains(stdout, name) {
			t.Fatalf("%s: %v (stdout %q)", name, err, stdout)
		}
	}
	if ents, _ := os.ReadDir(peft); len(ents) != 2 {
		t.Fatalf("%d entries in the peft folder, want 2", len(ents))
	}
}
