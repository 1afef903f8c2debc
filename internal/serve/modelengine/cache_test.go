package modelengine_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/serve"
	"github.com/tailor-ml/tailor/internal/serve/modelengine"
	"github.com/tailor-ml/tailor/internal/serve/servetest"
)

func argmax(row []float32) int32 {
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	return int32(best)
}

func checkClose(t *testing.T, what string, got []float32, ref *model.Model, toks []int32) {
	t.Helper()
	out, err := ref.Forward(engine.Batch{Examples: []engine.Example{{Tokens: toks, Label: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	v := out.Shape[2]
	want := out.Data[(len(toks)-1)*v : len(toks)*v]
	for j := range want {
		if d := math.Abs(float64(got[j] - want[j])); d > 1e-4 {
			t.Fatalf("%s: token %d: engine %g, direct model %g", what, j, got[j], want[j])
		}
	}
}

// TestGenerationWithCache drives greedy generation the way the scheduler
// does (whole token lists, one row per sequence, mixed adapters in one
// call) and checks every step against the direct model, the cache
// bookkeeping, rewinds and Release.
func TestGenerationWithCache(t *testing.T) {
	cases := []struct {
		name   string
		budget int64
	}{
		{"roomy", 0},
		{"tiny budget", 1}, // rows run one by one: the others' caches are dropped
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := servetest.ForTest(t)
			ctx := context.Background()
			gen, err := f.Generator(7)
			if err != nil {
				t.Fatal(err)
			}
			e, err := modelengine.New(modelengine.Options{Loader: f.Loader(), CacheBudgetBytes: tc.budget})
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
			refs := map[*serve.Loaded]*model.Model{lg: reference(t, f, gen, nil), lb: reference(t, f, f.Base, nil)}
			rows := []serve.StepRow{
				{Seq: 1, Model: lg, Tokens: f.Tok.Encode("hello, how are", false)},
				{Seq: 2, Model: lb, Tokens: f.Tok.Encode("the quick brown fox jumps", false)},
				{Seq: 3, Model: lg, Tokens: f.Tok.Encode("a", false)},
			}
			for step := 0; step < 6; step++ {
				var out [][]float32
				if tc.budget == 0 {
					if out, err = e.Logits(ctx, rows); err != nil {
						t.Fatal(err)
					}
				} else {
					for i := range rows {
						one, err := e.Logits(ctx, rows[i:i+1])
						if err != nil {
							t.Fatal(err)
						}
						out = append(out, one[0])
					}
				}
				for i := range rows {
					checkClose(t, "step", out[i], refs[rows[i].Model], rows[i].Tokens)
					rows[i].Tokens = append(rows[i].Tokens, argmax(out[i]))
				}
				st := e.Caches()
				if tc.budget == 0 && (st.Sequences != 3 || st.Bytes <= 0 || st.Drops != 0) {
					t.Fatalf("step %d: cache stats %+v, want 3 sequences, no drops", step, st)
				}
				if tc.budget > 0 && (st.Drops == 0 || st.Sequences != 1) {
					t.Fatalf("step %d: cache stats %+v, want drops under a 1-byte budget", step, st)
				}
			}
			// Same tokens again, then a rewound and edited sequence.
			again, err := e.Logits(ctx, rows[:1])
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "repeat", again[0], refs[lg], rows[0].Tokens)
			edited := append(append([]int32(nil), rows[0].Tokens[:4]...), rows[1].Tokens[2:5]...)
			out, err := e.Logits(ctx, []serve.StepRow{{Seq: 1, Model: lg, Tokens: edited}})
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "edited", out[0], refs[lg], edited)
			// The same sequence id moving to another model starts afresh.
			out, err = e.Logits(ctx, []serve.StepRow{{Seq: 1, Model: lb, Tokens: edited}})
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "other model", out[0], refs[lb], edited)
			for _, s := range []uint64{1, 2, 3} {
				e.Release(s)
			}
			if st := e.Caches(); st.Sequences != 0 || st.Bytes != 0 {
				t.Fatalf("after release: %+v", st)
			}
		})
	}
}

func TestLogitsErrors(t *testing.T) {
	f := servetest.ForTest(t)
	ctx := context.Background()
	e, err := modelengine.New(modelengine.Options{Loader: f.Loader()})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := e.Load(ctx, f.Base)
	if err != nil {
		t.Fatal(err)
	}
	long := make([]int32, f.Config.MaxPositions+1)
	cases := []struct {
		name string
		rows []serve.StepRow
		want string
	}{
		{"duplicate seq", []serve.StepRow{{Seq: 4, Model: lb, Tokens: []int32{1}}, {Seq: 4, Model: lb, Tokens: []int32{2}}}, "row 1: sequence 4"},
		{"no tokens", []serve.StepRow{{Seq: 5, Model: lb}}, "row 0: no tokens"},
		{"too long", []serve.StepRow{{Seq: 6, Model: lb, Tokens: long}}, "max_position_embeddings"},
		{"vocab", []serve.StepRow{{Seq: 7, Model: lb, Tokens: []int32{int32(f.Config.VocabSize)}}}, "outside vocabulary"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Logits(ctx, tc.rows)
			if err == nil || !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an invalid error containing %q", err, tc.want)
			}
		})
	}
	// A failed step leaves a good sequence usable.
	good := []serve.StepRow{{Seq: 8, Model: lb, Tokens: []int32{1, 2, 3}}}
	if _, err := e.Logits(ctx, good); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Logits(ctx, []serve.StepRow{{Seq: 8, Model: lb, Tokens: append([]int32{1, 2, 3}, long...)}}); err == nil {
		t.Fatal("overlong sequence accepted")
	}
	out, err := e.Logits(ctx, []serve.StepRow{{Seq: 8, Model: lb, Tokens: []int32{1, 2, 3, 4}}})
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, "after error", out[0], reference(t, f, f.Base, nil), []int32{1, 2, 3, 4})
}
