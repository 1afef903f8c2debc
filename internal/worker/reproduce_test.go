package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/tailor-ml/tailor/internal/blob/local"
	"github.com/tailor-ml/tailor/internal/corpus"
	"github.com/tailor-ml/tailor/internal/data"
	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/recipe"
	"github.com/tailor-ml/tailor/internal/reference"
	"github.com/tailor-ml/tailor/internal/run"
	"github.com/tailor-ml/tailor/recipes"
)

// lineage is the part of models/tailor-tiny/lineage.json this test checks.
type lineage struct {
	Recipe struct {
		ID string `json:"id"`
	} `json:"recipe"`
	Corpus struct {
		DatasetID string `json:"dataset_id"`
	} `json:"corpus"`
	FirstCheckpoint struct {
		Step   int64             `json:"step"`
		SHA256 map[string]string `json:"sha256"` // BLAS core → checkpoint digest
	} `json:"first_checkpoint"`
}

// TestTailorTinyFirstSteps re-runs the first steps of the recipe that made
// the committed base model, on the same corpus, and checks that the first
// checkpoint has the bytes recorded in its lineage: anyone can verify how
// the weights were made.
func TestTailorTinyFirstSteps(t *testing.T) {
	reference.Node(t, "corpus")
	raw, err := os.ReadFile(filepath.Join("..", "..", "models", "tailor-tiny", "lineage.json"))
	if err != nil {
		t.Fatal(err)
	}
	var lin lineage
	if err := json.Unmarshal(raw, &lin); err != nil {
		t.Fatal(err)
	}
	core := regexp.MustCompile(`core=([A-Za-z0-9_]+)`).FindStringSubmatch(gemm.Info())
	if core == nil {
		t.Fatalf("engine %q names no BLAS core", gemm.Info())
	}
	want, known := lin.FirstCheckpoint.SHA256[core[1]]
	ctx := context.Background()
	dir := t.TempDir()
	sum, err := corpus.Export(ctx, filepath.Join(dir, "corpus"), corpus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := local.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(sum.Files[corpus.PretrainTextFile])
	if err != nil {
		t.Fatal(err)
	}
	m, err := data.Import(ctx, f, data.ImportOptions{Name: "pretrain-text", Task: data.TaskText, FileName: corpus.PretrainTextFile}, blobs)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != lin.Corpus.DatasetID {
		t.Fatalf("corpus dataset version %s, lineage says %s", m.ID, lin.Corpus.DatasetID)
	}
	src, _ := recipes.Read("tailor-tiny.yaml")
	r, err := recipe.Parse("tailor-tiny.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := r.ID()
	if id != lin.Recipe.ID {
		t.Fatalf("recipe id %s, lineage says %s", id, lin.Recipe.ID)
	}
	norm, _ := r.Normalize()
	spec := run.Spec{RunID: "run-repro", Key: "repro", Recipe: norm, Blob: fileURL(t, blobs.Dir()), WorkDir: filepath.Join(dir, "work"),
		Inputs: run.Inputs{Dataset: run.InputRef{Name: "pretrain-text", ID: m.ID, Manifest: putJSON(t, blobs, m)}}}
	got := firstCheckpoint(t, spec, lin.FirstCheckpoint.Step)
	if !known {
		// Float results differ between BLAS kernels, so each core has its
		// own digest; this one can be added to the lineage file.
		t.Skipf("no digest recorded for BLAS core %s (recorded: %v); this core gives %s", core[1], lin.FirstCheckpoint.SHA256, got)
	}
	if got != want {
		t.Fatalf("checkpoint at step %d is %s; lineage records %s for core %s", lin.FirstCheckpoint.Step, got, want, core[1])
	}
}

// firstCheckpoint runs a worker until it reports the checkpoint at step,
// then stops it (as a dead server would) and returns the digest.
func firstCheckpoint(t *testing.T, spec run.Spec, step int64) string {
	t.Helper()
	line, _ := json.Marshal(spec)
	stdin := &blockingReader{first: append(line, '\n'), done: make(chan struct{})}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- Train(context.Background(), stdin, pw, Options{})
		pw.Close()
	}()
	digest := ""
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		var msg run.Message
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Fatal(err)
		}
		if msg.Type == run.MsgCheckpoint && msg.Step == step && digest == "" {
			digest = msg.Digest
			close(stdin.done)
		}
	}
	<-errc
	if digest == "" {
		t.Fatalf("the worker reported no checkpoint at step %d", step)
	}
	return digest
}
