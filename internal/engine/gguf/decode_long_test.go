//go:build long

package gguf_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/gguf"
	"github.com/tailor-ml/tailor/internal/engine/model"
)

// TestDecodeSpeedVsLlamaCpp measures single-stream greedy decode speed on
// models/tailor-tiny in one run: Tailor's Decoder (KV cache, one token
// per step, as /v1/completions decodes) and llama.cpp on the f32 and q8_0
// GGUF exports, each with the same thread count (TAILOR_BENCH_THREADS,
// default 1; llama.cpp gets it as threads {ideal, min} and maxThreads).
// The prompt is 16 tokens; the timed part is benchN decode steps after the
// first generated token. It logs tokens/s only; nothing is asserted.
//
//	go test -tags long -run TestDecodeSpeedVsLlamaCpp -v ./internal/engine/gguf/
func TestDecodeSpeedVsLlamaCpp(t *testing.T) {
	const benchN = 256
	threads := 1
	if s := os.Getenv("TAILOR_BENCH_THREADS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("TAILOR_BENCH_THREADS=%q: want a positive integer", s)
		}
		threads = n
	}
	prefix := llamacpp(t)
	tiny := loadTiny(t)
	prompt := tiny.tok.Encode("The quick brown fox jumps over the lazy dog. Once upon a time, there", true)[:16]
	dir := t.TempDir()

	job := llamaJob{Threads: threads}
	for _, dt := range []gguf.DType{gguf.F32, gguf.Q8_0} {
		p := writeGGUF(t, dir, "tiny-"+dt.String()+".gguf", tiny.cfg, tiny.weights, tiny.tokJSON, dt)
		job.Models = append(job.Models, llamaModel{Path: p, Bench: &llamaGreedy{Tokens: prompt, N: benchN}})
	}

	dec, err := model.NewDecoder(tiny.cfg, tiny.weights, model.DecoderOptions{Workers: threads, GEMM: gemm.New(threads)})
	if err != nil {
		t.Fatal(err)
	}
	tailor := func() float64 {
		row := []model.Row{{Tokens: prompt, Cache: dec.NewCache()}}
		lg, err := dec.Step(row) // prefill and the first token
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < benchN; i++ {
			row[0].Tokens = []int32{argmax(lg.Data)}
			if lg, err = dec.Step(row); err != nil {
				t.Fatal(err)
			}
		}
		return benchN / time.Since(start).Seconds()
	}
	tailor() // warm up
	var best float64
	for r := 0; r < 3; r++ {
		best = max(best, tailor())
	}
	res := runLlama(t, prefix, job)
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("models/tailor-tiny (%s), prompt %d tokens, %d decode steps, %d thread(s), GOMAXPROCS %d, load %s",
		filepath.Base(tinyDir), len(prompt), benchN, threads, runtime.GOMAXPROCS(0), string(load[:min(len(load), 14)]))
	t.Logf("tailor (f32, GEMM %T, best of 3): %.0f tok/s", gemm.New(threads), best)
	for i, dt := range []string{"f32", "q8_0"} {
		b := res.Models[i].Bench
		t.Logf("llama.cpp %v (%s, node-llama-cpp %s, best of 3): %.0f tok/s", res.LlamaCpp, dt, res.Version, float64(b.Decoded)/(b.DecodeMs/1000))
	}
}

func argmax(row []float32) int32 {
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	return int32(best)
}
