package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

func manifestJSON(t *testing.T, m *Manifest) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImportTwiceIdentical(t *testing.T) {
	for _, file := range []string{"classify.jsonl", "classify.csv", "classify_mixed.jsonl", "sft.jsonl", "sft.csv"} {
		t.Run(file, func(t *testing.T) {
			task := TaskClassify
			if strings.HasPrefix(file, "sft") {
				task = TaskSFT
			}
			in := readFixture(t, "good/"+file)
			st1, st2 := newMemStore(), newMemStore()
			m1, err := importBytes(t, st1, file, task, in, nil)
			if err != nil {
				t.Fatal(err)
			}
			m2, err := importBytes(t, st2, file, task, in, nil)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := sha(manifestJSON(t, m1)), sha(manifestJSON(t, m2)); a != b {
				t.Errorf("manifest sha256 differs: %s vs %s", a, b)
			}
			// The version id is sha256 over the canonical stream: the chunks
			// concatenated, whatever the chunking.
			var stream bytes.Buffer
			for _, c := range m1.Chunks {
				stream.Write(st1.blobs[c.Digest])
			}
			if got := sha(stream.Bytes()); got != m1.ID {
				t.Errorf("ID %s, sha256 of chunks %s", m1.ID, got)
			}
			if int64(stream.Len()) != m1.Bytes {
				t.Errorf("Bytes %d, chunks hold %d", m1.Bytes, stream.Len())
			}
			m3, err := importBytes(t, newMemStore(), file, task, in, func(o *ImportOptions) { o.Chunking = Chunking{} })
			if err != nil {
				t.Fatal(err)
			}
			if m3.ID != m1.ID {
				t.Errorf("ID depends on chunking: %s vs %s", m3.ID, m1.ID)
			}
		})
	}
}

