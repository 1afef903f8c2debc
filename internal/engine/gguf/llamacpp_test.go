package gguf_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/gguf"
	"github.com/tailor-ml/tailor/internal/engine/hfconfig"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/reference"
)

const (
	llamacppDir = "../../../scripts/llamacpp"
	tinyDir     = "../../../models/tailor-tiny"
)

// edgeCorpus is what llama.cpp must tokenize exactly as Tailor does:
// digits, dates, e-mail addresses, whitespace runs, contractions,
// punctuation, unicode letters, numbers and spaces, emoji, and the special
// token in and around text.
var edgeCorpus = []string{
	"Date: Thu, 22 Aug 2002 14:54:25 +0100",
	"From: john.doe+lists@example.co.uk (John Doe) <jd@mail.example.com>",
	"3.14159 1,000,000 0x1F 2024-12-03 $19.99 -42 1e-5 12345678901234567890 007",
	"https://example.com/a/b?q=1&x=2#frag",
	"a  b   c\t\td\n\ne \r\n f",
	"   leading and trailing   ",
	"\n\n\n",
	"  \t \n  x",
	"I'm sure you're right; they've said he'll go, she'd stay. It's O'Neil's. I'M SHOUTING 'quoted'",
	"Hello!!! What?! ... --- ((nested)) [b] {c} <tags> #hash @at 50% ^caret &amp; *star* ~t~ `code` |pipe| \\back",
	"func main() {\n\tfmt.Println(\"hi\")\n}\n",
	"naïve café résumé Zürich — “quotes” ‘single’ «guillemets» …",
	"Ελληνικά русский 日本語の文章 한국어 עברית العربية ١٢٣ हिन्दी",
	"Ⅻ ½ ² ³ ٣ e\u0301 a\u00a0b c\u2009d e\u3000f g\u200bh",
	"👍🏽 👨\u200d👩\u200d👧 🇺🇸 😀😀😀 ☃️",
	"<|endoftext|>Hello<|endoftext|> world",
	"x<|endoftext|>y <|endoftext|>\n<|endoftext|><|endoftext|>",
	"< |endoftext|> <|endoftext| <|endoftextx|>",
	"The quick brown fox jumps over the lazy dog.",
}

// chatCorpus is rendered with the chat template and tokenized; the trained
// ChatML tokenizer has <|im_start|> and <|im_end|> as special tokens.
var chatCorpus = [][]tokenizer.Message{
	{{Role: "user", Content: "Hi there! What's 2+2?"}},
	{{Role: "system", Content: "You are terse."}, {Role: "user", Content: "Date: Thu, 22 Aug 2002"}, {Role: "assistant", Content: "OK.\n\n  Noted."}, {Role: "user", Content: "e-mail jd@example.com 👍"}},
}

// llamacpp installs the pinned node-llama-cpp and its prebuilt linux-x64
// binaries into the cache (once) and returns the install prefix. Optional
// dependencies (CUDA, Vulkan, other platforms) and install scripts are
// skipped: nothing is downloaded but the two packages' npm tarballs, and
// llama.cpp is never built.
func llamacpp(t testing.TB) string {
	t.Helper()
	reference.Node(t, "node-llama-cpp")
	raw, err := os.ReadFile(filepath.Join(llamacppDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Dependencies map[string]string }
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatal(err)
	}
	version := pkg.Dependencies["node-llama-cpp"]
	cache := os.Getenv("TAILOR_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache", "tailor")
	}
	prefix := filepath.Join(cache, "llamacpp-"+version)
	ok := true
	for _, p := range []string{"node-llama-cpp", "@node-llama-cpp/linux-x64"} {
		b, err := os.ReadFile(filepath.Join(prefix, "node_modules", p, "package.json"))
		ok = ok && err == nil && strings.Contains(string(b), `"version": "`+pkg.Dependencies[p]+`"`)
	}
	if ok {
		return prefix
	}
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"install", "--prefix", prefix, "--no-audit", "--no-fund", "--no-save", "--omit=optional", "--ignore-scripts"}
	for _, p := range []string{"node-llama-cpp", "@node-llama-cpp/linux-x64"} {
		args = append(args, p+"@"+pkg.Dependencies[p])
	}
	cmd := exec.Command("npm", args...)
	cmd.Env = append(os.Environ(), "NODE_LLAMA_CPP_SKIP_DOWNLOAD=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm %s: %v\n%s\n(needs the npm registry on first run)", strings.Join(args, " "), err, out)
	}
	return prefix
}

