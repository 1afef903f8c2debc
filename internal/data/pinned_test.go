package data

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportSyntheticPinned pins the sha256 of the manifest (version id,
// chunk digests, profile, schema, split counts) of generated inputs, so a
// faster import cannot change a byte of its output. The pins were written by
// the implementation before the fast paths existed (-update rewrites them).
func TestImportSyntheticPinned(t *testing.T) {
	tests := []struct {
		name   string
		task   string
		gen    func(w io.Writer, size, seed int64) (int64, error)
		size   int64
		seed   int64
		chunks Chunking
	}{
		{"default_chunks", TaskClassify, writeSynthetic, 3 << 20, 1, Chunking{}},
		{"small_chunks", TaskClassify, writeSynthetic, 1 << 20, 7, smallChunks},
		{"rich_classify", TaskClassify, richGen(TaskClassify), 1 << 20, 11, Chunking{}},
		{"rich_sft", TaskSFT, richGen(TaskSFT), 1 << 20, 12, Chunking{}},
		{"rich_text", TaskText, richGen(TaskText), 512 << 10, 13, smallChunks},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in bytes.Buffer
			if _, err := tc.gen(&in, tc.size, tc.seed); err != nil {
				t.Fatal(err)
			}
			st := newMemStore()
			m, err := Import(context.Background(), &in, ImportOptions{Name: "pin", Task: tc.task, FileName: "pin.jsonl", Chunking: tc.chunks}, st)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			got := sha(b) + "\n"
			golden := filepath.Join("testdata", "pinned", tc.name+".manifest.sha256")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("manifest sha256 %s, pinned %s (version %s)", strings.TrimSpace(got), strings.TrimSpace(string(want)), m.ID)
			}
		})
	}
}

// richWords mix ASCII, accents, other scripts, emoji, digits, U+2028,
// punctuation and characters JSON must escape.
var richWords = []string{
	"the", "The", "THE", "of", "and", "naïve", "Straße", "café", `e\u0301`, "日本語", "данные", "😀", `x\u2028y`,
	"42", "3.14", "l'été", `\"quoted\"`, `back\\slash`, `tab\there`, `new\nline`, `\u00e9t\u00e9`, "<b>&amp;</b>",
	`\ud83d\ude00`, "ÀÉÎ", "ǅ", "١٢٣", "word", "words", "wörd", "-", "—", "$5", "a_b", "x/y", `\ud800x`, "\u2029",
}

// richGen returns a writer of JSONL lines of every shape the reader accepts
// for the task (text, label, prompt/completion and for sft messages;
// numbers, nulls, unknown fields, flat and nested metadata, escapes,
// spacing, repeated content), so pinned manifests cover both the fast paths
// and the encoding/json fallbacks.
func richGen(task string) func(w io.Writer, size, seed int64) (int64, error) {
	return func(w io.Writer, size, seed int64) (int64, error) { return writeRich(w, task, size, seed) }
}

func writeRich(w io.Writer, task string, size, seed int64) (int64, error) {
	rng := rand.New(rand.NewSource(seed))
	text := func() string {
		var b bytes.Buffer
		for k := 1 + rng.Intn(40); k > 0; k-- {
			if b.Len() > 0 {
				b.WriteString([]string{" ", " ", " ", ", ", "  ", "\\n", ". "}[rng.Intn(7)])
			}
			b.WriteString(richWords[rng.Intn(len(richWords))])
		}
		return b.String()
	}
	var written, n int64
	prev := ""
	for written < size {
		var line string
		switch {
		case prev != "" && rng.Intn(20) == 0 && (!strings.Contains(prev, `"id":`) || strings.Contains(prev, `"id":null`)):
			line = prev // same content again, no id: a dropped duplicate
		case task == TaskSFT && rng.Intn(3) == 0:
			line = fmt.Sprintf(`{"messages":[{"role":"system","content":"%s"},{"role":"user","content":"%s"},{"role":"assistant","content":"%s"}]}`, text(), text(), text())
		default:
			parts := []string{fmt.Sprintf(`"text":"%s"`, text()), fmt.Sprintf(`"prompt":"%s"`, text()), fmt.Sprintf(`"completion": "%s"`, text())}
			switch rng.Intn(4) {
			case 0:
				parts = append(parts, fmt.Sprintf(`"label":%d`, rng.Intn(9)))
			case 1:
				parts = append(parts, fmt.Sprintf(`"label":"%s"`, richWords[rng.Intn(8)]))
			case 2:
				parts = append(parts, fmt.Sprintf(`"label":%d.%d`, rng.Intn(3), rng.Intn(10)))
			default:
				parts = append(parts, `"label":"x"`)
			}
			switch rng.Intn(5) {
			case 0:
				parts = append(parts, fmt.Sprintf(`"id":%d`, n))
			case 1:
				parts = append(parts, fmt.Sprintf(`"id":"r-%d"`, n))
			case 2:
				parts = append(parts, `"id":null`)
			}
			switch rng.Intn(5) {
			case 0:
				parts = append(parts, fmt.Sprintf(`"metadata":{"src":"s%d","score":%d.5,"ok":true,"none":null}`, rng.Intn(3), rng.Intn(9)))
			case 1:
				parts = append(parts, fmt.Sprintf(`"metadata":{"deep":{"b":[1,"%s"],"a":1e3}}`, richWords[rng.Intn(len(richWords))]))
			case 2:
				parts = append(parts, fmt.Sprintf(`"source":"%s","rank":-%d`, richWords[rng.Intn(len(richWords))], rng.Intn(99)))
			case 3:
				parts = append(parts, `"metadata":{}`)
			}
			rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
			line = "{" + parts[0]
			for _, p := range parts[1:] {
				line += []string{",", ", ", " ,\t"}[rng.Intn(3)] + p
			}
			line += "}"
		}
		prev = line
		k, err := io.WriteString(w, line+"\n")
		if err != nil {
			return n, err
		}
		written += int64(k)
		n++
	}
	return n, nil
}

// TestProfilePipelineMatchesInline wants the same profile bytes whether the
// profiler runs inline or in its goroutines (records, then bigrams), for
// every task: the pipeline only moves work, in a fixed order.
func TestProfilePipelineMatchesInline(t *testing.T) {
	tests := []struct {
		task string
		gen  func(w io.Writer, size, seed int64) (int64, error)
	}{
		{TaskClassify, writeSynthetic}, {TaskClassify, richGen(TaskClassify)}, {TaskSFT, richGen(TaskSFT)}, {TaskText, richGen(TaskText)},
	}
	for _, tc := range tests {
		t.Run(tc.task, func(t *testing.T) {
			var in bytes.Buffer
			if _, err := tc.gen(&in, 1<<20, 21); err != nil {
				t.Fatal(err)
			}
			inline, pipe := newProfiler(tc.task), newProfilePipe(newProfiler(tc.task))
			defer pipe.stop()
			err := ReadJSONL(context.Background(), &in, ReadOptions{Task: tc.task}, func(r Record, _ Pos) error {
				inline.add(&r)
				pipe.add(&r, len(r.Text)+len(r.Prompt))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(inline.finish())
			b, _ := json.Marshal(pipe.finish())
			if !bytes.Equal(a, b) {
				t.Errorf("profiles differ:\ninline %s\npipe   %s", a, b)
			}
		})
	}
}
