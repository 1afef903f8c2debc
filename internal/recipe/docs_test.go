package recipe

import (
	"os"
	"strings"
	"testing"
)

// TestDocsExamples keeps docs/recipes.md honest: every yaml example in it
// parses, validates, and is byte-identical to a testdata/*.good.yaml file.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/recipes.md")
	if err != nil {
		t.Skipf("docs not present: %v", err)
	}
	blocks := yamlBlocks(string(doc))
	files := []string{"lora-classifier", "head-classifier", "sft", "pretrain-scratch", "incremental"}
	if len(blocks) < len(files) {
		t.Fatalf("docs/recipes.md has %d yaml examples, want at least %d", len(blocks), len(files))
	}
	for i, name := range files {
		t.Run(name, func(t *testing.T) {
			want := string(readTestdata(t, name+".good.yaml"))
			if blocks[i] != want {
				t.Errorf("example %d in docs/recipes.md differs from testdata/%s.good.yaml", i+1, name)
			}
			r, err := Parse("docs/recipes.md", []byte(blocks[i]))
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(ValidateOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func yamlBlocks(doc string) []string {
	var out []string
	for {
		start := strings.Index(doc, "```yaml\n")
		if start < 0 {
			return out
		}
		doc = doc[start+len("```yaml\n"):]
		end := strings.Index(doc, "```")
		if end < 0 {
			return out
		}
		out = append(out, doc[:end])
		doc = doc[end:]
	}
}
