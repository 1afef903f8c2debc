//go:build long

package data

import (
	"bufio"
	"context"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var benchBytes = flag.Int64("data.bytes", 1<<30, "size of the generated file for TestImport1GB")

// TestImport1GB generates a JSONL file of -data.bytes (default 1 GiB) in a
// temp dir and imports it into a hashing, discarding sink, reporting
// records/s, MB/s and peak memory. Run:
//
//	go test -tags long -run TestImport1GB -v -timeout 60m ./internal/data/
func TestImport1GB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := writeSynthetic(f, *benchBytes, 1)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d records, %d bytes in %v", n, st.Size(), time.Since(start).Round(time.Millisecond))
	hwmBefore := vmHWM(t)

	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sink := &hashSink{}
	var cpuStart = cpuTime()
	start = time.Now()
	m, err := Import(context.Background(), bufio.NewReaderSize(in, 1<<20),
		ImportOptions{Name: "bench", Task: TaskClassify, FileName: "big.jsonl"}, sink)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	cpu := cpuTime() - cpuStart
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if m.Records != n || int64(sink.chunks) != int64(len(m.Chunks)) {
		t.Errorf("imported %d records in %d chunks; generated %d, sink got %d chunks", m.Records, len(m.Chunks), n, sink.chunks)
	}
	t.Logf("import: %d records, %d chunks, %d canonical bytes, wall %v, cpu %v",
		m.Records, len(m.Chunks), m.Bytes, wall.Round(time.Millisecond), cpu.Round(time.Millisecond))
	t.Logf("throughput: %.0f records/s, %.1f MB/s of input (wall); %.1f MB/s per CPU second",
		float64(m.Records)/wall.Seconds(), float64(st.Size())/1e6/wall.Seconds(), float64(st.Size())/1e6/cpu.Seconds())
	t.Logf("memory: VmHWM %s before import, %s after; Go heap sys %d MiB, total alloc %d MiB",
		hwmBefore, vmHWM(t), ms.HeapSys>>20, ms.TotalAlloc>>20)
	t.Logf("version %s, vocabulary %d, top unigram %+v", m.ID, m.Profile.Words.Vocabulary, m.Profile.Unigrams[0])
}

func vmHWM(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