// llamaJob is check.js's input; llamaResult its output.
type llamaJob struct {
	Threads int          `json:"threads"`
	Models  []llamaModel `json:"models"`
}

type llamaModel struct {
	Path     string        `json:"path"`
	Tokenize []string      `json:"tokenize,omitempty"`
	Chat     []llamaChat   `json:"chat,omitempty"`
	Greedy   []llamaGreedy `json:"greedy,omitempty"`
	Bench    *llamaGreedy  `json:"bench,omitempty"`
}

type llamaChat struct {
	Messages            []tokenizer.Message `json:"messages"`
	AddGenerationPrompt bool                `json:"add_generation_prompt"`
}

type llamaGreedy struct {
	Tokens []int32 `json:"tokens"`
	N      int     `json:"n"`
	Rounds int     `json:"rounds,omitempty"` // bench only: best of (default 3)
}

type llamaResult struct {
	Version  string
	LlamaCpp any
	Threads  int
	Models   []struct {
		Pre        string
		Tokens     [][]int32
		Chat       []string
		Greedy     [][]int32
		GreedyText []string
		Bench      struct {
			PrefillAndFirstMs, DecodeMs float64
			Decoded                     int
			Tokens                      []int32 // the first generated token, then the timed ones
		}
	}
}

func runLlama(t testing.TB, prefix string, job llamaJob) llamaResult {
	t.Helper()
	jobPath := filepath.Join(t.TempDir(), "job.json")
	raw, _ := json.Marshal(job)
	if err := os.WriteFile(jobPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(llamacppDir, "check.js"), prefix, jobPath)
	cmd.Env = append(os.Environ(), "NODE_LLAMA_CPP_SKIP_DOWNLOAD=true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node check.js: %v\n%s", err, stderr.Bytes())
	}
	var res llamaResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("check.js output: %v\n%s", err, out)
	}
	if len(res.Models) != len(job.Models) {
		t.Fatalf("check.js answered for %d models, want %d", len(res.Models), len(job.Models))
	}
	return res
}

// tinyModel is models/tailor-tiny, loaded as Tailor serves it.
type tinyModel struct {
	cfg     engine.Config
	weights map[string]engine.Tensor
	tokJSON []byte
	tok     *tokenizer.Tokenizer
}

