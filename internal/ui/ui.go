// Package ui serves Tailor's dashboard: a single-page application of plain
// ES modules and hand-written CSS, with its vendored libraries (uPlot,
// dagre; vendor.lock pins them), embedded in the binary. `tailor server`
// mounts it at / (the page) and /ui/ (its files) beside the JSON API under
// /v1/, which is all the page reads: the dashboard has no server-side
// logic of its own. Nothing is fetched from outside the server, so it
// works offline, and nothing is built at run time.
//
// This package imports only the standard library; it must not import the
// application, the API types or the router (httpapi takes it as a plain
// http.Handler).
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is the path under which the page's files are served; the page
// itself is served at "/".
const Prefix = "/ui/"

// contentSecurityPolicy allows the page nothing from outside this server:
// no inline script or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// file is one embedded file, read once.
type file struct {
	name  string
	body  []byte
	etag  string
	ctype string
}

// Handler serves the dashboard: GET / is the page, GET /ui/… its files.
// Every answer carries a content security policy that keeps the page on
// this server; files are revalidated by ETag (their content hash), so a
// new binary's files are never served stale.
func Handler() http.Handler {
	files := map[string]*file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case "", ".txt":
			ctype = "text/plain; charset=utf-8"
		}
		rel := strings.TrimPrefix(p, "static/")
		files[rel] = &file{name: rel, body: b, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, ctype: ctype}
		return nil
	})
	if err != nil {
		panic("ui: read embedded files: " + err.Error()) // the embed is part of the binary
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := "index.html"
		if r.URL.Path != "/" {
			rel, ok := strings.CutPrefix(r.URL.Path, Prefix)
			if !ok || rel == "index.html" {
				http.NotFound(w, r)
				return
			}
			name = rel
		}
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", f.ctype)
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
	})
}
