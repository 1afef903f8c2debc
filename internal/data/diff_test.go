package data

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"testing"
)

func TestDiff(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	mod := func(o *ImportOptions) { o.Chunking = Chunking{Bits: 4, MinRecords: 4, MaxRecords: 64} }
	a, err := importBytes(t, st, "a.jsonl", TaskClassify, genClassify(0, 600), mod)
	if err != nil {
		t.Fatal(err)
	}
	// B: A without r000300..r000304, with r000450 relabelled, plus 20 new records.
	var in bytes.Buffer
	for i, line := range bytes.SplitAfter(genClassify(0, 600), []byte("\n")) {
		switch {
		case i >= 300 && i < 305:
		case i == 450:
			in.WriteString(`{"id":"r000450","text":"message number 450 about topic 8","label":"changed"}` + "\n")
		default:
			in.Write(line)
		}
	}
	in.Write(genClassify(600, 20))
	b, err := importBytes(t, st, "b.jsonl", TaskClassify, in.Bytes(), mod)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Diff(ctx, st, a, b)
	if err != nil {
		t.Fatal(err)
	}
	var added []string
	for i := 600; i < 610; i++ {
		added = append(added, fmt.Sprintf("r%06d", i))
	}
	want := &DiffResult{
		A: a.ID, B: b.ID, SharedChunks: got.SharedChunks,
		Added: 20, Removed: 5, Changed: 1,
		AddedExamples:   added,
		RemovedExamples: []string{"r000300", "r000301", "r000302", "r000303", "r000304"},
		ChangedExamples: []string{"r000450"},
		Profile:         a.Profile.Compare(b.Profile),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff = %+v\nwant %+v", got, want)
	}
	if got.SharedChunks < len(a.Chunks)/2 {
		t.Errorf("only %d of %d chunks shared; content-defined chunking should keep most", got.SharedChunks, len(a.Chunks))
	}
	if len(got.Profile.LabelsAdded) != 1 || got.Profile.LabelsAdded[0] != "changed" {
		t.Errorf("profile diff labels added %v", got.Profile.LabelsAdded)
	}
	same, err := Diff(ctx, st, a, a)
	if err != nil {
		t.Fatal(err)
	}
	if same.Added+same.Removed+same.Changed != 0 || same.SharedChunks != len(a.Chunks) {
		t.Errorf("self diff %+v", same)
	}
}
