package modelengine_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/basemodel"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/peft"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/modelengine"
	"github.com/tailor-ml/tailor/internal/serve/servetest"
)

// reference builds base + adapter directly with engine/model, as the worker
// does, to compare the engine's batched, grouped results with.
func reference(t *testing.T, f *servetest.Fixture, tg serve.Target, labels []string) *model.Model {
	t.Helper()
	w, err := safetensors.ReadDir(filepath.Join(f.Dir, "base"))
	if err != nil {
		t.Fatal(err)
	}
	opts := model.Options{Method: model.LoRA, LoRA: model.LoRAOptions{Rank: 1, Alpha: 1, Targets: []string{"q_proj"}}}
	var a *peft.Adapter
	if tg.Adapter != "" {
		ad, err := f.Loader().Adapter(context.Background(), tg)
		if err != nil {
			t.Fatal(err)
		}
		a = ad.PEFT
		opts.LoRA = model.LoRAOptions{Rank: a.Config.R, Alpha: a.Config.LoraAlpha, Targets: a.Config.TargetModules}
		if len(labels) > 0 {
			opts.Method, opts.Head = model.Head, model.HeadOptions{NumLabels: len(labels), Pooling: model.PoolLast}
		}
	}
	m, err := model.New(f.Config, w, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		if a == nil {
			if len(p.Shape) == 2 && p.Shape[1] == 1 { // lora_B of the base-alone model stays zero
				clear(p.Data)
			}
			continue
		}
		tn, ok := a.Tensors[p.Name]
		if !ok {
			tn = a.Tensors[peft.Prefix+p.Name]
		}
		copy(p.Data, tn.Data)
	}
	return m
}

func TestClassifyMatchesDirectModel(t *testing.T) {
	f := servetest.ForTest(t)
	ctx := context.Background()
	labels := []string{"ham", "spam"}
	var targets []serve.Target
	for s := uint64(1); s <= 3; s++ {
		tg, err := f.Classifier(s, labels)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
	}
	e, err := modelengine.New(modelengine.Options{Loader: f.Loader()})
	if err != nil {
		t.Fatal(err)
	}
	var loaded []*serve.Loaded
	for _, tg := range targets {
		l, err := e.Load(ctx, tg)
		if err != nil {
			t.Fatal(err)
		}
		loaded = append(loaded, l)
	}
	texts := []string{"win a free prize now", "lunch tomorrow?", "the report is ready", "cheap pills online, act now"}
	// Rows interleave adapters, so one step runs three groups.
	var rows []serve.ClassifyRow
	for i, s := range texts {
		rows = append(rows, serve.ClassifyRow{Model: loaded[i%3], Tokens: f.Tok.Encode(s, true)})
		rows = append(rows, serve.ClassifyRow{Model: loaded[(i+1)%3], Tokens: f.Tok.Encode(s, true)})
	}
	got, err := e.Classify(ctx, rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		k := slices.Index(loaded, r.Model)
		m := reference(t, f, targets[k], labels)
		want, err := m.Forward(engine.Batch{Examples: []engine.Example{{Tokens: r.Tokens}}})
		if err != nil {
			t.Fatal(err)
		}
		for j := range want.Data {
			if d := got[i][j] - want.Data[j]; d > 1e-5 || d < -1e-5 {
				t.Fatalf("row %d class %d: engine %g, direct model %g", i, j, got[i][j], want.Data[j])
			}
		}
	}
}

