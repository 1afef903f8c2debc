package data

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

// addSeeds adds every fixture with the extension under testdata/good and bad.
func addSeeds(f *testing.F, ext string) {
	for _, dir := range []string{"good", "bad"} {
		paths, err := filepath.Glob(filepath.Join("testdata", dir, "*."+ext))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, strings.Contains(p, "sft"))
		}
	}
}

// checkRead runs a reader on fuzzed input: it must not panic, its errors
// must be invalid and name the file, and every record it yields must
// encode canonically and read back the same.
func checkRead(t *testing.T, read func(context.Context, *bytes.Reader, ReadOptions, func(Record, Pos) error) error, in []byte, sft bool, name string) {
	task := TaskClassify
	if sft {
		task = TaskSFT
	}
	enc := newCanonicalEncoder()
	err := read(context.Background(), bytes.NewReader(in), ReadOptions{Task: task, FileName: name, MaxRecordBytes: 4096},
		func(r Record, p Pos) error {
			if p.Line < 1 || p.Record < 1 {
				t.Fatalf("bad position %+v", p)
			}
			if err := enc.assignID(&r); err != nil {
				t.Fatal(err)
			}
			line, err := enc.encode(&r)
			if err != nil {
				t.Fatal(err)
			}
			back, err := decodeJSONLine(bytes.TrimSuffix(line, []byte("\n")), task, p, false)
			if err != nil {
				t.Fatalf("canonical line %q does not read back: %v", line, err)
			}
			line2, _ := enc.encode(&back)
			if !bytes.Equal(line, line2) {
				t.Fatalf("canonical form not stable: %q vs %q", line, line2)
			}
			return nil
		})
	if err == nil {
		return
	}
	if !errors.Is(err, errs.ErrInvalid) || !strings.HasPrefix(err.Error(), name+":") {
		t.Fatalf("error %q: want kind invalid naming %s", err, name)
	}
}

func FuzzReadJSONL(f *testing.F) {
	addSeeds(f, "jsonl")
	f.Fuzz(func(t *testing.T, in []byte, sft bool) {
		checkRead(t, func(ctx context.Context, r *bytes.Reader, o ReadOptions, fn func(Record, Pos) error) error {
			return ReadJSONL(ctx, r, o, fn)
		}, in, sft, "fuzz.jsonl")
	})
}

func FuzzReadCSV(f *testing.F) {
	addSeeds(f, "csv")
	f.Fuzz(func(t *testing.T, in []byte, sft bool) {
		checkRead(t, func(ctx context.Context, r *bytes.Reader, o ReadOptions, fn func(Record, Pos) error) error {
			return ReadCSV(ctx, r, o, fn)
		}, in, sft, "fuzz.csv")
	})
}
