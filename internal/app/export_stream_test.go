package app

import (
	"archive/tar"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/adapter"
	"github.com/tailor-ml/tailor/internal/auth"
	"github.com/tailor-ml/tailor/internal/blob/local"
	"github.com/tailor-ml/tailor/internal/httpapi"
	"github.com/tailor-ml/tailor/internal/registry"
	"github.com/tailor-ml/tailor/internal/serve/servetest"
	"github.com/tailor-ml/tailor/internal/store"
)

// liveHeap is the heap still in use: collected first, so what it says
// does not depend on when the collector last ran.
func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// heapProbe is a writer that takes the live heap at every MiB written
// (every allocation made for the export and still held is in it) and
// keeps the highest.
type heapProbe struct {
	n, next, peak int64
}

func (p *heapProbe) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.n >= p.next {
		p.peak = max(p.peak, liveHeap())
		p.next = p.n + 1<<20
	}
	return len(b), nil
}

// exportWorld is an App whose data dir holds a base of about 20 MB
// (hidden 384, 4 layers) and "chat" v1, a LoRA adapter over it, behind
// the real HTTP handler.
func exportWorld(t *testing.T, wrap ...func(*App) httpapi.Service) (*App, *servetest.Fixture, string, store.ModelVersion) {
	t.Helper()
	dir := t.TempDir()
	f, err := servetest.New(dir, servetest.Options{Hidden: 384, Layers: 4})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(Options{DataDir: dir, EngineVersion: "test", WorkerCommand: []string{"/bin/false"}})
	if err != nil {
		t.Fatal(err)
	}
	var svc httpapi.Service = a
	for _, w := range wrap {
		svc = w(a)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Options{Auth: a.Authority(auth.Options{InsecureLocal: true}), Service: svc}))
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	ctx := context.Background()
	if _, _, err := a.store.PutBaseVersion(ctx, store.BaseVersion{ID: f.Base.BaseID, Name: "tiny", Arch: "LlamaForCausalLM",
		Manifest: f.Base.BaseManifest, Region: "local", CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	gen, err := f.Generator(1)
	if err != nil {
		t.Fatal(err)
	}
	v := store.ModelVersion{ID: registry.ContentID(f.Base.BaseID, gen.Adapter), Name: "chat", BaseID: f.Base.BaseID, Adapter: gen.Adapter,
		Task: "sft", CreatedAt: time.Now()}
	if _, _, err := a.store.PutModelVersion(ctx, v, nil); err != nil {
		t.Fatal(err)
	}
	return a, f, srv.URL, v
}

// TestExportStreams: the app never builds an exported file in memory.
// Merging needs the base and merged tensors in memory, and preparing an
// export (loading, merging) holds them; while the file is written the heap
// holds less than an eighth of the file more (before, the encoded file was
// held whole: exportFiles returned it as bytes). The heap is measured live,
// after a collection, at every MiB written.
func TestExportStreams(t *testing.T) {
	a, _, _, v := exportWorld(t)
	ctx := context.Background()
	for _, format := range []string{"merged", "gguf:f32", "gguf:q8_0"} {
		t.Run(format, func(t *testing.T) {
			kind, dtype, err := parseFormat(format)
			if err != nil {
				t.Fatal(err)
			}
			before := liveHeap()
			files, err := a.exportFiles(ctx, v.BaseID, v.Adapter, kind, dtype)
			if err != nil {
				t.Fatal(err)
			}
			prepared := liveHeap() - before // base and merged tensors
			probe := &heapProbe{}
			var size int64
			for _, f := range files {
				if err := f.write(probe); err != nil {
					t.Fatal(err)
				}
				size = max(size, f.size)
			}
			if probe.n != sumSizes(files) {
				t.Fatalf("wrote %d bytes, announced %d", probe.n, sumSizes(files))
			}
			held := probe.peak - before - prepared
			runtime.KeepAlive(files)
			t.Logf("%s: file %d bytes; prepared tensors %d; heap beyond them while writing %d", format, size, prepared, held)
			if held > size/8 {
				t.Errorf("writing a %d-byte file held %d bytes more heap than its tensors: it is built in memory", size, held)
			}
		})
	}
}

// watchedExport is the App with its export's writer watched: at every
// write it notes how many bytes the client has received so far.
type watchedExport struct {
	*App
	received     *atomic.Int64 // by the client
	atLastWrite  atomic.Int64
	writesBefore atomic.Int64 // writes made before the client had any byte
}

func (w *watchedExport) ExportModel(ctx context.Context, name, ref, format string, out io.Writer) error {
	return w.App.ExportModel(ctx, name, ref, format, writerFunc(func(p []byte) (int, error) {
		n, err := out.Write(p)
		got := w.received.Load()
		w.atLastWrite.Store(got)
		if got == 0 {
			w.writesBefore.Add(1)
		}
		return n, err
	}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestExportHandlerStreams: the HTTP handler sends the export as the app
// writes it. A client reading the real server's response has received
// bytes before the app's last write of a 22 MB export; the handler that
// buffered the export whole sent nothing until the app had returned.
func TestExportHandlerStreams(t *testing.T) {
	var received atomic.Int64
	var watched *watchedExport
	_, _, url, _ := exportWorld(t, func(a *App) httpapi.Service {
		watched = &watchedExport{App: a, received: &received}
		return watched
	})
	resp, err := http.Get(url + "/v1/registry/models/chat/versions/v1/export?format=merged")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		received.Add(int64(n))
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if resp.StatusCode != 200 || received.Load() < 20<<20 {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, received.Load())
	}
	t.Logf("the client had %d of %d bytes at the app's last write; %d writes came before its first byte",
		watched.atLastWrite.Load(), received.Load(), watched.writesBefore.Load())
	if watched.atLastWrite.Load() == 0 {
		t.Fatal("the client received nothing before the app's last write: the handler holds the export whole")
	}
}

func sumSizes(files []exportFile) int64 {
	var n int64
	for _, f := range files {
		n += f.size
	}
	return n
}

// A failure after the first byte cuts the connection: the client gets a
// broken transfer (at the request, or reading the body), never a short
// export that looks complete.
func TestExportFailureMidStreamCutsTheConnection(t *testing.T) {
	a, _, url, v := exportWorld(t)
	m, err := adapter.ReadManifest(context.Background(), a.blobs, v.Adapter)
	if err != nil {
		t.Fatal(err)
	}
	// adapter_config.json is written first; the weights' blob is gone.
	for _, f := range m.Files {
		if f.Name == "adapter_model.safetensors" {
			path, err := a.blobs.(*local.Store).Path(f.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}
	}
	resp, err := http.Get(url + "/v1/registry/models/chat/versions/v1/export?format=peft")
	if err != nil {
		return // cut before the response's first bytes left the server
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: adapter_config.json was written before the failure", resp.StatusCode)
	}
	tr := tar.NewReader(resp.Body)
	for {
		_, err = tr.Next()
		if err == nil {
			_, err = io.Copy(io.Discard, tr)
		}
		if err != nil {
			break
		}
	}
	if err == io.EOF {
		t.Fatal("the cut export read as complete")
	}
}