func TestImportCSVAndJSONLAgree(t *testing.T) {
	mj, err := importBytes(t, newMemStore(), "c.jsonl", TaskClassify, readFixture(t, "good/classify.jsonl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := importBytes(t, newMemStore(), "c.csv", TaskClassify, readFixture(t, "good/classify.csv"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if mj.ID != mc.ID || !reflect.DeepEqual(mj.Chunks, mc.Chunks) {
		t.Errorf("same records in JSONL and CSV give different versions: %s vs %s", mj.ID, mc.ID)
	}
	if want := []string{"sender"}; !reflect.DeepEqual(mc.Schema.Metadata, want) {
		t.Errorf("schema metadata %v, want %v", mc.Schema.Metadata, want)
	}
}

func TestImportDerivedIDsAndDuplicates(t *testing.T) {
	st := newMemStore()
	m, err := importBytes(t, st, "mixed.jsonl", TaskClassify, readFixture(t, "good/classify_mixed.jsonl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Lines 1 and 3 hold the same content (metadata keys in another order).
	if m.Records != 4 || m.DuplicatesDropped != 1 {
		t.Errorf("records %d dropped %d, want 4 and 1", m.Records, m.DuplicatesDropped)
	}
	var ids []string
	err = ReadRecords(context.Background(), st, m, "", func(r Record) error {
		ids = append(ids, r.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 4 || !strings.HasPrefix(ids[0], "c-") || len(ids[0]) != 34 || ids[2] != "17" {
		t.Errorf("ids %v", ids)
	}
}

func TestReadRecordsRoundTrip(t *testing.T) {
	st := newMemStore()
	in := readFixture(t, "good/sft.jsonl")
	m, err := importBytes(t, st, "sft.jsonl", TaskSFT, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []Record
	_ = ReadJSONL(context.Background(), bytes.NewReader(in), ReadOptions{Task: TaskSFT}, func(r Record, _ Pos) error {
		want = append(want, r)
		return nil
	})
	var got []Record
	if err := ReadRecords(context.Background(), st, m, "", func(r Record) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if want[i].ID == "" {
			want[i].ID = got[i].ID
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("record %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if err := ReadRecords(context.Background(), st, m, "dev", func(Record) error { return nil }); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("unknown split: err = %v", err)
	}
}

func TestReadRecordsDetectsCorruption(t *testing.T) {
	st := newMemStore()
	m, err := importBytes(t, st, "c.jsonl", TaskClassify, readFixture(t, "good/classify.jsonl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := m.Chunks[1].Digest
	st.blobs[d] = bytes.Replace(st.blobs[d], []byte(`"label":"`), []byte(`"label":"x`), 1)
	err = ReadRecords(context.Background(), st, m, "", func(Record) error { return nil })
	if !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), d) {
		t.Errorf("err = %v, want a conflict naming %s", err, d)
	}
}

func TestAppendReusesChunks(t *testing.T) {
	const base, extra = 2000, 50
	ctx := context.Background()
	st := newMemStore()
	mod := func(o *ImportOptions) { o.Chunking = Chunking{Bits: 5, MinRecords: 8, MaxRecords: 256} }
	mA, err := importBytes(t, st, "a.jsonl", TaskClassify, genClassify(0, base), mod)
	if err != nil {
		t.Fatal(err)
	}
	full := append(genClassify(0, base), genClassify(base, extra)...)
	mB, err := importBytes(t, st, "b.jsonl", TaskClassify, full, mod)
	if err != nil {
		t.Fatal(err)
	}
	if len(mA.Chunks) < 20 {
		t.Fatalf("only %d chunks; the test needs many", len(mA.Chunks))
	}
	// A fresh import of the longer file shares every chunk but A's last.
	n := len(mA.Chunks) - 1
	if !reflect.DeepEqual(mA.Chunks[:n], mB.Chunks[:n]) {
		t.Errorf("fresh import of the extended file does not reuse the first %d chunks", n)
	}
	if mA.Chunks[n] == mB.Chunks[n] {
		t.Errorf("A's last chunk was expected to change")
	}
	// Append: the parent's chunks as they are but its last, which the
	// input's end cut, so the chunks are the fresh import's.
	puts := st.puts
	mC, err := Import(ctx, bytes.NewReader(genClassify(base, extra)), ImportOptions{
		FileName: "feedback.jsonl", Append: mA, Src: st,
	}, st)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(mC.Chunks, mB.Chunks) {
		t.Errorf("append's chunks differ from a fresh import's of the same records")
	}
	if got := st.puts - puts; got != len(mC.Chunks)-n {
		t.Errorf("append wrote %d chunks, want only the %d new ones", got, len(mC.Chunks)-n)
	}
	if mC.ID != mB.ID || mC.Records != base+extra || mC.Parent != mA.ID {
		t.Errorf("appended version %s (%d records, parent %s), want %s (%d)", mC.ID, mC.Records, mC.Parent, mB.ID, base+extra)
	}
	if !reflect.DeepEqual(mC.Profile, mB.Profile) || mC.Split != mB.Split || mC.Name != "ds" || mC.Region != "eu" {
		t.Errorf("appended version's profile, split or tags differ from a fresh import")
	}
	// An id already in the parent is a duplicate.
	_, err = Import(ctx, bytes.NewReader(genClassify(base-1, 2)), ImportOptions{FileName: "f.jsonl", Append: mA, Src: st}, st)
	if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), `f.jsonl:1: field "id": duplicate id "r001999" (first at the parent version)`) {
		t.Errorf("err = %v", err)
	}
	// SkipExisting makes a retried append idempotent: the ids the parent
	// has are dropped, so the version is the one the first append made, and
	// a retry that brings nothing new gives back the parent itself.
	skip := func(in []byte) (*Manifest, error) {
		return Import(ctx, bytes.NewReader(in), ImportOptions{FileName: "f.jsonl", Append: mA, Src: st, SkipExisting: true}, st)
	}
	if m, err := skip(genClassify(base-1, extra+1)); err != nil || m.ID != mC.ID || m.Records != base+extra {
		t.Errorf("skip-existing append = %v, %v; want version %s", m, err, mC.ID)
	}
	if m, err := skip(genClassify(base-3, 3)); err != nil || m.ID != mA.ID {
		t.Errorf("skip-existing append of known records = %v, %v; want the parent %s", m, err, mA.ID)
	}
	dupIn := append(genClassify(base, 1), genClassify(base, 1)...)
	if _, err := skip(dupIn); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), `f.jsonl:2: field "id": duplicate id "r002000" (first at line 1)`) {
		t.Errorf("a duplicate within the input must still fail: %v", err)
	}
}

func TestSplitDeterministic(t *testing.T) {
	const n = 10000
	st := newMemStore()
	in := genClassify(0, n)
	ratios := SplitRatios{Train: 0.7, Validation: 0.2, Test: 0.1}
	m, err := importBytes(t, st, "s.jsonl", TaskClassify, in, func(o *ImportOptions) { o.Split = ratios })
	if err != nil {
		t.Fatal(err)
	}
	st2 := newMemStore()
	m2, err := importBytes(t, st2, "sub.jsonl", TaskClassify, genClassify(5000, 3000), func(o *ImportOptions) { o.Split = ratios })
	if err != nil {
		t.Fatal(err)
	}
	c := m.Split.Counts
	if c.Train+c.Validation+c.Test != n {
		t.Fatalf("counts %+v do not sum to %d", c, n)
	}
	for _, x := range []struct {
		name  string
		got   int64
		ratio float64
	}{{SplitTrain, c.Train, ratios.Train}, {SplitValidation, c.Validation, ratios.Validation}, {SplitTest, c.Test, ratios.Test}} {
		if frac := float64(x.got) / n; math.Abs(frac-x.ratio) > 0.02 {
			t.Errorf("%s: %.4f of records, want %.2f ± 0.02", x.name, frac, x.ratio)
		}
		seen := map[string]bool{}
		var k int64
		if err := ReadRecords(context.Background(), st, m, x.name, func(r Record) error {
			k++
			seen[r.ID] = true
			// SplitOf answers for an id what the import decided.
			if got := SplitOf(r.ID, ratios); got != x.name {
				t.Errorf("record %s is in %s; SplitOf says %s", r.ID, x.name, got)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if k != x.got {
			t.Errorf("%s: ReadRecords gave %d, manifest says %d", x.name, k, x.got)
		}
		// The same ids in another version (a subset, other neighbours) keep their split.
		if err := ReadRecords(context.Background(), st2, m2, x.name, func(r Record) error {
			if !seen[r.ID] {
				t.Errorf("record %s is in %s in the subset version only", r.ID, x.name)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDecodeManifest(t *testing.T) {
	m, err := importBytes(t, newMemStore(), "sft.jsonl", TaskSFT, readFixture(t, "good/sft.jsonl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := manifestJSON(t, m)
	back, err := DecodeManifest(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(manifestJSON(t, back), b) {
		t.Errorf("manifest does not survive a round trip")
	}
	for _, bad := range []string{`{`, `{"id":"x","task":"sft"}`, `{"id":"` + m.ID + `","task":"rank"}`} {
		if _, err := DecodeManifest(strings.NewReader(bad)); !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("DecodeManifest(%q) err = %v, want invalid", bad, err)
		}
	}
}
