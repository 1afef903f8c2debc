package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/app"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/httpapi"
)

// env is an App behind a real loopback HTTP server, reached through the
// public client, as the CLI reaches it.
type env struct {
	t       *testing.T
	app     *app.App
	client  *api.Client
	dataDir string
	url     string // the server's, where newEnv made one
}

func newEnv(t *testing.T, opts app.Options) *env {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	opts.EngineVersion = "test-engine"
	opts.WorkerCommand = []string{"/bin/false"}
	a, err := app.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Auth: a.Authority(auth.Options{InsecureLocal: true}), Service: a, Inference: a.Inference()}))
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return &env{t: t, app: a, client: api.NewClient(srv.URL, nil), dataDir: opts.DataDir, url: srv.URL}
}

// trace is everything a failed operation must leave unchanged.
type trace struct {
	events, blobs, staged    int
	datasets, bases, recipes int
	audit                    int64 // the audit log's head seq
}

func (e *env) trace() trace {
	e.t.Helper()
	ctx := context.Background()
	var tr trace
	if err := e.client.Events(ctx, 0, false, func(api.Event) error { tr.events++; return nil }); err != nil {
		e.t.Fatal(err)
	}
	if err := e.app.Blobs().List(ctx, func(string, int64) error { tr.blobs++; return nil }); err != nil {
		e.t.Fatal(err)
	}
	filepath.WalkDir(filepath.Join(e.dataDir, "staging"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			tr.staged++
		}
		return nil
	})
	ds, _ := e.client.Datasets(ctx, "")
	bs, _ := e.client.Bases(ctx, "")
	rs, _ := e.client.Recipes(ctx, "")
	tr.datasets, tr.bases, tr.recipes = len(ds), len(bs), len(rs)
	v, err := e.client.VerifyAudit(ctx)
	if err != nil || !v.OK {
		e.t.Fatalf("audit log: %+v, %v", v, err)
	}
	tr.audit = v.HeadSeq
	return tr
}

func TestDatasetImportTwiceAndAppend(t *testing.T) {
	e := newEnv(t, app.Options{})
	ctx := context.Background()
	var buf bytes.Buffer
	for i := range 400 {
		fmt.Fprintf(&buf, "{\"id\":\"r%d\",\"text\":\"message number %d about %s\",\"label\":\"%s\"}\n", i, i, []string{"cats", "stocks"}[i%2], []string{"ham", "spam"}[i%2])
	}
	first := buf.String()
	imp := func(s string, appendMode bool) api.DatasetImport {
		t.Helper()
		res, err := e.client.ImportDataset(ctx, strings.NewReader(s), api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "mail.jsonl", Append: appendMode})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a := imp(first, false)
	b := imp(first, false)
	if !a.Created || b.Created || a.Version.ID != b.Version.ID {
		t.Fatalf("same file twice: created %v/%v ids %s/%s", a.Created, b.Created, a.Version.ID, b.Version.ID)
	}
	c := imp("{\"id\":\"new1\",\"text\":\"fresh record\",\"label\":\"ham\"}\n", true)
	if !c.Created || c.Version.ID == a.Version.ID || c.Version.Records != 401 || c.Version.Parent != a.Version.ID {
		t.Fatalf("append: %+v", c)
	}
	if c.ChunksReused == 0 {
		t.Fatalf("append reused no chunks: %+v", c)
	}
	da, _ := e.client.Dataset(ctx, "mail", a.Version.ID)
	dc, _ := e.client.Dataset(ctx, "mail", "latest")
	shared := 0
	for _, x := range da.Version.Chunks {
		for _, y := range dc.Version.Chunks {
			if x == y {
				shared++
			}
		}
	}
	if shared == 0 || shared < len(da.Version.Chunks)-1 {
		t.Fatalf("versions share %d of %d chunks", shared, len(da.Version.Chunks))
	}
	diff, err := e.client.DiffDatasets(ctx, "mail", a.Version.ID, "latest")
	if err != nil || !strings.Contains(string(diff), "new1") {
		t.Fatalf("diff: %v %s", err, diff)
	}
}

