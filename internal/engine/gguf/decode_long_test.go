//go:build long

package gguf_test

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tailor-ml/tailor/internal/engine/gemm"
	"github.com/tailor-ml/tailor/internal/engine/gguf"
	"github.com/tailor-ml/tailor/internal/engine/model"
)

// TestDecodeSpeedVsLlamaCpp measures single-stream greedy decode speed on
// models/tailor-tiny in one run: Tailor's Decoder (KV cache, one token
// per step, as /v1/completions decodes) and llama.cpp on the f32 and q8_0
// GGUF exports, at each thread count in TAILOR_BENCH_THREADS (a comma
// list, default "1,2"; llama.cpp gets it as threads {ideal, min} and
// maxThreads). The prompt is 16 tokens; the timed part is benchN decode
// steps after the first generated token.
//
// The engines take turns: each of TAILOR_BENCH_ROUNDS rounds (default 5)
// times Tailor once and then each GGUF once in a fresh llama.cpp process,
// so a change in the machine's load falls on both sides. It logs every
// round, the best tok/s of each side and the median of the per-round
// ratios. It fails if Tailor and llama.cpp on the f32 export generate
// different tokens (the comparison is of the same computation); speed is
// reported, never asserted.
//
//	go test -tags long -run TestDecodeSpeedVsLlamaCpp -v ./internal/engine/gguf/
func TestDecodeSpeedVsLlamaCpp(t *testing.T) {
	const benchN = 256
	threads := envInts(t, "TAILOR_BENCH_THREADS", "1,2")
	rounds := envInts(t, "TAILOR_BENCH_ROUNDS", "5")[0]
	prefix := llamacpp(t)
	tiny := loadTiny(t)
	prompt := tiny.tok.Encode("The quick brown fox jumps over the lazy dog. Once upon a time, there", true)[:16]
	dir := t.TempDir()
	dtypes := []gguf.DType{gguf.F32, gguf.Q8_0}
	var paths []string
	for _, dt := range dtypes {
		paths = append(paths, writeGGUF(t, dir, "tiny-"+dt.String()+".gguf", tiny.cfg, tiny.weights, tiny.tokJSON, dt))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	t.Logf("models/tailor-tiny, prompt %d tokens, %d decode steps, %d rounds, GOMAXPROCS %d, OPENBLAS_CORETYPE=%q, load at start %s",
		len(prompt), benchN, rounds, runtime.GOMAXPROCS(0), os.Getenv("OPENBLAS_CORETYPE"), strings.TrimSpace(string(load[:min(len(load), 14)])))

	for _, th := range threads {
		dec, err := model.NewDecoder(tiny.cfg, tiny.weights, model.DecoderOptions{Workers: th, GEMM: gemm.New(th)})
		if err != nil {
			t.Fatal(err)
		}
		tailor := func() (float64, []int32) {
			row := []model.Row{{Tokens: prompt, Cache: dec.NewCache()}}
			lg, err := dec.Step(row) // prefill and the first token
			if err != nil {
				t.Fatal(err)
			}
			toks := []int32{argmax(lg.Data)}
			start := time.Now()
			for i := 0; i < benchN; i++ {
				row[0].Tokens = toks[len(toks)-1:]
				if lg, err = dec.Step(row); err != nil {
					t.Fatal(err)
				}
				toks = append(toks, argmax(lg.Data))
			}
			return benchN / time.Since(start).Seconds(), toks
		}
		tailor() // warm up
		// Per engine (Tailor, llama.cpp f32, llama.cpp q8_0): every round's
		// tok/s, and Tailor's over llama.cpp's (index 0 unused).
		var best, ratios [3][]float64
		var version string
		var release any
		for r := 0; r < rounds; r++ {
			tps, toks := tailor()
			job := llamaJob{Threads: th}
			for _, p := range paths {
				job.Models = append(job.Models, llamaModel{Path: p, Bench: &llamaGreedy{Tokens: prompt, N: benchN, Rounds: 1}})
			}
			res := runLlama(t, prefix, job)
			version, release = res.Version, res.LlamaCpp
			line := fmt.Sprintf("threads %d round %d: tailor f32 %.0f tok/s", th, r+1, tps)
			best[0] = append(best[0], tps)
			for i, dt := range dtypes {
				b := res.Models[i].Bench
				lps := float64(b.Decoded) / (b.DecodeMs / 1000)
				best[i+1] = append(best[i+1], lps)
				ratios[i+1] = append(ratios[i+1], tps/lps)
				line += fmt.Sprintf(", llama.cpp %s %.0f tok/s", dt, lps)
				if dt == gguf.F32 && !slices.Equal(b.Tokens, toks) {
					t.Errorf("threads %d round %d: llama.cpp f32 generated %v, Tailor %v", th, r+1, b.Tokens, toks)
				}
			}
			t.Log(line)
		}
		t.Logf("threads %d: llama.cpp %v (node-llama-cpp %s); Tailor GEMM %s", th, release, version, gemm.New(th).Name())
		t.Logf("threads %d: best tok/s: tailor f32 %.0f, llama.cpp f32 %.0f, llama.cpp q8_0 %.0f; median ratio tailor/llama.cpp f32 %.2f, q8_0 %.2f",
			th, slices.Max(best[0]), slices.Max(best[1]), slices.Max(best[2]), median(ratios[1]), median(ratios[2]))
	}
	load, _ = os.ReadFile("/proc/loadavg")
	t.Logf("load at end %s", strings.TrimSpace(string(load[:min(len(load), 14)])))
}

// envInts reads a comma list of positive integers from the environment,
// def when unset.
func envInts(t *testing.T, name, def string) []int {
	s := os.Getenv(name)
	if s == "" {
		s = def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want positive integers separated by commas", name, s)
		}
		out = append(out, n)
	}
	return out
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
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