func loadTiny(t testing.TB) tinyModel {
	t.Helper()
	cj, err := os.ReadFile(filepath.Join(tinyDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := hfconfig.Parse(cj)
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.ReadFile(filepath.Join(tinyDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	tj, err := os.ReadFile(filepath.Join(tinyDir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(tj, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tinyModel{cfg: cfg, weights: w, tokJSON: tj, tok: tok}
}

// writeGGUF exports weights with a tokenizer.json as the app does, into dir.
func writeGGUF(t testing.TB, dir, name string, cfg engine.Config, w map[string]engine.Tensor, tokJSON []byte, dt gguf.DType) string {
	t.Helper()
	info, err := gguf.Vocab(tokJSON, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := gguf.WriteLlama(&b, cfg, w, info, dt); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// greedyPrompts are continued for greedyN tokens by both engines.
var greedyPrompts = []string{
	"The quick brown fox",
	"Once upon a time, there was a",
	"Date: Thu, 22 Aug 2002 14:54:25 +0100\nSubject: Re:",
	"In 1492, Columbus sailed",
}

const greedyN = 32

// TestLlamaCppMatchesTailor exports models/tailor-tiny as GGUF (f32, f16,
// q8_0) and checks real llama.cpp against Tailor on it: the edge corpus
// tokenizes to the same ids (also under every other pre-tokenizer the
// mapping accepts, on the same vocabulary), and greedy decoding at
// temperature 0 gives the same tokens and text for greedyN tokens on the
// f32 file, where both engines compute with the same weights. A small
// trained ChatML tokenizer checks the chat template and its special tokens.
func TestLlamaCppMatchesTailor(t *testing.T) {
	prefix := llamacpp(t)
	tiny := loadTiny(t)
	dir := t.TempDir()

	var job llamaJob
	job.Threads = 2
	type tokCase struct {
		name string
		tok  *tokenizer.Tokenizer
		text []string
	}
	var tokCases []tokCase
	for _, dt := range []gguf.DType{gguf.F32, gguf.F16, gguf.Q8_0} {
		m := llamaModel{Path: writeGGUF(t, dir, "tiny-"+dt.String()+".gguf", tiny.cfg, tiny.weights, tiny.tokJSON, dt), Tokenize: edgeCorpus}
		for _, p := range greedyPrompts {
			m.Greedy = append(m.Greedy, llamaGreedy{Tokens: tiny.tok.Encode(p, true), N: greedyN})
		}
		job.Models = append(job.Models, m)
		tokCases = append(tokCases, tokCase{"tailor-tiny " + dt.String(), tiny.tok, edgeCorpus})
	}
	for _, v := range gguf.PreTokenizerVariants[1:] {
		tj := gguf.WithPre(t, v.JSON, v.IgnoreMerges)
		tok, err := tokenizer.Load(tj, nil)
		if err != nil {
			t.Fatal(err)
		}
		job.Models = append(job.Models, llamaModel{Path: writeGGUF(t, dir, "pre-"+v.Name+".gguf", tiny.cfg, tiny.weights, tj, gguf.F16), Tokenize: edgeCorpus})
		tokCases = append(tokCases, tokCase{"pre-tokenizer " + v.Name, tok, edgeCorpus})
	}
	// The old export's pre-tokenizer, "default", must still disagree: the
	// check can tell a wrong declaration from a right one.
	wrongPre := len(job.Models)
	{
		info, err := gguf.Vocab(tiny.tokJSON, nil, tiny.cfg)
		if err != nil {
			t.Fatal(err)
		}
		info.Pre = "default"
		var b bytes.Buffer
		if err := gguf.WriteLlama(&b, tiny.cfg, tiny.weights, info, gguf.F16); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "pre-default.gguf")
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		job.Models = append(job.Models, llamaModel{Path: p, Tokenize: edgeCorpus[:1]})
	}
	// A seeded model over a trained tokenizer with the ChatML tokens: only
	// its tokenizer and template are compared.
	chatTok, chatCfg, chatW := chatModel(t)
	chatJSON, _ := chatTok.MarshalJSON()
	var rendered []string
	cm := llamaModel{Path: writeGGUF(t, dir, "chat.gguf", chatCfg, chatW, chatJSON, gguf.F16)}
	for _, msgs := range chatCorpus {
		for _, gen := range []bool{false, true} {
			s, err := chatTok.ApplyChat(msgs, gen)
			if err != nil {
				t.Fatal(err)
			}
			rendered = append(rendered, s)
			cm.Chat = append(cm.Chat, llamaChat{Messages: msgs, AddGenerationPrompt: gen})
		}
	}
	cm.Tokenize = append(append([]string{}, rendered...), edgeCorpus...)
	cm.Tokenize = append(cm.Tokenize, "<|im_start|><|im_end|><|endoftext|> <|im_start|>user")
	job.Models = append(job.Models, cm)
	tokCases = append(tokCases, tokCase{"chatml", chatTok, cm.Tokenize})

	res := runLlama(t, prefix, job)
	t.Logf("node-llama-cpp %s, llama.cpp %v", res.Version, res.LlamaCpp)

	t.Run("tokenize/default-pre-disagrees", func(t *testing.T) {
		want, got := tiny.tok.Encode(edgeCorpus[0], false), res.Models[wrongPre].Tokens[0]
		if slices.Equal(got, want) {
			t.Fatalf("with tokenizer.ggml.pre \"default\", llama.cpp still tokenizes %q as Tailor does: the check has lost its teeth", edgeCorpus[0])
		}
		t.Logf("pre \"default\": %q is %d tokens in llama.cpp, %d in Tailor", edgeCorpus[0], len(got), len(want))
	})
	for i, c := range tokCases {
		if i >= wrongPre {
			i++ // the models after the "default" one
		}
		got := res.Models[i]
		t.Run("tokenize/"+c.name, func(t *testing.T) {
			mismatches := 0
			for j, text := range c.text {
				want := c.tok.Encode(text, false)
				if !slices.Equal(got.Tokens[j], want) {
					mismatches++
					t.Errorf("%q (pre %s):\n  tailor    %d tokens %v\n  llama.cpp %d tokens %v", text, got.Pre, len(want), want, len(got.Tokens[j]), got.Tokens[j])
				}
			}
			t.Logf("%d texts, %d identical (pre-tokenizer %q)", len(c.text), len(c.text)-mismatches, got.Pre)
		})
	}
	t.Run("chat-template", func(t *testing.T) {
		got := res.Models[len(res.Models)-1].Chat
		for i, want := range rendered {
			if got[i] != want {
				t.Errorf("chat %d:\n  tailor    %q\n  llama.cpp %q", i, want, got[i])
			}
		}
	})
	// Tailor's greedy decode is the one /v1/completions runs at
	// temperature 0: Decoder steps with a KV cache, argmax, lowest id on a
	// tie. On the f32 file both engines hold the same weights, and every
	// token and the text must agree. f16 and q8_0 round the weights (and
	// llama.cpp rounds activations to match), so there the agreement is
	// only reported.
	dec, err := model.NewDecoder(tiny.cfg, tiny.weights, model.DecoderOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	var want [][]int32
	for _, g := range job.Models[0].Greedy {
		out, err := dec.Greedy([]model.Row{{Tokens: g.Tokens}}, greedyN)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, out[0])
	}
	t.Run("greedy-f32", func(t *testing.T) {
		for i, p := range greedyPrompts {
			got, gotText := res.Models[0].Greedy[i], res.Models[0].GreedyText[i]
			wantText := tiny.tok.Decode(want[i], false)
			if !slices.Equal(got, want[i]) || gotText != wantText {
				t.Errorf("%q:\n  tailor    %q %v\n  llama.cpp %q %v", p, wantText, want[i], gotText, got)
				continue
			}
			t.Logf("%q → %q (%d tokens identical)", p, wantText, len(got))
		}
	})
	for k, dt := range []string{"f16", "q8_0"} {
		same := 0
		for i := range greedyPrompts {
			got := res.Models[1+k].Greedy[i]
			n := 0
			for n < len(got) && n < len(want[i]) && got[n] == want[i][n] {
				n++
			}
			same += n
		}
		t.Logf("greedy %s: %d of %d tokens agree with Tailor's f32 before the first difference", dt, same, len(greedyPrompts)*greedyN)
	}
}

// chatModel returns a trained ChatML tokenizer and a seeded Llama model
// over it (random weights; only the tokenizer side is compared).
func chatModel(t testing.TB) (*tokenizer.Tokenizer, engine.Config, map[string]engine.Tensor) {
	t.Helper()
	corpus := strings.Repeat("Hello there! What's new? Date: Thu, 22 Aug 2002. Mail jd@example.com, 3.14 and 42. ", 4)
	tok, err := tokenizer.Train(func(yield func(string) bool) { yield(corpus) },
		tokenizer.TrainOptions{VocabSize: 320, MinFrequency: 1, SpecialTokens: []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{Arch: "LlamaForCausalLM", VocabSize: 320, Hidden: 32, Intermediate: 64, Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 32,
		MaxPositions: 256, RopeTheta: 10000, NormEps: 1e-5, Activation: "silu", BOSTokenID: -1, EOSTokenID: -1, TieEmbeddings: true}
	w := map[string]engine.Tensor{}
	seed := uint32(1)
	add := func(name string, shape ...int) {
		d := make([]float32, engine.Numel(shape))
		for i := range d {
			seed = seed*1664525 + 1013904223
			d[i] = float32(int32(seed>>8)%1000) / 10000
		}
		w[name] = engine.Tensor{Shape: shape, Data: d}
	}
	add("model.embed_tokens.weight", 320, 32)
	add("model.norm.weight", 32)
	for _, n := range []struct {
		name  string
		shape []int
	}{{"input_layernorm.weight", []int{32}}, {"post_attention_layernorm.weight", []int{32}}, {"self_attn.q_proj.weight", []int{32, 32}},
		{"self_attn.k_proj.weight", []int{32, 32}}, {"self_attn.v_proj.weight", []int{32, 32}}, {"self_attn.o_proj.weight", []int{32, 32}},
		{"mlp.gate_proj.weight", []int{64, 32}}, {"mlp.up_proj.weight", []int{64, 32}}, {"mlp.down_proj.weight", []int{32, 64}}} {
		add(fmt.Sprintf("model.layers.0.%s", n.name), n.shape...)
	}
	return tok, cfg, w
}
