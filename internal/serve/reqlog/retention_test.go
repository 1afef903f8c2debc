package reqlog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dirBytes is the size of the segment files in dir, as the disk has them.
func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	segs, err := segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, s := range segs {
		st, err := os.Stat(s.path)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestRetentionBySize appends far more than MaxBytes: after every append
// the files hold at most MaxBytes, the newest records are all there and
// contiguous, at least half of MaxBytes survives, and numbering goes on
// across a reopen.
func TestRetentionBySize(t *testing.T) {
	const maxBytes = 8 << 10
	dir := t.TempDir()
	opts := Options{Dir: dir, SampleRate: 1, MaxBytes: maxBytes}
	w, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		if _, err := w.Append(Record{RequestID: fmt.Sprintf("req-%d", i), Input: strings.Repeat("x", i%50)}); err != nil {
			t.Fatal(err)
		}
		if got := dirBytes(t, dir); got > maxBytes {
			t.Fatalf("after record %d the log holds %d bytes, more than MaxBytes %d", i+1, got, maxBytes)
		}
	}
	recs, next := collect(t, dir, 1)
	if next != n+1 || len(recs) == 0 || recs[len(recs)-1].Seq != n {
		t.Fatalf("read %d records, next %d: the newest must survive", len(recs), next)
	}
	if recs[0].Seq == 1 {
		t.Fatal("nothing was deleted")
	}
	for i, r := range recs {
		if r.Seq != recs[0].Seq+int64(i) || r.RequestID != fmt.Sprintf("req-%d", r.Seq-1) {
			t.Fatalf("record %d: seq %d id %s: retention left a gap", i, r.Seq, r.RequestID)
		}
	}
	if got := dirBytes(t, dir); got < maxBytes/2-200 {
		t.Fatalf("the log keeps %d bytes, want at least about half of %d", got, maxBytes)
	}
	w.Close()
	w, err = Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := w.Append(Record{RequestID: "after"}); err != nil || seq != n+1 {
		t.Fatalf("after reopen: seq %d, %v", seq, err)
	}
	w.Close()
	if got := dirBytes(t, dir); got > maxBytes {
		t.Fatalf("after reopen the log holds %d bytes", got)
	}
}