func TestLogitsMatchDirectModel(t *testing.T) {
	f := servetest.ForTest(t)
	ctx := context.Background()
	gen, err := f.Generator(7)
	if err != nil {
		t.Fatal(err)
	}
	e, err := modelengine.New(modelengine.Options{Loader: f.Loader()})
	if err != nil {
		t.Fatal(err)
	}
	lg, err := e.Load(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := e.Load(ctx, f.Base)
	if err != nil {
		t.Fatal(err)
	}
	toks := [][]int32{f.Tok.Encode("hello, how are", false), f.Tok.Encode("the quick brown fox jumps", false)}
	rows := []serve.StepRow{{Seq: 1, Model: lg, Tokens: toks[0]}, {Seq: 2, Model: lb, Tokens: toks[1]}, {Seq: 3, Model: lg, Tokens: toks[1]}}
	got, err := e.Logits(ctx, rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		tg := gen
		if r.Model == lb {
			tg = f.Base
		}
		m := reference(t, f, tg, nil)
		out, err := m.Forward(engine.Batch{Examples: []engine.Example{{Tokens: r.Tokens, Label: -1}}})
		if err != nil {
			t.Fatal(err)
		}
		v := f.Config.VocabSize
		want := out.Data[(len(r.Tokens)-1)*v : len(r.Tokens)*v]
		for j := range want {
			if d := got[i][j] - want[j]; d > 1e-4 || d < -1e-4 {
				t.Fatalf("row %d token %d: engine %g, direct model %g", i, j, got[i][j], want[j])
			}
		}
	}
}

func TestEvictionUnderBudget(t *testing.T) {
	f := servetest.ForTest(t)
	ctx := context.Background()
	var targets []serve.Target
	for s := uint64(1); s <= 4; s++ {
		tg, err := f.Classifier(s, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
	}
	probe, err := modelengine.New(modelengine.Options{Loader: f.Loader()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probe.Load(ctx, targets[0]); err != nil {
		t.Fatal(err)
	}
	one := probe.Stats().AdapterBytes
	if one <= 0 {
		t.Fatalf("adapter bytes %d", one)
	}
	e, err := modelengine.New(modelengine.Options{Loader: f.Loader(), BudgetBytes: 2 * one})
	if err != nil {
		t.Fatal(err)
	}
	first := map[int][]float32{}
	for round := 0; round < 2; round++ {
		for i, tg := range targets {
			l, err := e.Load(ctx, tg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := e.Classify(ctx, []serve.ClassifyRow{{Model: l, Tokens: f.Tok.Encode("win a prize", true)}})
			if err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				first[i] = p[0]
			} else if !slices.Equal(first[i], p[0]) {
				t.Fatalf("adapter %d after reload: %v, first %v", i, p[0], first[i])
			}
			if st := e.Stats(); st.AdapterBytes > st.BudgetBytes {
				t.Fatalf("resident %d bytes over budget %d", st.AdapterBytes, st.BudgetBytes)
			}
		}
	}
	st := e.Stats()
	if len(st.Adapters) != 2 || st.Evictions != 6 || st.Loads != 8 {
		t.Fatalf("stats %+v: want 2 resident, 6 evictions, 8 loads", st)
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// TestBaseEvictionUnderBudget serves three bases under a base budget that
// fits two: the least recently used base goes (with its adapter), comes
// back on demand, and every answer equals the first one.
func TestBaseEvictionUnderBudget(t *testing.T) {
	ctx := context.Background()
	fs, err := servetest.Bases(t.TempDir(), 3, servetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var targets []serve.Target
	for i, f := range fs {
		tg, err := f.Classifier(uint64(10+i), []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, tg)
	}
	probe, err := modelengine.New(modelengine.Options{Loader: fs[0].Loader()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probe.Load(ctx, targets[0]); err != nil {
		t.Fatal(err)
	}
	one := probe.Stats().BaseBytes
	probe.Close()
	e, err := modelengine.New(modelengine.Options{Loader: fs[0].Loader(), BaseBudgetBytes: 2*one + one/2})
	if err != nil {
		t.Fatal(err)
	}
	toks := fs[0].Tok.Encode("win a free prize", true)
	first := map[int][]float32{}
	for round := range 3 {
		for i, tg := range targets {
			l, err := e.Load(ctx, tg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := e.Classify(ctx, []serve.ClassifyRow{{Model: l, Tokens: toks}})
			if err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				first[i] = p[0]
			} else if !slices.Equal(first[i], p[0]) {
				t.Fatalf("base %d after reload: %v, first %v", i, p[0], first[i])
			}
			if st := e.Stats(); st.Bases > 2 || st.BaseBytes > st.BaseBudgetBytes {
				t.Fatalf("round %d base %d: %d bases, %d bytes resident over budget %d", round, i, st.Bases, st.BaseBytes, st.BaseBudgetBytes)
			}
		}
	}
	st := e.Stats()
	// Round-robin over 3 bases with room for 2 evicts one base per load
	// after the first two: 7 evictions in 9 loads.
	if st.BaseLoads != 9 || st.BaseEvictions != 7 || st.Evictions != 7 || st.Bases != 2 {
		t.Fatalf("stats %+v: want 9 base loads, 7 base and 7 adapter evictions, 2 bases resident", st)
	}
	// The weights are mapped from the store's files, and an evicted base's
	// mapping is gone: bases 1 and 2 (used last) are mapped, base 0 not.
	if st.BaseMappedBytes != st.BaseBytes {
		t.Fatalf("%d of %d resident base bytes mapped, want all", st.BaseMappedBytes, st.BaseBytes)
	}
	for i, want := range []int{0, 1, 1} {
		if n := mappings(t, fs[i], targets[i]); n != want {
			t.Errorf("base %d's weights are mapped %d times, want %d", i, n, want)
		}
	}
}

// mappings counts the mappings of tg's base weights file in this process.
func mappings(t *testing.T, f *servetest.Fixture, tg serve.Target) int {
	t.Helper()
	rc, err := f.Blobs.Open(context.Background(), tg.BaseManifest)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	m, err := basemodel.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	w, ok := m.File("model.safetensors")
	if !ok {
		t.Fatalf("base %s has no model.safetensors", m.Name)
	}
	path, err := f.Blobs.Path(w.Digest)
	if err != nil {
		t.Fatal(err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(maps), path)
}

// heapOnly hides the store's local files, so BlobLoader reads bases into
// the heap as it would from a remote store.
type heapOnly struct{ basemodel.Source }

// TestMappedBaseStaysOffTheHeap loads a 5 MB base twice: mapped from the
// store's files it grows the Go heap by under a tenth of its weights, read
// through a store without local files by at least all of them.
func TestMappedBaseStaysOffTheHeap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("mmap is used on linux, darwin and freebsd; the check reads /proc/self/maps")
	}
	f, err := servetest.New(t.TempDir(), servetest.Options{Hidden: 256, Layers: 2})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := f.Classifier(1, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		loader modelengine.Loader
		mapped bool
	}{
		{"mapped", f.Loader(), true},
		{"heap", &modelengine.BlobLoader{Blobs: heapOnly{f.Blobs}, WorkDir: f.Dir}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := modelengine.New(modelengine.Options{Loader: c.loader})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			heap := func() int64 {
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				return int64(ms.HeapAlloc)
			}
			before := heap()
			if _, err := e.Load(ctx, tg); err != nil {
				t.Fatal(err)
			}
			grew := heap() - before
			st := e.Stats()
			runtime.KeepAlive(e)
			t.Logf("%s: base %d bytes (%d mapped), heap grew %d bytes", c.name, st.BaseBytes, st.BaseMappedBytes, grew)
			if st.BaseBytes < 4<<20 {
				t.Fatalf("base of %d bytes: the fixture is too small to tell", st.BaseBytes)
			}
			if c.mapped {
				if st.BaseMappedBytes != st.BaseBytes || grew >= st.BaseBytes/10 || mappings(t, f, tg) != 1 {
					t.Fatalf("mapped base: %d of %d bytes mapped, heap grew %d bytes, %d mappings", st.BaseMappedBytes, st.BaseBytes, grew, mappings(t, f, tg))
				}
			} else if st.BaseMappedBytes != 0 || grew < st.BaseBytes {
				t.Fatalf("heap base: %d bytes mapped, heap grew %d bytes for %d bytes of weights", st.BaseMappedBytes, grew, st.BaseBytes)
			}
		})
	}
}
