package app_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
)

// dirBytes is what the files under dir hold.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// newLimitServer is an App behind httpapi.NewServer with an import limit,
// a reserve of 1 MiB, and a disk that has free bytes free once the App is
// open: what the data directory gains from then on comes off it, as statfs
// would say of a disk that holds nothing else.
func newLimitServer(t *testing.T, maxUpload, free int64) (*env, string, *atomic.Int64) {
	t.Helper()
	dir := t.TempDir()
	var checks, opened atomic.Int64
	opened.Store(-1)
	space := func(d string) (int64, error) {
		checks.Add(1)
		if _, err := os.Stat(d); err != nil { // as statfs would fail
			return 0, err
		}
		if opened.Load() < 0 {
			return free, nil // Open itself
		}
		return max(0, free-(dirBytes(dir)-opened.Load())), nil // a full disk has 0 free
	}
	a, err := app.Open(app.Options{DataDir: dir, EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"},
		ImportReserveBytes: 1 << 20, FreeSpace: space})
	if err != nil {
		t.Fatal(err)
	}
	opened.Store(dirBytes(dir))
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = httpapi.NewServer(httpapi.Options{Auth: a.Authority(auth.Options{InsecureLocal: true}), Service: a, MaxUpload: maxUpload})
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return &env{t: t, app: a, client: api.NewClient(srv.URL, nil), dataDir: dir}, srv.URL, &checks
}

// records is n bytes (or a little more) of classify JSONL.
func records(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":"r%d","text":"message %d with some words in it, %x","label":"%s"}`+"\n", i, i, i*2654435761, []string{"ham", "spam"}[i%2])
	}
	return b.Bytes()
}

// baseTar is a tar stream of one config.json entry of n bytes.
func baseTar(n int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "config.json", Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg})
	tw.Write(bytes.Repeat([]byte("x"), n))
	tw.Close()
	return buf.Bytes()
}

// unsized hides a body's length, so the client sends it chunked, without
// Content-Length.
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

func post(t *testing.T, url string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/octet-stream", body)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// The import limit (tailor server --max-import-bytes) is a 413 that says
// so, for datasets and bases, with or without Content-Length, and leaves
// nothing behind; an import within it succeeds.
func TestImportLimit(t *testing.T) {
	const limit = 4 << 10
	e, url, _ := newLimitServer(t, limit, 1<<40)
	ds := url + "/v1/datasets/mail/versions?task=classify&filename=mail.jsonl"
	cases := []struct {
		name   string
		url    string
		body   io.Reader
		status int
		msg    string
	}{
		{"dataset with Content-Length", ds, bytes.NewReader(records(3 * limit)), 413, "larger than 4096 bytes, this server's import limit (tailor server --max-import-bytes)"},
		{"dataset chunked", ds, unsized{bytes.NewReader(records(3 * limit))}, 413, "larger than 4096 bytes, this server's import limit"},
		{"base with Content-Length", url + "/v1/bases/tiny/versions", bytes.NewReader(baseTar(3 * limit)), 413, "larger than 4096 bytes, this server's import limit"},
		{"base chunked", url + "/v1/bases/tiny/versions", unsized{bytes.NewReader(baseTar(3 * limit))}, 413, "larger than 4096 bytes, this server's import limit"},
		{"dataset within the limit", ds, bytes.NewReader(records(limit / 2)), 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.trace()
			resp, body := post(t, c.url, c.body)
			if c.status == 200 {
				if resp.StatusCode != 200 {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				return
			}
			wantError(t, resp, body, c.status, c.msg)
			if after := e.trace(); after != before {
				t.Errorf("the refused import left state behind: %+v → %+v", before, after)
			}
		})
	}
}

// Free space: an import of known size that the disk cannot hold twice
// (plus the reserve) is refused with 507 before anything is staged; one
// of unknown size stops while staging once the disk could not take a copy
// of what it staged. Neither leaves anything behind; the CLI's exit code
// for it is 7 (internal/cli's TestExitCode).
func TestImportFreeSpace(t *testing.T) {
	const reserve = 1 << 20
	small := records(256 << 10)
	cases := []struct {
		name   string
		spare  int64 // free bytes above the reserve when the import starts
		body   func() io.Reader
		path   string
		status int
		msg    string
	}{
		{"dataset twice its size is not free", 2*int64(len(small)) - 1, func() io.Reader { return bytes.NewReader(small) }, "/v1/datasets/mail/versions?task=classify&filename=m.jsonl", 507,
			fmt.Sprintf("import dataset \"mail\": %d bytes need %d free under", len(small), 2*len(small))},
		{"base twice its size is not free", 2*int64(len(baseTar(300<<10))) - 1, func() io.Reader { return bytes.NewReader(baseTar(300 << 10)) }, "/v1/bases/tiny/versions", 507,
			"import base model \"tiny\": "},
		{"unknown size, disk fills while staging", 6 << 20, func() io.Reader { return unsized{bytes.NewReader(records(12 << 20))} }, "/v1/datasets/big/versions?task=classify&filename=b.jsonl", 507,
			"import dataset \"big\": stopped after staging"},
		{"unknown size, nothing to spare", -1, func() io.Reader { return unsized{bytes.NewReader(small)} }, "/v1/datasets/mail/versions?task=classify&filename=m.jsonl", 507,
			"less than the 1048576 kept in reserve"},
		{"dataset fits", 2*int64(len(small)) + 64<<10, func() io.Reader { return bytes.NewReader(small) }, "/v1/datasets/mail/versions?task=classify&filename=m.jsonl", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, url, checks := newLimitServer(t, 1<<30, reserve+c.spare)
			before := e.trace()
			resp, body := post(t, url+c.path, c.body())
			if c.status == 200 {
				if resp.StatusCode != 200 {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				return
			}
			wantError(t, resp, body, c.status, c.msg)
			var eb api.ErrorBody
			if json.Unmarshal(body, &eb); eb.Error.Kind != "insufficient_storage" || !strings.Contains(eb.Error.Message, "free space on that disk") {
				t.Fatalf("error %+v, want kind insufficient_storage saying what to do", eb.Error)
			}
			if checks.Load() == 0 {
				t.Fatal("the free space was never checked")
			}
			if after := e.trace(); after != before {
				t.Errorf("the refused import left state behind: %+v → %+v", before, after)
			}
		})
	}
}
