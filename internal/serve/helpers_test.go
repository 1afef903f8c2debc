package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/modelengine"
	"github.com/tailor-ml/tailor/internal/serve/servetest"
)

var labels = []string{"ham", "spam"}

// world is a fixture: a tiny base "tiny", a classifier "spam" with
// versions v1 (champion) and v2 (challenger), a generator "chat" v1
// (champion), served over a real loopback server.
type world struct {
	f      *servetest.Fixture
	res    *serve.MemResolver
	engine *modelengine.Engine
	srv    *serve.Server
	http   *httptest.Server
}

var (
	fixOnce sync.Once
	fix     *servetest.Fixture
	fixErr  error
	fixCls  [3]serve.Target
	fixGen  serve.Target
	// fixShort is a classifier trained (so its manifest says) on inputs
	// cut to 8 tokens.
	fixShort serve.Target
)

// sharedFixture builds the model files once per test binary.
func sharedFixture(t *testing.T) *servetest.Fixture {
	t.Helper()
	fixOnce.Do(func() {
		dir, err := osMkdirTemp()
		if err != nil {
			fixErr = err
			return
		}
		fix, fixErr = servetest.New(dir, servetest.Options{})
		if fixErr != nil {
			return
		}
		for i := range fixCls {
			if fixCls[i], fixErr = fix.Classifier(uint64(i+1), labels); fixErr != nil {
				return
			}
		}
		if fixGen, fixErr = fix.Generator(11); fixErr != nil {
			return
		}
		fix.MaxSeqLen = 8
		fixShort, fixErr = fix.Classifier(21, labels)
		fix.MaxSeqLen = 0
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func newWorld(t *testing.T, opts serve.Options, eng serve.Engine) *world {
	t.Helper()
	f := sharedFixture(t)
	w := &world{f: f, res: serve.NewMemResolver()}
	w.res.AddBase(f.Base)
	for _, tg := range fixCls[:2] {
		tg.Model = "spam"
		w.res.AddVersion(tg)
	}
	g := fixGen
	g.Model = "chat"
	w.res.AddVersion(g)
	short := fixShort
	short.Model = "short"
	w.res.AddVersion(short)
	must(t, w.res.SetAlias("spam", "champion", 1))
	must(t, w.res.SetAlias("spam", "challenger", 2))
	must(t, w.res.SetAlias("chat", "champion", 1))
	if eng == nil {
		e, err := modelengine.New(modelengine.Options{Loader: f.Loader()})
		must(t, err)
		w.engine, eng = e, e
	}
	opts.Engine, opts.Resolver = eng, w.res
	srv, err := serve.New(opts)
	must(t, err)
	w.srv = srv
	w.http = httptest.NewServer(srv.Handler())
	t.Cleanup(func() { w.http.Close(); srv.Close() })
	return w
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// post sends a JSON body and returns the response and its body.
func (w *world) post(t *testing.T, path string, body any, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), "POST", w.http.URL+path, bytes.NewReader(raw))
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp, out
}

func (w *world) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(w.http.URL + path)
	must(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	must(t, err)
	return resp, out
}

type classifyResp struct {
	Data []serve.Classification `json:"data"`
}

// classify returns the version that answered and the first result.
func (w *world) classify(t *testing.T, model, input string, hdr ...string) (int, string, serve.Classification, []byte) {
	t.Helper()
	resp, body := w.post(t, "/v1/classify", map[string]any{"model": model, "input": input}, hdr...)
	var cr classifyResp
	if resp.StatusCode == 200 {
		must(t, json.Unmarshal(body, &cr))
		return 200, resp.Header.Get("X-Tailor-Model-Version"), cr.Data[0], body
	}
	return resp.StatusCode, "", serve.Classification{}, body
}

func osMkdirTemp() (string, error) { return os.MkdirTemp("", "serve-test-") }
