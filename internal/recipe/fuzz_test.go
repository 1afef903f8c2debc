package recipe

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tailor-ml/tailor/internal/errs"
)

// FuzzParse checks that Parse never panics, that every error is Invalid,
// and that an accepted recipe's normalized form parses back to a fixed point.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(baseRecipe))
	f.Add([]byte("name: a\ntask: sft\nbase: m\ndata: {dataset: d}\ntrain: {weight_decay: -0.0, learning_rate: 1e-7}\nregion: local\n"))
	f.Add([]byte("name: a\ntask: classify\nbase: m\ndata: {dataset: d}\nincremental: {from: prod, replay: {dataset: s@v2, ratio: 0}, forgetting: {split: validation, metric: accuracy}}\nregion: local\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		r, err := Parse("f.yaml", src)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("error of kind %s: %v", errs.Kind(err), err)
			}
			return
		}
		n1, err := r.Normalize()
		if err != nil {
			t.Fatalf("Normalize of a parsed recipe: %v", err)
		}
		r2, err := Parse("n.yaml", n1)
		if err != nil {
			t.Fatalf("parse normalized: %v\n%s", err, n1)
		}
		n2, err := r2.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		if string(n1) != string(n2) {
			t.Fatalf("not a fixed point:\n%s\n---\n%s", n1, n2)
		}
	})
}

// FuzzParseSelector checks that accepted selectors round-trip through String.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"m", "m@v3", "m@3fa9c1e", "m@champion", "a/b@latest", "m@", "@", "m@v0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s)
		if err != nil {
			return
		}
		again, err := ParseSelector(sel.String())
		if err != nil || again != sel {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, sel, sel.String(), again, err)
		}
	})
}
