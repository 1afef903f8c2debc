package reqlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func collect(t *testing.T, dir string, from int64) ([]Record, int64) {
	t.Helper()
	var out []Record
	next, err := (&Reader{Dir: dir}).ReadFrom(from, func(r Record) bool { out = append(out, r); return true })
	if err != nil {
		t.Fatal(err)
	}
	return out, next
}

func TestSamplingDeterministic(t *testing.T) {
	cases := []struct {
		rate   float64
		lo, hi int // accepted count of 10,000 ids
	}{{0, 0, 0}, {0.1, 900, 1100}, {0.5, 4800, 5200}, {1, 10000, 10000}}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.rate), func(t *testing.T) {
			a, err := Open(Options{Dir: t.TempDir(), SampleRate: c.rate})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := Open(Options{Dir: t.TempDir(), SampleRate: c.rate})
			n := 0
			for i := range 10000 {
				id := fmt.Sprintf("req-%d", i)
				first := a.Sampled(id)
				if b.Sampled(id) != first || a.Sampled(id) != first {
					t.Fatalf("sampling of %s is not deterministic", id)
				}
				if a.Sampled(id) {
					n++
				}
			}
			if n < c.lo || n > c.hi {
				t.Fatalf("rate %g sampled %d of 10000, want [%d, %d]", c.rate, n, c.lo, c.hi)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	cases := []struct {
		name, in, want string
		rules          []string
	}{
		{"email", "mail bob@example.com now", "mail [REDACTED] now", []string{`[\w.]+@[\w.]+`}},
		{"two rules", "card 4111-1111 and bob@x.io", "card [REDACTED] and [REDACTED]", []string{`\d{4}-\d{4}`, `\S+@\S+`}},
		{"none", "nothing here", "nothing here", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := Open(Options{Dir: dir, SampleRate: 1, Redact: c.rules})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Append(Record{Input: c.in, Output: c.in}); err != nil {
				t.Fatal(err)
			}
			w.Close()
			recs, _ := collect(t, dir, 1)
			if len(recs) != 1 || recs[0].Input != c.want || recs[0].Output != c.want {
				t.Fatalf("got %+v, want input and output %q", recs, c.want)
			}
			raw, _ := os.ReadFile(filepath.Join(dir, "requests-00000000000000000001.jsonl"))
			if len(c.rules) > 0 && strings.Contains(string(raw), c.in) {
				t.Fatalf("raw log holds the unredacted text: %s", raw)
			}
		})
	}
	if _, err := Open(Options{Dir: t.TempDir(), Redact: []string{"("}}); err == nil || !strings.Contains(err.Error(), "redact[0]") {
		t.Fatalf("bad rule: %v", err)
	}
}

func TestRotationOrderedReads(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	w, err := Open(Options{Dir: dir, SampleRate: 1, MaxSegmentBytes: 600, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		seq, err := w.Append(Record{RequestID: fmt.Sprint(i), Input: strings.Repeat("x", i)})
		if err != nil || seq != int64(i+1) {
			t.Fatalf("append %d: seq %d, %v", i, seq, err)
		}
	}
	w.Close()
	segs, _ := segments(dir)
	if len(segs) < 5 {
		t.Fatalf("%d segments, want rotation", len(segs))
	}
	for _, from := range []int64{1, 7, 23, 40, 41} {
		recs, next := collect(t, dir, from)
		if len(recs) != int(41-from) || next != 41 && len(recs) > 0 {
			t.Fatalf("from %d: %d records, next %d", from, len(recs), next)
		}
		for i, r := range recs {
			if r.Seq != from+int64(i) || r.RequestID != fmt.Sprint(from-1+int64(i)) || !r.Time.Equal(now) {
				t.Fatalf("from %d: record %d is %+v", from, i, r)
			}
		}
	}
	// Reopen: numbering continues after a torn last line is cut.
	last := segs[len(segs)-1].path
	f, _ := os.OpenFile(last, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":41,"inp`)
	f.Close()
	recs, _ := collect(t, dir, 1)
	if len(recs) != 40 {
		t.Fatalf("torn line: read %d records", len(recs))
	}
	w, err = Open(Options{Dir: dir, SampleRate: 1, MaxSegmentBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := w.Append(Record{RequestID: "after"}); err != nil || seq != 41 {
		t.Fatalf("after reopen: seq %d, %v", seq, err)
	}
	w.Close()
	recs, _ = collect(t, dir, 40)
	if len(recs) != 2 || recs[1].RequestID != "after" {
		t.Fatalf("after reopen: %+v", recs)
	}
}

func TestReadStops(t *testing.T) {
	dir := t.TempDir()
	w, _ := Open(Options{Dir: dir, SampleRate: 1})
	for range 5 {
		w.Append(Record{})
	}
	w.Close()
	n := 0
	next, err := (&Reader{Dir: dir}).ReadFrom(1, func(Record) bool { n++; return n < 2 })
	if err != nil || n != 2 || next != 3 {
		t.Fatalf("n %d next %d err %v", n, next, err)
	}
}

func TestMalformedRecordNamesLine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "requests-00000000000000000001.jsonl"), []byte("{\"seq\":1}\nnot json\n"), 0o644)
	_, err := (&Reader{Dir: dir}).ReadFrom(1, func(Record) bool { return true })
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "requests-00000000000000000001.jsonl") {
		t.Fatalf("err %v, want file and line 2", err)
	}
	if _, err := Open(Options{Dir: dir}); err == nil {
		t.Fatal("Open accepted a malformed last segment")
	}
}

func FuzzReadSegment(f *testing.F) {
	f.Add([]byte("{\"seq\":1,\"input\":\"a\"}\n{\"seq\":2}\n"))
	f.Add([]byte("{\"seq\":1}\n{\"se"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "requests-00000000000000000001.jsonl"), b, 0o644)
		_, err := (&Reader{Dir: dir}).ReadFrom(1, func(Record) bool { return true })
		if err != nil && !strings.Contains(err.Error(), "line ") {
			t.Fatalf("error does not name the line: %v", err)
		}
	})
}
