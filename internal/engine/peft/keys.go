package peft

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Key is a parsed adapter tensor name.
type Key struct {
	// Module is the module path inside the base model, e.g.
	// "model.layers.0.self_attn.q_proj" or "transformer.h.3.attn.c_attn".
	Module string
	// Layer is the decoder layer index ("layers.N" or "h.N"), -1 if none.
	Layer int
	// Target is the module's own name, e.g. "q_proj" or "score".
	Target string
	// Part is "lora_A", "lora_B", or "" for a saved module's parameter.
	Part string
	// Param is "weight" or "bias".
	Param string
}

// Name returns the PEFT key for k.
func (k Key) Name() string {
	if k.Part != "" {
		return Prefix + k.Module + "." + k.Part + "." + k.Param
	}
	return Prefix + k.Module + "." + k.Param
}

// LoraNames returns the lora_A and lora_B keys of a module path.
func LoraNames(module string) (a, b string) {
	return Prefix + module + ".lora_A.weight", Prefix + module + ".lora_B.weight"
}

// ParseKey splits a PEFT key into its parts.
func ParseKey(name string) (Key, error) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return Key{}, errs.Invalid("tensor %q: name does not start with %q", name, Prefix)
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 2 || slices.Contains(parts, "") {
		return Key{}, errs.Invalid("tensor %q: name has no module path", name)
	}
	k := Key{Layer: -1, Param: parts[len(parts)-1]}
	parts = parts[:len(parts)-1]
	if last := parts[len(parts)-1]; last == "lora_A" || last == "lora_B" {
		if k.Param != "weight" {
			return Key{}, errs.Invalid("tensor %q: LoRA tensors end in .weight", name)
		}
		k.Part = last
		parts = parts[:len(parts)-1]
	} else if k.Param != "weight" && k.Param != "bias" {
		return Key{}, errs.Invalid("tensor %q: name must end in lora_A.weight, lora_B.weight, .weight or .bias", name)
	}
	if len(parts) == 0 {
		return Key{}, errs.Invalid("tensor %q: name has no module path", name)
	}
	for _, p := range parts {
		if strings.HasPrefix(p, "lora_") || p == "base_layer" || p == "modules_to_save" || p == "original_module" {
			return Key{}, errs.Invalid("tensor %q: unexpected component %q (adapter names carry no adapter name)", name, p)
		}
	}
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "layers" || parts[i] == "h" {
			n, err := strconv.Atoi(parts[i+1])
			if err != nil || n < 0 || n > 1<<20 || strconv.Itoa(n) != parts[i+1] {
				return Key{}, errs.Invalid("tensor %q: layer index %q is not a number", name, parts[i+1])
			}
			k.Layer = n
			break
		}
	}
	k.Module = strings.Join(parts, ".")
	k.Target = parts[len(parts)-1]
	return k, nil
}

// Validate checks an adapter's tensors against its config: every name
// parses; LoRA modules are targets and come in A/B pairs with A [r, in] and
// B [out, r]; other tensors belong to modules_to_save; data lengths match.
func Validate(a *Adapter) error {
	if err := a.Config.validate(); err != nil {
		return err
	}
	if len(a.Tensors) == 0 {
		return errs.Invalid("%s: holds no tensors", WeightsName)
	}
	names := make([]string, 0, len(a.Tensors))
	for n := range a.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	r := a.Config.R
	for _, n := range names {
		t := a.Tensors[n]
		bad := func(format string, args ...any) error {
			return errs.Invalid("%s: tensor %q: %s", WeightsName, n, fmt.Sprintf(format, args...))
		}
		k, err := ParseKey(n)
		if err != nil {
			return fmt.Errorf("%s: %w", WeightsName, err)
		}
		if numel(t.Shape) != len(t.Data) {
			return bad("shape %v does not match %d values", t.Shape, len(t.Data))
		}
		if k.Part == "" {
			if !slices.Contains(a.Config.ModulesToSave, k.Target) {
				return bad("module %q is neither a LoRA module nor in modules_to_save %v", k.Target, a.Config.ModulesToSave)
			}
			continue
		}
		if !slices.Contains(a.Config.TargetModules, k.Target) {
			return bad("module %q is not in target_modules %v", k.Target, a.Config.TargetModules)
		}
		if len(t.Shape) != 2 {
			return bad("shape %v is not 2-D", t.Shape)
		}
		an, bn := LoraNames(k.Module)
		if k.Part == "lora_A" {
			b, ok := a.Tensors[bn]
			if !ok {
				return bad("has no matching %q", bn)
			}
			if t.Shape[0] != r || t.Shape[1] <= 0 {
				return bad("shape %v, want [r=%d, in]", t.Shape, r)
			}
			if len(b.Shape) != 2 || b.Shape[1] != r || b.Shape[0] <= 0 {
				return errs.Invalid("%s: tensor %q: shape %v, want [out, r=%d]", WeightsName, bn, b.Shape, r)
			}
		} else if _, ok := a.Tensors[an]; !ok {
			return bad("has no matching %q", an)
		}
	}
	return nil
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		n *= d
	}
	return n
}
