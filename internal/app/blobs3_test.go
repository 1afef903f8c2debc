package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/api"
	"github.com/tailor-ml/tailor/internal/adapter"
	"github.com/tailor-ml/tailor/internal/blob"
	"github.com/tailor-ml/tailor/internal/blob/s3"
	"github.com/tailor-ml/tailor/internal/blob/s3/s3test"
	mdstore "github.com/tailor-ml/tailor/internal/store"
)

// TestRunOnS3: with --blob s3://bucket/prefix on a real S3 server
// (versitygw), a real training worker process reads the base and the
// dataset from the bucket and writes its adapter there, nothing lands in
// the data directory's local store, and a real serving process loads the
// adapter from the bucket and answers a classify request. The workers get
// the store's address in their spec and its endpoint and credentials from
// the environment they inherit.
func TestRunOnS3(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := s3test.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	bucket, err := srv.NewBucket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{s3.EnvEndpointS3: srv.Endpoint, s3.EnvAccessKeyID: srv.AccessKey, s3.EnvSecretKey: srv.SecretKey,
		s3.EnvRegion: "us-east-1", s3.EnvPathStyle: "true", workerEnv: "1"} {
		t.Setenv(k, v)
	}
	dataDir := t.TempDir()
	addr := "s3://" + bucket + "/tailor/test"
	a, err := Open(Options{DataDir: dataDir, Blob: addr, Getenv: os.Getenv, EngineVersion: "test",
		WorkerCommand: []string{os.Args[0]}, ServeCommand: []string{"/usr/bin/env", serveEnv + "=1", os.Args[0]}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		a.Close()
	})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	store, ok := a.Blobs().(*s3.Store)
	if !ok || a.BlobAddress() != addr {
		t.Fatalf("app opened %T at %q, want the S3 store at %s", a.Blobs(), a.BlobAddress(), addr)
	}

	importSeedBase(t, a, "tiny", 5)
	var b strings.Builder
	words := [][]string{{"meeting", "notes", "lunch"}, {"prize", "cash", "winner"}}
	for i := range 120 {
		c := i % 2
		fmt.Fprintf(&b, "{\"id\":\"m%d\",\"text\":\"the %s for you %d\",\"label\":%q}\n", i, words[c][i%3], i, []string{"ham", "spam"}[c])
	}
	if _, err := a.ImportDataset(ctx, strings.NewReader(b.String()), api.DatasetImportOptions{Name: "mail", Task: "classify", FileName: "mail.jsonl"}); err != nil {
		t.Fatal(err)
	}
	const src = "name: mail\ntask: classify\nbase: tiny\ndata: {dataset: mail}\nmethod: {kind: lora, lora: {rank: 4}}\n" +
		"train: {max_steps: 10, batch_size: 16, learning_rate: 0.01, max_seq_len: 32}\nseed: 1\nregion: local\n"
	if _, err := a.ApplyRecipe(ctx, "mail.yaml", []byte(src)); err != nil {
		t.Fatal(err)
	}
	r, err := a.StartRun(ctx, api.RunStart{Recipe: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	v := waitRegistered(t, a, r.ID)

	// The adapter's manifest and every file it lists are objects in the
	// bucket under the prefix; the data directory has no local store.
	m, err := adapter.ReadManifest(ctx, a.Blobs(), v.Adapter)
	if err != nil {
		t.Fatal(err)
	}
	digests := []blob.Digest{v.Adapter}
	for _, f := range m.Files {
		digests = append(digests, f.Digest)
	}
	for _, d := range digests {
		key, err := store.Key(d)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(key, "tailor/test/") {
			t.Fatalf("blob %s at key %s, outside the prefix", d, key)
		}
		if _, err := os.Stat(srv.Path(bucket, key)); err != nil {
			t.Fatalf("adapter blob %s is not in the bucket: %v", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "blobs")); !os.IsNotExist(err) {
		t.Fatalf("the data directory has a local blob store (%v); everything should be in the bucket", err)
	}

	if _, err := a.Promote(mdstore.WithActor(ctx, "test"), "mail", api.Promote{Version: fmt.Sprintf("v%d", v.Version), Alias: "champion", Reason: "first"}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a.Inference())
	defer hs.Close()
	body, _ := json.Marshal(map[string]any{"model": "mail", "input": "the prize for you 7"})
	resp, err := http.Post(hs.URL+"/v1/classify", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct {
		Data []struct {
			Label string `json:"label"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &got); resp.StatusCode != http.StatusOK || err != nil || len(got.Data) != 1 || (got.Data[0].Label != "ham" && got.Data[0].Label != "spam") {
		t.Fatalf("classify: %d %s (%v)", resp.StatusCode, out, err)
	}
	t.Logf("classified through the serving process: %s", out)
}

// waitRegistered waits for run id to succeed and its model version to be
// registered, and returns that version.
func waitRegistered(t *testing.T, a *App, id string) api.ModelVersion {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r, err := a.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == "failed" || r.State == "canceled" {
			logs, _ := a.RunLogs(ctx, id, 0)
			t.Fatalf("run %s %s: %s (logs %v)", id, r.State, r.Error, logs)
		}
		if r.State != "succeeded" {
			continue
		}
		vs, _ := a.Models(ctx, "mail")
		for _, v := range vs {
			if v.RunID == id {
				return v
			}
		}
	}
	t.Fatalf("run %s not registered in time", id)
	return api.ModelVersion{}
}
