// Package tailortest holds the fixtures that the tests driving the real
// tailor binary share: the binary built once per test binary, a
// deterministic two-class corpus a small model can learn, and a tiny
// seeded Llama-shaped base with a tokenizer trained on a text, and the
// start of a `tailor server` child up to its listening address.
//
// It is imported by tests only (e2e, e2e/history, e2e/replicas,
// internal/run/kube); it imports the engine's config, the tokenizer and
// internal/seedmodel.
package tailortest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/seedmodel"
)

// Build compiles cmd/tailor into dir/tailor and returns its path. The
// package path is the module's, so it works from any test's directory.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "tailor")
	// #nosec G204 -- the go tool with fixed arguments; bin is a path under the caller's temporary directory
	build := exec.Command("go", "build", "-o", bin, "github.com/tailor-ml/tailor/cmd/tailor")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build tailor: %w", err)
	}
	return bin, nil
}

// Main builds the binary into a temporary directory, sets *bin to its
// path, runs the tests and removes the directory: a TestMain body.
func Main(run func() int, bin *string) int {
	dir, err := os.MkdirTemp("", "tailor-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return run()
}

// Corpus is records from to to (exclusive) of a deterministic two-class
// dataset (JSON lines: id, text, label) whose classes differ in
// vocabulary: even records "ham", odd "spam".
func Corpus(from, to int) string {
	spam := []string{"win", "free", "money", "offer", "click", "prize", "cash", "deal"}
	ham := []string{"meeting", "notes", "project", "lunch", "report", "review", "team", "schedule"}
	var b strings.Builder
	for i := from; i < to; i++ {
		words, label := ham, "ham"
		if i%2 == 1 {
			words, label = spam, "spam"
		}
		text := fmt.Sprintf("%s %s %s about item %d", words[i%8], words[(i/2)%8], words[(i/3)%8], i)
		fmt.Fprintf(&b, "{\"id\":\"m%d\",\"text\":%q,\"label\":%q}\n", i, text, label)
	}
	return b.String()
}

// Size is the shape of a base WriteBase writes.
type Size struct {
	Vocab, Hidden, Layers, MaxPositions int
}

// Sizes of the bases the tests use: Micro (1 layer of 32, vocabulary 300)
// where a test trains many times, Small (2 layers of 64, vocabulary 400)
// where it needs a model that learns more.
var (
	Micro = Size{Vocab: 300, Hidden: 32, Layers: 1, MaxPositions: 64}
	Small = Size{Vocab: 400, Hidden: 64, Layers: 2, MaxPositions: 256}
)

// WriteBase writes a Llama-shaped base of size s into dir, with a
// tokenizer trained on text's lines, seeded (42) so every run of a test
// has the same weights.
func WriteBase(dir, text string, s Size) error {
	tok, err := tokenizer.Train(func(yield func(string) bool) {
		for _, l := range strings.Split(text, "\n") {
			if !yield(l) {
				return
			}
		}
	}, tokenizer.TrainOptions{VocabSize: s.Vocab, MinFrequency: 1, SpecialTokens: []string{"<|endoftext|>"}})
	if err != nil {
		return err
	}
	tj, err := tok.MarshalJSON()
	if err != nil {
		return err
	}
	heads := s.Hidden / 16
	cfg := engine.Config{Arch: "LlamaForCausalLM", VocabSize: tok.VocabSize(), Hidden: s.Hidden, Intermediate: 2 * s.Hidden, Layers: s.Layers,
		Heads: heads, KVHeads: max(1, heads/2), HeadDim: 16, MaxPositions: s.MaxPositions, RopeTheta: 10000, NormEps: 1e-5,
		Activation: "silu", BOSTokenID: -1, EOSTokenID: -1, TorchDtype: "float32"}
	return seedmodel.Write(dir, cfg, tj, 42)
}

// Log keeps the last bytes written to it (at most Max; when it grows past
// Max it drops down to the newest Max/2), safe for concurrent writers: a
// child process's output, for the test's failure messages.
type Log struct {
	Max int

	mu sync.Mutex
	b  []byte
}

func (w *Log) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.Max {
		w.b = append(w.b[:0], w.b[len(w.b)-w.Max/2:]...)
	}
	return len(p), nil
}

// Tail is the last n bytes kept, or all of them.
func (w *Log) Tail(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.b) > n {
		return string(w.b[len(w.b)-n:])
	}
	return string(w.b)
}

// Start starts cmd, a `tailor server` whose Stderr the caller has set, and
// waits up to timeout for the line "listening on ADDR" it prints on
// stdout. It returns ADDR and a channel (buffered, one value) that gets
// cmd.Wait's result. When the server exits first, or does not listen in
// time (it is then killed), the error says which; the caller adds its
// logs.
func Start(cmd *exec.Cmd, timeout time.Duration) (string, chan error, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	done := make(chan error, 1)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				select {
				case lines <- a:
				default:
				}
			}
		}
	}()
	go func() { done <- cmd.Wait() }()
	select {
	case addr := <-lines:
		return addr, done, nil
	case err := <-done:
		return "", nil, fmt.Errorf("server exited before listening: %v", err)
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return "", nil, fmt.Errorf("server did not listen within %s", timeout)
	}
}

// Stop ends a server Start started with SIGTERM, as an operator would,
// and waits for it to exit (done, Start's channel); after grace it kills
// it and waits for that.
func Stop(cmd *exec.Cmd, done <-chan error, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}
