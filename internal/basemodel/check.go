package basemodel

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/hfconfig"
	"github.com/tailor-ml/tailor/internal/errs"
)

// checkTensors compares the checkpoint with the architecture's expected
// tensors and returns the parameter count and the weights' dtype.
func checkTensors(cfg engine.Config, got map[string]tensorRecord) (int64, string, error) {
	prefix := ""
	if cfg.Arch == hfconfig.GPT2 {
		prefix = gpt2Prefix(got)
	}
	specs := ExpectedTensors(cfg, prefix)
	known := make(map[string]TensorSpec, len(specs))
	var missing []string
	for _, s := range specs {
		known[s.Name] = s
		if _, ok := got[s.Name]; !ok && !s.Optional {
			missing = append(missing, s.Name)
		}
	}
	var unexpected []string
	for name := range got {
		if _, ok := known[name]; !ok {
			unexpected = append(unexpected, name)
		}
	}
	if len(missing) > 0 {
		return 0, "", errs.Invalid("%s checkpoint is missing tensors: %s", cfg.Arch, list(missing))
	}
	if len(unexpected) > 0 {
		return 0, "", errs.Invalid("%s checkpoint has unexpected tensors: %s", cfg.Arch, list(unexpected))
	}
	var params int64
	dtypes := map[string]bool{}
	for _, name := range sortedKeys(got) {
		t, s := got[name], known[name]
		if !slices.Equal(t.Info.Shape, s.Shape) {
			return 0, "", errs.Invalid("%s: tensor %q has shape %v, config.json implies %v", t.File, name, t.Info.Shape, s.Shape)
		}
		if s.Buffer {
			continue
		}
		if !t.Info.DType.Compute() {
			return 0, "", errs.Invalid("%s: tensor %q: dtype %s is not supported (supported: F32, F16, BF16)", t.File, name, t.Info.DType)
		}
		dtypes[string(t.Info.DType)] = true
		if name == "lm_head.weight" && cfg.TieEmbeddings {
			continue // tied: the embedding already counts
		}
		params += t.Info.Numel()
	}
	dtype := "mixed"
	if len(dtypes) == 1 {
		for d := range dtypes {
			dtype = d
		}
	}
	return params, dtype, nil
}

// list quotes up to five names and says how many there are in all.
func list(names []string) string {
	sort.Strings(names)
	q := make([]string, 0, 5)
	for i, n := range names {
		if i == 5 {
			break
		}
		q = append(q, fmt.Sprintf("%q", n))
	}
	s := strings.Join(q, ", ")
	if len(names) > 5 {
		s += fmt.Sprintf(" (%d in all)", len(names))
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortFiles(f []File) { sort.Slice(f, func(i, j int) bool { return f[i].Name < f[j].Name }) }

func sortStrings(s []string) { sort.Strings(s) }
