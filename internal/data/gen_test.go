package data

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/rand"
	"testing"
)

// writeSynthetic writes a classify JSONL file of about size bytes: Zipf
// words from a 20,000-word vocabulary, 5–200 words per text, 12 labels, ids
// on half the records and metadata on a third. It returns the record count.
func writeSynthetic(w io.Writer, size int64, seed int64) (int64, error) {
	rng := rand.New(rand.NewSource(seed))
	zipf := rand.NewZipf(rng, 1.1, 2, 19999)
	vocab := make([]string, 20000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%x", i*2654435761%1000003)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var written, n int64
	text := make([]byte, 0, 4096)
	for written < size {
		text = text[:0]
		for k := 5 + rng.Intn(196); k > 0; k-- {
			if len(text) > 0 {
				text = append(text, ' ')
			}
			text = append(text, vocab[zipf.Uint64()]...)
		}
		q, _ := json.Marshal(string(text))
		line := fmt.Sprintf(`{"text":%s,"label":"l%d"`, q, rng.Intn(12))
		if n%2 == 0 {
			line += fmt.Sprintf(`,"id":"doc-%d"`, n)
		}
		if n%3 == 0 {
			line += fmt.Sprintf(`,"metadata":{"source":"s%d","score":%d}`, rng.Intn(5), rng.Intn(100))
		}
		line += "}\n"
		k, err := bw.WriteString(line)
		if err != nil {
			return n, err
		}
		written += int64(k)
		n++
	}
	return n, bw.Flush()
}

// hashSink discards what it is given but hashes it, as a blob store would.
type hashSink struct {
	h      hash.Hash
	chunks int
	bytes  int64
}

func (s *hashSink) Put(_ context.Context, r io.Reader) (string, int64, error) {
	if s.h == nil {
		s.h = sha256.New()
	}
	s.h.Reset()
	n, err := io.Copy(s.h, r)
	s.chunks++
	s.bytes += n
	return fmt.Sprintf("sha256:%x", s.h.Sum(nil)), n, err
}

// BenchmarkImport imports a generated ~50 MB classify JSONL held in memory
// into a hashing sink; b.SetBytes makes it report MB/s of input. Compare runs
// with several -count runs, e.g.
//
//	go test -run '^$' -bench Import -benchtime 1x -count 6 ./internal/data/
//
// It also reports cpu-MB/s: input MB per CPU second of the process, steadier
// than wall time when other jobs share the cores.
func BenchmarkImport(b *testing.B) {
	var buf bytes.Buffer
	if _, err := writeSynthetic(&buf, 50_000_000, 1); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		_, err := Import(context.Background(), bytes.NewReader(buf.Bytes()), ImportOptions{Task: TaskClassify, Format: FormatJSONL}, &hashSink{})
		if err != nil {
			b.Fatal(err)
		}
	}
	// CPU seconds are steadier than wall time on a shared machine: cpu-MB/s
	// is input MB per CPU second of the whole process (all goroutines).
	if s := (cpuTime() - cpu).Seconds(); s > 0 {
		b.ReportMetric(float64(buf.Len())*float64(b.N)/1e6/s, "cpu-MB/s")
	}
}

// BenchmarkProfile feeds ~20 MB of generated records, decoded beforehand,
// to the profiler alone: the import's busiest goroutine.
func BenchmarkProfile(b *testing.B) {
	var buf bytes.Buffer
	if _, err := writeSynthetic(&buf, 20_000_000, 1); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	var recs []Record
	err := ReadJSONL(context.Background(), &buf, ReadOptions{Task: TaskClassify}, func(r Record, _ Pos) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		p := newProfiler(TaskClassify)
		for i := range recs {
			p.add(&recs[i])
		}
		p.finish()
	}
}