// badCase is one bad input: what to send, and what the error must say.
type badCase struct {
	name string
	do   func(e *env) error
	kind string   // expected api error kind
	want []string // substrings of the message
}

func importData(name, file, task, body string) func(e *env) error {
	return func(e *env) error {
		_, err := e.client.ImportDataset(context.Background(), strings.NewReader(body), api.DatasetImportOptions{Name: name, Task: task, FileName: file})
		return err
	}
}

func applyRecipe(file, body string) func(e *env) error {
	return func(e *env) error {
		_, err := e.client.ApplyRecipe(context.Background(), file, []byte(body))
		return err
	}
}

func TestBadInputsLeaveNoTrace(t *testing.T) {
	e := newEnv(t, app.Options{Regions: []string{"local", "eu"}})
	ctx := context.Background()
	if _, err := e.client.ImportDataset(ctx, strings.NewReader("{\"text\":\"hello\",\"label\":\"a\"}\n{\"text\":\"bye\",\"label\":\"b\"}\n"),
		api.DatasetImportOptions{Name: "good", Task: "classify", FileName: "good.jsonl"}); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "base")
	writeTinyBase(t, base)
	if _, err := importBaseDir(e, "tiny", base, nil); err != nil {
		t.Fatal(err)
	}
	cases := append(dataBadCases(), recipeBadCases()...)
	cases = append(cases, baseBadCases(t, base)...)
	if len(cases) < 15 {
		t.Fatalf("only %d bad cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.trace()
			err := tc.do(e)
			var se *api.StatusError
			if !errors.As(err, &se) {
				t.Fatalf("want an API error, got %v", err)
			}
			if se.Err.Kind != tc.kind {
				t.Errorf("kind %q, want %q (%s)", se.Err.Kind, tc.kind, se.Err.Message)
			}
			for _, w := range tc.want {
				if !strings.Contains(se.Err.Message, w) {
					t.Errorf("message %q lacks %q", se.Err.Message, w)
				}
			}
			if after := e.trace(); after != before {
				t.Errorf("left a trace: before %+v after %+v", before, after)
			}
		})
	}
}

func dataBadCases() []badCase {
	big := "{\"text\":\"" + strings.Repeat("x", 10<<20) + "\",\"label\":\"a\"}\n"
	return []badCase{
		{"truncated jsonl line", importData("d1", "cut.jsonl", "classify", "{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\",\"lab"), "invalid", []string{"cut.jsonl:2"}},
		{"invalid utf-8", importData("d1", "bad.jsonl", "classify", "{\"text\":\"a\xff\xfe\",\"label\":\"x\"}\n"), "invalid", []string{"bad.jsonl:1", "UTF-8"}},
		{"missing label", importData("d1", "nolabel.jsonl", "classify", "{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\"}\n"), "invalid", []string{"nolabel.jsonl:2", "label"}},
		{"10 MB record", importData("d1", "big.jsonl", "classify", big), "invalid", []string{"big.jsonl:1"}},
		{"ragged csv", importData("d1", "rag.csv", "classify", "text,label\nhello,a\nworld,b,extra\n"), "invalid", []string{"rag.csv", "3"}},
		{"duplicate ids", importData("d1", "dup.jsonl", "classify", "{\"id\":\"1\",\"text\":\"a\",\"label\":\"x\"}\n{\"id\":\"1\",\"text\":\"b\",\"label\":\"y\"}\n"), "invalid", []string{"dup.jsonl:2", "\"1\""}},
		{"empty file", importData("d1", "empty.jsonl", "classify", ""), "invalid", []string{"empty.jsonl"}},
		{"unknown task", importData("d1", "t.jsonl", "regress", "{\"text\":\"a\",\"label\":\"x\"}\n"), "invalid", []string{"regress"}},
		{"bad dataset name", importData("../etc", "t.jsonl", "classify", "{\"text\":\"a\",\"label\":\"x\"}\n"), "invalid", []string{"dataset name"}},
		{"unknown region", func(e *env) error {
			_, err := e.client.ImportDataset(context.Background(), strings.NewReader("{\"text\":\"a\",\"label\":\"x\"}\n"),
				api.DatasetImportOptions{Name: "d1", Task: "classify", FileName: "r.jsonl", Region: "mars"})
			return err
		}, "invalid", []string{"mars", "local"}},
	}
}

