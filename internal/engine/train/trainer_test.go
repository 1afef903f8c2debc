package train

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/errs"
)

// weightsSHA hashes the parameters as little-endian float32, in order.
func weightsSHA(m engine.Trainable) string {
	h := sha256.New()
	for _, p := range m.Params() {
		binary.Write(h, binary.LittleEndian, p.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// scenario is one training setup; model builds a fresh model whose initial
// weights depend on init.
type scenario struct {
	name  string
	model func(init uint64) engine.Trainable
	data  Dataset
	opts  Options
}

func scenarios() []scenario {
	return []scenario{
		{"mlp adamw cosine accum bucketing dropout", func(i uint64) engine.Trainable { return newMLP(15, 16, 5, 0.2, i) },
			modularData(5), Options{Steps: 24, BatchSize: 8, GradAccum: 3, LR: 5e-3, Schedule: "cosine",
				WarmupSteps: 3, WeightDecay: 0.01, GradClip: 1, Seed: 11, BucketWindow: 4}},
		{"bigram sgd linear packing accum", func(i uint64) engine.Trainable { return newBigram(9, i) },
			lmData(60, 9, 2), Options{Steps: 15, BatchSize: 3, GradAccum: 2, LR: 0.5, Schedule: "linear",
				Optimizer: "sgd", Momentum: 0.9, Seed: 3, MaxSeqLen: 12, Packing: true}},
		{"softmax epochs partial batches", func(i uint64) engine.Trainable { return newSoftmaxReg(15, 5, i) },
			modularData(5), Options{Epochs: 3, BatchSize: 7, GradAccum: 2, LR: 1e-2, Seed: 5, MaxSeqLen: 2}},
	}
}

// train runs sc to the end, optionally stopping after step stopAt and
// resuming in a fresh trainer (with differently initialised weights) from
// the checkpoint. It returns the final weights' sha256 and the final
// checkpoint bytes.
func train(t *testing.T, sc scenario, opts Options, stopAt int) (string, []byte) {
	t.Helper()
	m := sc.model(1)
	tr, err := New(m, sc.data, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stopAt > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := tr.Run(ctx, Hooks{OnStep: func(s StepInfo) {
			if s.Step == stopAt {
				cancel()
			}
		}})
		if !errors.Is(err, context.Canceled) || tr.Step() != stopAt {
			t.Fatalf("stop at %d: step %d, err %v", stopAt, tr.Step(), err)
		}
		var ck bytes.Buffer
		if err := tr.WriteCheckpoint(&ck); err != nil {
			t.Fatal(err)
		}
		m = sc.model(99)
		if tr, err = New(m, sc.data, opts, nil); err != nil {
			t.Fatal(err)
		}
		if err := tr.Resume(&ck); err != nil {
			t.Fatalf("resume at %d: %v", stopAt, err)
		}
	}
	var final []byte
	res, err := tr.Run(context.Background(), Hooks{OnCheckpoint: func(step int, write func(io.Writer) error) error {
		var b bytes.Buffer
		final = nil
		if err := write(&b); err != nil {
			return err
		}
		final = b.Bytes()
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != tr.TotalSteps() || math.IsNaN(res.Loss) {
		t.Fatalf("result %+v, total %d", res, tr.TotalSteps())
	}
	return weightsSHA(m), final
}

func TestRunDeterministicAndResumable(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			want, wantCk := train(t, sc, sc.opts, 0)
			if again, _ := train(t, sc, sc.opts, 0); again != want {
				t.Fatalf("two identical runs differ: %s vs %s", want, again)
			}
			probe, _ := New(sc.model(1), sc.data, sc.opts, nil)
			total := probe.TotalSteps()
			for _, k := range []int{1, 2, total / 2, total - 1} {
				got, gotCk := train(t, sc, sc.opts, k)
				if got != want {
					t.Errorf("stopped at step %d and resumed: weights %s, uninterrupted %s", k, got, want)
				}
				if !bytes.Equal(gotCk, wantCk) {
					t.Errorf("stopped at step %d and resumed: final checkpoint bytes differ", k)
				}
			}
			other := sc.opts
			other.Seed++
			if got, _ := train(t, sc, other, 0); got == want {
				t.Error("a different seed gave identical weights")
			}
		})
	}
}

// TestGradAccumMatchesLargeBatch: the loss is averaged over the tokens of
// the whole accumulated batch, so 2×4 micro-batches equal one batch of 8.
func TestGradAccumMatchesLargeBatch(t *testing.T) {
	data := lmData(64, 8, 9)
	run := func(bs, accum int) []float32 {
		m := newBigram(8, 1)
		tr, err := New(m, data, Options{Steps: 6, BatchSize: bs, GradAccum: accum, LR: 0.3, Optimizer: "sgd", Seed: 2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Run(context.Background(), Hooks{}); err != nil {
			t.Fatal(err)
		}
		return m.e.Data
	}
	big, small := run(8, 1), run(4, 2)
	var worst float64
	for i := range big {
		worst = math.Max(worst, math.Abs(float64(big[i]-small[i])))
	}
	if worst > 1e-6 {
		t.Errorf("batch 8 vs 2×4 accumulated: max abs diff %g", worst)
	}
}

func TestMLPLearnsModularSum(t *testing.T) {
	data := modularData(5)
	m := newMLP(15, 64, 5, 0.1, 7)
	tr, err := New(m, data, Options{Steps: 400, BatchSize: 16, LR: 1e-2, Schedule: "cosine", WarmupSteps: 20,
		WeightDecay: 0.01, GradClip: 5, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var first, last float64
	res, err := tr.Run(context.Background(), Hooks{OnStep: func(s StepInfo) {
		if s.Step == 1 {
			first = s.Loss
		}
		last = s.Loss
	}})
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	for _, ex := range data {
		if m.predict(ex) == ex.Label {
			correct++
		}
	}
	acc := float64(correct) / float64(len(data))
	t.Logf("steps %d, loss %.4f → %.4f, accuracy %.3f", res.Step, first, last, acc)
	if acc < 0.95 {
		t.Errorf("accuracy %.3f after %d steps, want >= 0.95", acc, res.Step)
	}
}

func TestHooksAndStepInfo(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { now = now.Add(time.Second); return now }
	data := lmData(40, 6, 1)
	tr, err := New(newBigram(6, 1), data, Options{Steps: 10, BatchSize: 4, LR: 0.1, Schedule: "linear",
		WarmupSteps: 2, CheckpointEvery: 4, Seed: 1, Clock: clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ckSteps []int
	var infos []StepInfo
	_, err = tr.Run(context.Background(), Hooks{
		OnStep: func(s StepInfo) { infos = append(infos, s) },
		OnCheckpoint: func(step int, write func(io.Writer) error) error {
			ckSteps = append(ckSteps, step)
			var b bytes.Buffer
			if err := write(&b); err != nil {
				return err
			}
			probe, _ := New(newBigram(6, 5), data, tr.Options(), nil)
			return probe.Resume(&b)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ckSteps) != "[4 8 10]" {
		t.Errorf("checkpoints at %v, want [4 8 10]", ckSteps)
	}
	for i, s := range infos {
		f, _ := LRFactor("linear", i, 2, 10)
		if s.Step != i+1 || s.TotalSteps != 10 || s.LR != 0.1*f || s.Tokens <= 0 || s.TokensPerSec <= 0 ||
			s.ETA < 0 || math.IsNaN(s.Loss) || s.GradNorm <= 0 {
			t.Errorf("step info %d: %+v", i, s)
		}
	}
	if last := infos[len(infos)-1]; last.ETA != 0 {
		t.Errorf("ETA at the last step = %v, want 0", last.ETA)
	}
}

// failing wraps a model and fails its n-th ForwardBackward call.
type failing struct {
	engine.Trainable
	calls, failAt int
}

func (f *failing) ForwardBackward(b engine.Batch) (float64, int, error) {
	f.calls++
	if f.calls == f.failAt {
		return 0, 0, errors.New("boom")
	}
	return f.Trainable.ForwardBackward(b)
}

func TestFailedStepLeavesStateUnchanged(t *testing.T) {
	m := &failing{Trainable: newBigram(6, 1), failAt: 6}
	tr, err := New(m, lmData(30, 6, 1), Options{Steps: 5, BatchSize: 2, GradAccum: 2, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var before []byte
	_, err = tr.Run(context.Background(), Hooks{OnStep: func(s StepInfo) {
		if s.Step == 2 {
			var b bytes.Buffer
			tr.WriteCheckpoint(&b)
			before = b.Bytes()
		}
	}})
	if err == nil || !strings.Contains(err.Error(), "step 3") || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want step 3 failure", err)
	}
	var after bytes.Buffer
	tr.WriteCheckpoint(&after)
	if !bytes.Equal(before, after.Bytes()) {
		t.Error("a failed step changed the trainer state")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		field string
	}{
		{"negative steps", Options{Steps: -1}, "steps"},
		{"negative batch", Options{BatchSize: -2}, "batch_size"},
		{"beta2 one", Options{Beta2: 1}, "beta2"},
		{"nan lr", Options{LR: math.NaN()}, "lr"},
		{"inf clip", Options{GradClip: math.Inf(1)}, "grad_clip"},
		{"bad schedule", Options{Schedule: "step"}, "schedule"},
		{"bad optimizer", Options{Optimizer: "adam"}, "optimizer"},
		{"packing without length", Options{Packing: true}, "packing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(newBigram(4, 1), lmData(4, 4, 1), tc.opts, nil)
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("err = %v, want invalid naming %q", err, tc.field)
			}
		})
	}
	if _, err := New(newBigram(4, 1), sliceData{}, Options{}, nil); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("empty dataset: err = %v", err)
	}
	bad := sliceData{{Tokens: []int32{1, 2}, LossMask: []bool{true}}}
	if _, err := New(newBigram(4, 1), bad, Options{}, nil); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "example 0") {
		t.Errorf("bad mask: err = %v", err)
	}
}

func TestResumeRefusesMismatch(t *testing.T) {
	data := modularData(3)
	base := Options{Steps: 6, BatchSize: 4, LR: 1e-2, Seed: 1}
	tr, _ := New(newMLP(9, 8, 3, 0, 1), data, base, nil)
	tr.Run(context.Background(), Hooks{})
	var ck bytes.Buffer
	tr.WriteCheckpoint(&ck)
	with := func(f func(*Options)) Options { o := base; f(&o); return o }
	tests := []struct {
		name  string
		model engine.Trainable
		opts  Options
		kind  error
		want  []string
	}{
		{"lr", newMLP(9, 8, 3, 0, 1), with(func(o *Options) { o.LR = 2e-2 }), errs.ErrConflict, []string{"lr (checkpoint 0.01, now 0.02)"}},
		{"seed and batch", newMLP(9, 8, 3, 0, 1), with(func(o *Options) { o.Seed = 2; o.BatchSize = 5 }), errs.ErrConflict, []string{"batch_size", "seed"}},
		{"optimizer", newMLP(9, 8, 3, 0, 1), with(func(o *Options) { o.Optimizer = "sgd" }), errs.ErrConflict, []string{"optimizer (checkpoint adamw, now sgd)"}},
		{"shape", newMLP(9, 10, 3, 0, 1), base, errs.ErrConflict, []string{`"param/fc1.weight"`, "[8 9]", "[10 9]"}},
		{"other model", newSoftmaxReg(9, 3, 1), base, errs.ErrConflict, []string{`"param/linear.weight": missing`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			other, err := New(tc.model, data, tc.opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			before := weightsSHA(tc.model)
			err = other.Resume(bytes.NewReader(ck.Bytes()))
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want kind %v", err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q does not mention %q", err, w)
				}
			}
			if weightsSHA(tc.model) != before || other.Step() != 0 {
				t.Error("a refused resume changed the trainer")
			}
		})
	}
}
