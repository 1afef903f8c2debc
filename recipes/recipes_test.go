package recipes

import (
	"io/fs"
	"slices"
	"testing"

	"github.com/tailor-ml/tailor/internal/recipe"
)

// TestShippedRecipesParse: every shipped recipe parses and validates.
func TestShippedRecipesParse(t *testing.T) {
	names, err := fs.Glob(Files, "*.yaml")
	if err != nil || len(names) < 3 {
		t.Fatalf("recipes %v, %v", names, err)
	}
	for _, n := range names {
		src, _ := Read(n)
		r, err := recipe.Parse(n, src)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if err := r.Validate(recipe.ValidateOptions{}); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// TestIncrementalRecipe: the incremental spam recipe retrains model
// spam-lora from its champion with spam-lora.yaml's base and method.
func TestIncrementalRecipe(t *testing.T) {
	parse := func(n string) *recipe.Recipe {
		src, _ := Read(n)
		r, err := recipe.Parse(n, src)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	full, inc := parse("spam-lora.yaml"), parse("spam-lora-incremental.yaml")
	x := inc.Incremental
	if x == nil || inc.Name != full.Name || inc.Data.Dataset != "spam-lora-feedback" || x.From != "champion" ||
		x.Replay.Dataset != full.Data.Dataset || x.Replay.Ratio != 4 || x.Forgetting.Dataset != full.Data.Dataset ||
		x.Forgetting.Split != "test" || x.Forgetting.Metric != "macro_f1" || x.Forgetting.Epsilon != 0.02 || x.Forgetting.Confidence != 0.8 {
		t.Fatalf("incremental recipe %+v / %+v", inc, x)
	}
	if *inc.Base != *full.Base || inc.Method.LoRA.Rank != full.Method.LoRA.Rank || inc.Method.LoRA.Alpha != full.Method.LoRA.Alpha ||
		inc.Method.Head.Pooling != full.Method.Head.Pooling || !slices.Equal(inc.Method.LoRA.Targets, full.Method.LoRA.Targets) || inc.Train.MaxSeqLen != full.Train.MaxSeqLen || inc.Seed != full.Seed {
		t.Fatal("the incremental recipe must keep spam-lora.yaml's base, adapter shape, pooling, max_seq_len and seed")
	}
}
