package train

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/reference"
)

// smallTrainer returns a trainer that has run a few steps, and its options.
func smallTrainer(t testing.TB, steps int) (*Trainer, Options) {
	opts := Options{Steps: 4, BatchSize: 3, GradAccum: 2, LR: 1e-2, Seed: 3}
	tr, err := New(newSoftmaxReg(9, 3, 1), modularData(3), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.Run(ctx, Hooks{OnStep: func(s StepInfo) {
		if s.Step == steps {
			cancel()
		}
	}})
	return tr, opts
}

func TestCheckpointLayout(t *testing.T) {
	tr, _ := smallTrainer(t, 2)
	var b bytes.Buffer
	if err := tr.WriteCheckpoint(&b); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	n := binary.LittleEndian.Uint64(raw)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	var meta map[string]string
	json.Unmarshal(header["__metadata__"], &meta)
	for key, want := range map[string]string{"format": checkpointFormat, "step": "2", "optimizer": "adamw", "options_sha256": tr.Options().Hash()} {
		if meta[key] != want {
			t.Errorf("metadata %s = %q, want %q", key, meta[key], want)
		}
	}
	wantTensors := []string{"param/linear.weight", "param/linear.bias", "optim/exp_avg/linear.weight",
		"optim/exp_avg_sq/linear.weight", "optim/exp_avg/linear.bias", "optim/exp_avg_sq/linear.bias"}
	size := 0
	for _, name := range wantTensors {
		var h tensorHeader
		if err := json.Unmarshal(header[name], &h); err != nil {
			t.Fatalf("tensor %s: %v", name, err)
		}
		size += int(h.DataOffsets[1] - h.DataOffsets[0])
	}
	if len(header) != len(wantTensors)+1 || uint64(len(raw)) != 8+n+uint64(size) {
		t.Errorf("checkpoint has %d header entries and %d bytes; want %d and %d", len(header), len(raw), len(wantTensors)+1, 8+int(n)+size)
	}
	// Keys are sorted in the header bytes (encoding/json sorts map keys).
	if i, j := bytes.Index(raw, []byte(`"__metadata__"`)), bytes.Index(raw, []byte(`"optim/`)); i > j {
		t.Error("header keys are not sorted")
	}
}

func TestResumeRejectsDamage(t *testing.T) {
	tr, opts := smallTrainer(t, 2)
	var b bytes.Buffer
	tr.WriteCheckpoint(&b)
	good := b.Bytes()
	n := int(binary.LittleEndian.Uint64(good))
	flip := func(i int) []byte { c := bytes.Clone(good); c[i] ^= 0x40; return c }
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "header length"},
		{"short header", good[:20], "header ("},
		{"huge header length", append([]byte{0, 0, 0, 0, 0, 0, 0, 1}, good[8:]...), "out of range"},
		{"truncated data", good[:len(good)-3], "data section"},
		{"flipped data byte", flip(len(good) - 1), "sha256"},
		{"trailing bytes", append(bytes.Clone(good), 0), "trailing bytes"},
		{"not json", append(append([]byte{}, good[:8]...), bytes.Repeat([]byte{'x'}, n)...), "header JSON"},
		{"step edited", bytes.Replace(good, []byte(`"step":"2"`), []byte(`"step":"9"`), 1), "metadata step"},
		{"rng edited", bytes.Replace(good, []byte(`"rng":"`), []byte(`"rng":"z`), 1), "metadata rng"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fresh, err := New(newSoftmaxReg(9, 3, 1), modularData(3), opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = fresh.Resume(bytes.NewReader(tc.in))
			if errs.Kind(err) != "invalid" || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want invalid mentioning %q", err, tc.want)
			}
		})
	}
}

// FuzzResume: arbitrary bytes never panic, and every refusal is a
// classified error with a message.
func FuzzResume(f *testing.F) {
	tr, opts := smallTrainer(f, 2)
	var b bytes.Buffer
	tr.WriteCheckpoint(&b)
	good := b.Bytes()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:8])
	f.Add([]byte{})
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}         "))
	f.Add([]byte("\x18\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{}}     "))
	f.Fuzz(func(t *testing.T, in []byte) {
		fresh, err := New(newSoftmaxReg(9, 3, 1), modularData(3), opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = fresh.Resume(bytes.NewReader(in))
		if err == nil {
			return
		}
		if k := errs.Kind(err); (k != "invalid" && k != "conflict") || !strings.HasPrefix(err.Error(), "resume checkpoint: ") {
			t.Fatalf("unclassified error %q (kind %s)", err, k)
		}
		if fresh.Step() != 0 {
			t.Fatal("a failed resume changed the step")
		}
	})
}

// TestCheckpointGolden pins the byte format: a fixed state must serialize to
// the sha256 in testdata/checkpoint_v1.sha256. Change the format version
// when this changes.
func TestCheckpointGolden(t *testing.T) {
	m := newBigram(3, 1)
	for i := range m.e.Data {
		m.e.Data[i] = float32(i)*0.25 - 1
	}
	tr, err := New(m, lmData(5, 3, 1), Options{Steps: 3, BatchSize: 2, Seed: 42}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tr.WriteCheckpoint(&b); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b.Bytes())
	got := hex.EncodeToString(sum[:])
	want, err := os.ReadFile("testdata/checkpoint_v1.sha256")
	if err != nil {
		t.Fatalf("%v (the current sha256 is %s)", err, got)
	}
	if got != strings.TrimSpace(string(want)) {
		t.Errorf("checkpoint sha256 %s, golden %s", got, want)
	}
}

// TestCheckpointReadableAsSafetensors reads a checkpoint with an
// independent Python/numpy safetensors parser when one is available.
func TestCheckpointReadableAsSafetensors(t *testing.T) {
	py := reference.Python(t, "numpy")
	tr, _ := smallTrainer(t, 3)
	path := filepath.Join(t.TempDir(), "ck.safetensors")
	var b bytes.Buffer
	tr.WriteCheckpoint(&b)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "testdata/read_checkpoint.py", path).Output()
	if err != nil {
		t.Fatalf("python reader: %v", err)
	}
	var got map[string][]float64
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	ents := tr.entries()
	if len(got) != len(ents) {
		t.Fatalf("python read %d tensors, want %d", len(got), len(ents))
	}
	for _, e := range ents {
		for i, v := range e.data {
			if got[e.name][i] != float64(v) {
				t.Fatalf("%s[%d]: python read %v, want %v", e.name, i, got[e.name][i], v)
			}
		}
	}
}