const goodRecipe = `name: spam-lora
task: classify
base: tiny
data:
  dataset: good
method:
  kind: lora
  lora:
    rank: 4
train:
  epochs: 1
  batch_size: 4
  learning_rate: 0.001
seed: 7
region: local
`

func recipeBadCases() []badCase {
	return []badCase{
		{"recipe misspelt key", applyRecipe("r.yaml", strings.Replace(goodRecipe, "learning_rate", "learing_rate", 1)), "invalid",
			[]string{"r.yaml:13:3:", "learing_rate", "did you mean \"learning_rate\""}},
		{"recipe non-numeric learning rate", applyRecipe("r.yaml", strings.Replace(goodRecipe, "0.001", "fast", 1)), "invalid",
			[]string{"r.yaml:13:18:", "learning_rate", "fast"}},
		{"recipe missing dataset", applyRecipe("r.yaml", strings.Replace(goodRecipe, "dataset: good", "dataset: nosuch", 1)), "not_found",
			[]string{"r.yaml", "nosuch", "dataset import"}},
		{"recipe missing base", applyRecipe("r.yaml", strings.Replace(goodRecipe, "base: tiny", "base: huge", 1)), "not_found",
			[]string{"r.yaml", "huge", "base import"}},
		{"recipe unknown region", applyRecipe("r.yaml", strings.Replace(goodRecipe, "region: local", "region: mars", 1)), "invalid",
			[]string{"r.yaml", "mars"}},
	}
}

// TestEventsFollow: a follower sees past events replayed, then new ones as
// they are committed, over server-sent events.
func TestEventsFollow(t *testing.T) {
	e := newEnv(t, app.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	imp := func(name string) {
		t.Helper()
		if _, err := e.client.ImportDataset(context.Background(), strings.NewReader("{\"text\":\"a\",\"label\":\"x\"}\n"),
			api.DatasetImportOptions{Name: name, Task: "classify", FileName: name + ".jsonl"}); err != nil {
			t.Fatal(err)
		}
	}
	imp("first")
	got := make(chan api.Event, 10)
	go e.client.Events(ctx, 0, true, func(ev api.Event) error {
		got <- ev
		return nil
	})
	next := func() api.Event {
		t.Helper()
		select {
		case ev := <-got:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10s")
		}
		return api.Event{}
	}
	first := next()
	imp("second")
	second := next()
	if first.Type != "dataset.version.created" || second.Type != "dataset.version.created" || second.Seq <= first.Seq {
		t.Fatalf("events %+v then %+v", first, second)
	}
	if !strings.Contains(string(second.Data), "second") {
		t.Fatalf("second event is not the new import: %s", second.Data)
	}
}

// TestFsckFindsCorruption: fsck re-hashes every blob, so a flipped byte in
// a dataset chunk is reported, and a deleted blob shows as missing.
func TestFsckFindsCorruption(t *testing.T) {
	e := newEnv(t, app.Options{})
	ctx := context.Background()
	res, err := e.client.ImportDataset(ctx, strings.NewReader("{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\",\"label\":\"y\"}\n"),
		api.DatasetImportOptions{Name: "d", Task: "classify", FileName: "d.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.client.Fsck(ctx)
	if err != nil || len(rep.Bad)+len(rep.Missing) != 0 || rep.Blobs == 0 || rep.Refs == 0 {
		t.Fatalf("clean store: %+v %v", rep, err)
	}
	chunk := res.Version.Chunks[0]
	path := e.blobPath(chunk)
	os.Chmod(path, 0o644)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, _ = e.client.Fsck(ctx)
	if len(rep.Bad) != 1 || rep.Bad[0].Digest != chunk {
		t.Fatalf("corrupt chunk not reported: %+v", rep)
	}
	os.Remove(path)
	rep, _ = e.client.Fsck(ctx)
	if len(rep.Missing) != 1 || rep.Missing[0].Digest != chunk || !strings.Contains(rep.Missing[0].Ref, "dataset d@") {
		t.Fatalf("missing chunk not reported: %+v", rep)
	}
}
