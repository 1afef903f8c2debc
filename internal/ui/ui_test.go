package ui

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	tests := []struct {
		method, path string
		status       int
		ctype        string
		body         string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `<script type="module" src="/ui/js/app.js"></script>`},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/ui/js/app.js", 200, "text/javascript; charset=utf-8", "import"},
		{"GET", "/ui/app.css", 200, "text/css; charset=utf-8", ":root"},
		{"GET", "/ui/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/ui/vendor/uplot/uPlot.esm.js", 200, "text/javascript; charset=utf-8", "export { uPlot as default }"},
		{"GET", "/ui/vendor/dagre/LICENSE", 200, "text/plain; charset=utf-8", "Permission is hereby granted"},
		{"GET", "/ui/index.html", 404, "", ""},
		{"GET", "/ui/nothing.js", 404, "", ""},
		{"GET", "/ui/../ui.go", 404, "", ""},
		{"GET", "/elsewhere", 404, "", ""},
		{"POST", "/", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			if tt.status != 200 {
				return
			}
			if got := rec.Header().Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
			if !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("body lacks %q", tt.body)
			}
		})
	}
}

// TestRevalidation: files carry their content hash as ETag, and a request
// that names it gets 304 without the body.
func TestRevalidation(t *testing.T) {
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/ui/js/app.js", nil))
	etag := rec.Header().Get("ETag")
	if etag == "" || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, rec.Header().Get("Cache-Control"))
	}
	req := httptest.NewRequest("GET", "/ui/js/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Fatalf("revalidation: %d with %d bytes", rec.Code, rec.Body.Len())
	}
}

// TestReferencesResolve checks without a browser what a browser would
// load: every module import and every /ui/ URL in the page names an
// embedded file, and the page's own files name nothing outside the server
// (it must work offline).
func TestReferencesResolve(t *testing.T) {
	importRe := regexp.MustCompile(`(?m)^\s*import\s+(?:[^"']*?\s+from\s+)?["']([^"']+)["']`)
	uiRe := regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"`)
	external := regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	modules := 0
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "static/vendor/") {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		// The SVG namespace is a name, not something fetched.
		if m := external.FindString(strings.ReplaceAll(string(b), "http://www.w3.org/2000/svg", "")); m != "" {
			t.Errorf("%s names %s: the dashboard must not load anything from outside the server", p, m)
		}
		switch path.Ext(p) {
		case ".js":
			for _, m := range importRe.FindAllStringSubmatch(string(b), -1) {
				modules++
				if !strings.HasPrefix(m[1], ".") {
					t.Errorf("%s imports %q: import by relative path", p, m[1])
					continue
				}
				if _, err := fs.Stat(static, path.Join(path.Dir(p), m[1])); err != nil {
					t.Errorf("%s imports %q, which is not embedded", p, m[1])
				}
			}
		case ".html":
			for _, m := range uiRe.FindAllStringSubmatch(string(b), -1) {
				if _, err := fs.Stat(static, "static/"+strings.TrimPrefix(m[1], Prefix)); err != nil {
					t.Errorf("%s refers to %s, which is not embedded", p, m[1])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if modules < 20 {
		t.Fatalf("found %d imports; the scan is broken", modules)
	}
}

// lockFile is one "file" line of vendor.lock.
type lockFile struct {
	pkg, src, dest, sha256 string
}

// readLock parses vendor.lock: "package NAME VERSION LICENSE INTEGRITY"
// and "file NAME PATH DEST SHA256" lines, comments and blanks.
func readLock(t *testing.T) (pkgs map[string][]string, files []lockFile) {
	t.Helper()
	f, err := os.Open("vendor.lock")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs = map[string][]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch {
		case fields[0] == "package" && len(fields) == 5:
			if !strings.HasPrefix(fields[4], "sha512-") {
				t.Errorf("vendor.lock:%d: integrity %q is not sha512", n, fields[4])
			}
			pkgs[fields[1]] = fields[2:]
		case fields[0] == "file" && len(fields) == 5:
			if _, ok := pkgs[fields[1]]; !ok {
				t.Errorf("vendor.lock:%d: file of %s before its package line", n, fields[1])
			}
			files = append(files, lockFile{pkg: fields[1], src: fields[2], dest: fields[3], sha256: fields[4]})
		default:
			t.Errorf("vendor.lock:%d: unreadable line %q", n, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return pkgs, files
}

// TestVendoredFiles re-hashes the committed vendored files against
// vendor.lock (which scripts/vendor-web.sh wrote from the npm tarballs it
// checked), and checks that nothing else is in static/vendor and that
// every package ships its licence.
func TestVendoredFiles(t *testing.T) {
	pkgs, files := readLock(t)
	if len(pkgs) == 0 || len(files) == 0 {
		t.Fatal("vendor.lock pins nothing")
	}
	listed := map[string]bool{}
	licensed := map[string]bool{}
	for _, f := range files {
		listed[f.dest] = true
		if path.Base(f.dest) == "LICENSE" {
			licensed[f.pkg] = true
		}
		b, err := os.ReadFile("static/vendor/" + f.dest)
		if err != nil {
			t.Errorf("%s (%s %s): %v; run scripts/vendor-web.sh", f.dest, f.pkg, f.src, err)
			continue
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != f.sha256 {
			t.Errorf("static/vendor/%s hashes to %s, vendor.lock says %s: the vendored copy was changed; run scripts/vendor-web.sh", f.dest, got, f.sha256)
		}
	}
	for name := range pkgs {
		if !licensed[name] {
			t.Errorf("vendor.lock: %s vendors no LICENSE", name)
		}
	}
	err := fs.WalkDir(static, "static/vendor", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if rel := strings.TrimPrefix(p, "static/vendor/"); !listed[rel] {
			t.Errorf("%s is vendored but not in vendor.lock", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(pkgs))
	for n, p := range pkgs {
		names = append(names, n+"@"+p[0]+" ("+p[1]+")")
	}
	slices.Sort(names)
	t.Logf("vendored: %s", strings.Join(names, ", "))
}
