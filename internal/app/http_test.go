package app_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
)

// edgeServer is an App behind the server every Tailor process listens with
// (httpapi.NewServer), with a short body timeout and one upload slot, so the
// edge cases of issue 14 can be driven over a raw connection.
type edgeServer struct {
	*env
	addr string
}

func newEdgeServer(t *testing.T) *edgeServer {
	t.Helper()
	dir := t.TempDir()
	a, err := app.Open(app.Options{DataDir: dir, EngineVersion: "test-engine", WorkerCommand: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = httpapi.NewServer(httpapi.Options{Auth: a.Authority(auth.Options{InsecureLocal: true}), Service: a, Inference: a.Inference(), MaxUploads: 1, UploadWait: 50 * time.Millisecond, BodyIdleTimeout: 500 * time.Millisecond})
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return &edgeServer{env: &env{t: t, app: a, client: api.NewClient(srv.URL, nil), dataDir: dir}, addr: srv.Listener.Addr().String()}
}

// rawRequest sends head (request line and headers, without the blank line)
// and body over a new connection; with closeWrite the client then ends
// its side, otherwise it keeps the connection open and silent. It returns
// the response, read whole.
func (s *edgeServer) rawRequest(head string, body []byte, closeWrite bool) (*http.Response, []byte) {
	s.t.Helper()
	conn, err := net.Dial("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s\r\nHost: %s\r\nConnection: close\r\n\r\n", head, s.addr)
	conn.Write(body)
	if closeWrite {
		conn.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

func (s *edgeServer) do(method, path, body string) (*http.Response, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// wantError checks an API error answer: its status and a part of its message.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, msg string) {
	t.Helper()
	var e api.ErrorBody
	if resp.StatusCode != status || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error.Message, msg) {
		t.Fatalf("got %d %s; want %d with a message containing %q", resp.StatusCode, body, status, msg)
	}
}

const oneRecord = `{"id":"a","text":"hello","label":"ham"}` + "\n"

func TestHTTPBodyShorterThanContentLength(t *testing.T) {
	s := newEdgeServer(t)
	before := s.trace()
	resp, body := s.rawRequest("POST /v1/datasets/short/versions?task=classify&filename=s.jsonl HTTP/1.1\r\nContent-Length: 1000", []byte(oneRecord), true)
	wantError(t, resp, body, http.StatusBadRequest, fmt.Sprintf("request body ended after %d of its 1000 bytes (Content-Length)", len(oneRecord)))
	if after := s.trace(); after != before {
		t.Errorf("the failed import left state behind: %+v → %+v", before, after)
	}
}

func TestHTTPTruncatedBaseTar(t *testing.T) {
	s := newEdgeServer(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	content := bytes.Repeat([]byte("x"), 4000)
	tw.WriteHeader(&tar.Header{Name: "config.json", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write(content)
	tw.Close()
	cut := buf.Bytes()[:512+1000] // the header and a quarter of the file
	before := s.trace()
	resp, body := s.do("POST", "/v1/bases/cut/versions", string(cut))
	wantError(t, resp, body, http.StatusBadRequest, `tar stream: entry "config.json" (4000 bytes): the stream ends inside it (truncated tar?)`)
	if after := s.trace(); after != before {
		t.Errorf("the failed import left state behind: %+v → %+v", before, after)
	}
}

func TestHTTPStalledBodyTimesOut(t *testing.T) {
	s := newEdgeServer(t)
	// The client sends part of the body and then nothing, keeping the
	// connection open: the server cuts it after BodyIdleTimeout with 408.
	resp, body := s.rawRequest("POST /v1/datasets/stall/versions?task=classify&filename=s.jsonl HTTP/1.1\r\nContent-Length: 1000", []byte(oneRecord), false)
	wantError(t, resp, body, http.StatusRequestTimeout, fmt.Sprintf("request body stalled: no bytes for 500ms after %d bytes", len(oneRecord)))
	if _, err := s.client.Dataset(context.Background(), "stall", "latest"); err == nil {
		t.Error("the stalled import recorded a version")
	}
}

func TestHTTPConcurrentUploadLimit(t *testing.T) {
	s := newEdgeServer(t)
	// One upload holds the only slot: its body trickles in a byte at a
	// time, well inside the idle timeout.
	pr, pw := io.Pipe()
	first := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+s.addr+"/v1/datasets/slow/versions?task=classify&filename=s.jsonl", pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- nil
			return
		}
		resp.Body.Close()
		first <- resp
	}()
	pw.Write([]byte(oneRecord[:5]))
	// The second upload is refused while the first holds the slot; the
	// 503 says when to retry. (Polled: the first must have reached the
	// handler before the second can be refused.)
	var resp *http.Response
	var body []byte
	for range 200 {
		resp, body = s.do("POST", "/v1/datasets/other/versions?task=classify&filename=o.jsonl", oneRecord)
		if resp.StatusCode != http.StatusOK {
			break
		}
		// The first had not taken the slot yet; that import succeeded.
		pw.Write([]byte(" "))
		time.Sleep(10 * time.Millisecond)
	}
	wantError(t, resp, body, http.StatusServiceUnavailable, "1 uploads are in progress, the most this server takes at once, and none ended within 50ms")
	if resp.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
	}
	pw.Write([]byte(oneRecord[5:]))
	pw.Close()
	if r := <-first; r == nil || r.StatusCode != http.StatusOK {
		t.Fatalf("the first upload: %v", r)
	}
	// The slot is free again.
	if resp, body := s.do("POST", "/v1/datasets/other/versions?task=classify&filename=o.jsonl", oneRecord); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the first upload: %d %s", resp.StatusCode, body)
	}
}

func TestHTTPBadParameters(t *testing.T) {
	s := newEdgeServer(t)
	ctx := context.Background()
	if _, err := s.client.ImportDataset(ctx, strings.NewReader(oneRecord), api.DatasetImportOptions{Name: "d", Task: "classify", FileName: "d.jsonl"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{"GET", "/v1/datasets/d/versions/latest/records?split=bogus", "", 400, `split "bogus": want train, validation or test`},
		{"GET", "/v1/datasets/nope/versions/latest/records?split=test", "", 404, "nope"},
		{"POST", "/v1/datasets/z/versions?task=classify&split=0,0,0", oneRecord, 400, `split "0,0,0": the ratios sum to 0; they must sum to 1`},
		{"POST", "/v1/datasets/z/versions?task=classify&split=0.5,0.5,0.5", oneRecord, 400, "the ratios sum to 1.5"},
		{"POST", "/v1/datasets/z/versions?task=classify&split=NaN,0.5,0.5", oneRecord, 400, `ratio "NaN" is not a number between 0 and 1`},
		{"POST", "/v1/datasets/z/versions?task=classify&append=yes", oneRecord, 400, `query parameter append="yes": want true or false`},
		{"POST", "/v1/datasets/z/versions?task=classify&skip_existing=true", oneRecord, 400, "skip existing: only with append"},
		// Names, owners and free text are checked where they enter (the
		// actor fields are ignored: the token's principal acts).
		{"POST", "/v1/datasets/" + strings.Repeat("n", 65) + "/versions?task=classify", oneRecord, 400, "use 1-64 lower-case letters"},
		{"POST", "/v1/datasets/z/versions?task=classify&owner=%1B%5B2Jteam", oneRecord, 400, "owner: character U+001B at byte 0 is a control or formatting character"},
		{"POST", "/v1/datasets/z/versions?task=classify&owner=" + strings.Repeat("o", 129), oneRecord, 400, "owner: 129 characters, more than the 128 allowed"},
		{"POST", "/v1/registry/models/m/promote", `{"version":"v1","alias":"champion","reason":"x\u202e","actor":"eve"}`, 400, "reason: character U+202E"},
		{"POST", "/v1/registry/models/m/rollback", `{"alias":"champion","reason":"x\u0007"}`, 400, "reason: character U+0007"},
		{"POST", "/v1/registry/approvals/1", `{"approve":true,"reason":"` + strings.Repeat("r", 4097) + `"}`, 400, "reason: 4097 characters"},
		{"POST", "/v1/feedback", `{"request_id":"r1","label":"spam\u0007","actor":"bell"}`, 400, "label: character U+0007"},
		{"GET", "/v1/audit?limit=0", "", 400, `limit="0": want a positive number of entries`},
		{"GET", "/v1/audit?limit=1001", "", 400, "limit=1001: want 1 to 1000"},
		{"GET", "/v1/audit?after=-1", "", 400, `after="-1": want a non-negative sequence number`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			before := s.trace()
			resp, body := s.do(tt.method, tt.path, tt.body)
			wantError(t, resp, body, tt.status, tt.msg)
			if after := s.trace(); after != before {
				t.Errorf("the refused request changed state: %+v → %+v", before, after)
			}
		})
	}
	// A well-formed owner with letters beyond ASCII is fine.
	if resp, body := s.do("POST", "/v1/datasets/z/versions?task=classify&filename=z.jsonl&owner=Zo%C3%AB", oneRecord); resp.StatusCode != 200 {
		t.Fatalf("owner Zoë: %d %s", resp.StatusCode, body)
	}
}

func TestHTTPWrongMethod(t *testing.T) {
	s := newEdgeServer(t)
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"DELETE", "/v1/datasets", 405, "GET, HEAD"},
		{"POST", "/v1/health", 405, "GET, HEAD"},
		{"GET", "/v1/runs/abc/cancel", 405, "POST"},
		{"PUT", "/v1/recipes", 405, "GET, HEAD, POST"},
		{"DELETE", "/v1/classify", 405, "POST"},
		{"GET", "/v1/nothing-here", 404, ""},
	}
	for _, tt := range tests {
		resp, body := s.do(tt.method, tt.path, "")
		if resp.StatusCode != tt.status || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s = %d Allow %q (%s); want %d Allow %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), body, tt.status, tt.allow)
		}
		var e api.ErrorBody
		if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error.Message, "docs/api.md") {
			t.Errorf("%s %s: body %s is not a JSON error pointing at docs/api.md", tt.method, tt.path, body)
		}
	}
}