// TestRetentionByAge appends one record an hour with MaxAge 10 h: no
// record younger than MaxAge is ever deleted and none outlives it by more
// than a tenth of it plus the step; an idle log empties with Prune alone,
// and the numbering survives an emptied log and a reopen.
func TestRetentionByAge(t *testing.T) {
	const maxAge = 10 * time.Hour
	dir := t.TempDir()
	c := &clock{t: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
	opts := Options{Dir: dir, SampleRate: 1, MaxAge: maxAge, Now: c.now}
	w, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		if _, err := w.Append(Record{RequestID: fmt.Sprintf("req-%d", i), Time: c.t}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Prune(); err != nil {
			t.Fatal(err)
		}
		recs, _ := collect(t, dir, 1)
		for _, r := range recs {
			if age := c.t.Sub(r.Time); age > maxAge+maxAge/10+time.Hour {
				t.Fatalf("at hour %d record %d is %s old, past MaxAge %s by more than a tenth and a step", i, r.Seq, age, maxAge)
			}
		}
		want := min(i+1, int(maxAge/time.Hour)+1) // records within MaxAge
		if young := countSince(recs, c.t.Add(-maxAge)); young != want {
			t.Fatalf("at hour %d: %d records within MaxAge, want %d", i, young, want)
		}
		c.t = c.t.Add(time.Hour)
	}
	// Idle: no appends, only Prune.
	c.t = c.t.Add(maxAge + maxAge/10)
	if removed, err := w.Prune(); err != nil || removed == 0 {
		t.Fatalf("idle prune removed %d segments, %v", removed, err)
	}
	if recs, _ := collect(t, dir, 1); len(recs) != 0 {
		t.Fatalf("an idle log past MaxAge still holds %d records", len(recs))
	}
	if seq, err := w.Append(Record{RequestID: "later", Time: c.t}); err != nil || seq != n+1 {
		t.Fatalf("after an emptied log: seq %d, %v", seq, err)
	}
	w.Close()
	// Reopened past MaxAge: Open prunes, and numbering goes on.
	c.t = c.t.Add(2 * maxAge)
	w, err = Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if recs, _ := collect(t, dir, 1); len(recs) != 0 {
		t.Fatalf("Open kept %d records past MaxAge", len(recs))
	}
	if seq, err := w.Append(Record{RequestID: "reopened", Time: c.t}); err != nil || seq != n+2 {
		t.Fatalf("after reopen: seq %d, %v", seq, err)
	}
	w.Close()
	if recs, _ := collect(t, dir, 1); len(recs) != 1 || recs[0].RequestID != "reopened" {
		t.Fatalf("after reopen: %+v", recs)
	}
}

func countSince(recs []Record, since time.Time) int {
	n := 0
	for _, r := range recs {
		if !r.Time.Before(since) {
			n++
		}
	}
	return n
}

// TestReadSkipsDeletedSegment: a segment deleted by retention after the
// reader listed it is skipped, not an error.
func TestReadSkipsDeletedSegment(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(Options{Dir: dir, SampleRate: 1, MaxSegmentBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.Append(Record{RequestID: fmt.Sprint(i)})
	}
	w.Close()
	segs, _ := segments(dir)
	if len(segs) != 3 {
		t.Fatalf("%d segments, want one per record", len(segs))
	}
	var got []int64
	_, err = (&Reader{Dir: dir}).ReadFrom(1, func(r Record) bool {
		if r.Seq == 1 {
			os.Remove(segs[1].path)
		}
		got = append(got, r.Seq)
		return true
	})
	if err != nil || len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("read %v, %v; want [1 3] and no error", got, err)
	}
}

func TestRetentionOptions(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"negative bytes", Options{MaxBytes: -1}, "must not be negative"},
		{"negative age", Options{MaxAge: -time.Second}, "must not be negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Dir = t.TempDir()
			if _, err := Open(c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want %q", err, c.want)
			}
		})
	}
}

func TestLastLine(t *testing.T) {
	long := strings.Repeat("y", 200<<10)
	cases := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"one", "a\n", "a"},
		{"two", "a\nb\n", "b"},
		{"torn tail", "a\nb", "a"},
		{"only torn", "abc", ""},
		{"empty last line", "a\n\n", ""},
		{"longer than a chunk", "a\n" + long + "\n", long},
		{"first line longer than a chunk", long + "\n", long},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := lastLine(strings.NewReader(c.in), int64(len(c.in)))
			if err != nil || string(got) != c.want {
				t.Fatalf("got %.40q, %v; want %.40q", got, err, c.want)
			}
		})
	}
}

// refLastLine is lastLine by splitting the whole input.
func refLastLine(b []byte) []byte {
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		return nil
	}
	return b[bytes.LastIndexByte(b[:end], '\n')+1 : end]
}

func FuzzLastLine(f *testing.F) {
	f.Add([]byte("a\nb\n"))
	f.Add([]byte("torn"))
	f.Add(bytes.Repeat([]byte("z\n"), 40<<10))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := lastLine(bytes.NewReader(b), int64(len(b)))
		if err != nil || !bytes.Equal(got, refLastLine(b)) {
			t.Fatalf("lastLine %q, %v; want %q", got, err, refLastLine(b))
		}
	})
}

// A closed segment's newest time is read from its last line at Open.
func TestClosedInfoReadsNewest(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	path := filepath.Join(dir, "requests-00000000000000000001.jsonl")
	body := fmt.Sprintf("{\"seq\":1,\"time\":%q}\n{\"seq\":2,\"time\":%q}\n", t0.Format(time.RFC3339), t0.Add(time.Hour).Format(time.RFC3339))
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := closedInfo(segment{path: path, first: 1})
	if err != nil || !info.newest.Equal(t0.Add(time.Hour)) || info.bytes != int64(len(body)) {
		t.Fatalf("info %+v, %v", info, err)
	}
}
