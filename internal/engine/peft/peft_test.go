package peft

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/errs"
)

func filled(shape []int, seed float32) engine.Tensor {
	t := engine.Tensor{Shape: shape, Data: make([]float32, engine.Numel(shape))}
	for i := range t.Data {
		t.Data[i] = seed + float32(i)*0.001
	}
	return t
}

// llamaAdapter is a rank-4 adapter on q/v of a 2-layer model (hidden 16,
// kv 8) with a 3-class score head.
func llamaAdapter() *Adapter {
	a := &Adapter{Config: Config{R: 4, LoraAlpha: 16, LoraDropout: 0.05, TargetModules: []string{"v_proj", "q_proj"},
		BaseModelNameOrPath: "HuggingFaceTB/SmolLM-135M", TaskType: SeqCls, ModulesToSave: []string{"score"}},
		Tensors: map[string]engine.Tensor{}}
	for l := 0; l < 2; l++ {
		for _, m := range []struct {
			name    string
			in, out int
		}{{"q_proj", 16, 16}, {"v_proj", 16, 8}} {
			an, bn := LoraNames(fmt.Sprintf("model.layers.%d.self_attn.%s", l, m.name))
			a.Tensors[an] = filled([]int{4, m.in}, float32(l))
			a.Tensors[bn] = filled([]int{m.out, 4}, -float32(l))
		}
	}
	a.Tensors[Prefix+"score.weight"] = filled([]int{3, 16}, 0.5)
	return a
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a := llamaAdapter()
	if err := Write(filepath.Join(dir, "1"), a); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "2"), llamaAdapter()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ConfigName, WeightsName} {
		b1, _ := os.ReadFile(filepath.Join(dir, "1", name))
		b2, _ := os.ReadFile(filepath.Join(dir, "2", name))
		if len(b1) == 0 || sha256.Sum256(b1) != sha256.Sum256(b2) {
			t.Errorf("%s: writes differ", name)
		}
	}
	golden, _ := os.ReadFile("testdata/adapter_config.golden.json")
	got, _ := os.ReadFile(filepath.Join(dir, "1", ConfigName))
	if string(got) != string(golden) {
		t.Errorf("adapter_config.json differs from golden:\n%s", got)
	}
	back, err := Read(filepath.Join(dir, "1"))
	if err != nil {
		t.Fatal(err)
	}
	a.Config.TargetModules = []string{"q_proj", "v_proj"} // written sorted
	if !reflect.DeepEqual(back, a) {
		t.Fatal("adapter changed in the round trip")
	}
	h, err := safetensors.Open(filepath.Join(dir, "1", WeightsName))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Header.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", h.Header.Metadata)
	}
	if ti, ok := h.Header.Tensor("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"); !ok || !reflect.DeepEqual(ti.Shape, []int{8, 4}) {
		t.Errorf("lora_B entry %+v", ti)
	}
	if got := a.Config.Scale(); got != 4 {
		t.Errorf("scale %v", got)
	}
}

func TestParseKey(t *testing.T) {
	cases := []struct {
		name string
		want Key
		err  string
	}{
		{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", Key{Module: "model.layers.0.self_attn.q_proj", Layer: 0, Target: "q_proj", Part: "lora_A", Param: "weight"}, ""},
		{"base_model.model.transformer.h.11.attn.c_attn.lora_B.weight", Key{Module: "transformer.h.11.attn.c_attn", Layer: 11, Target: "c_attn", Part: "lora_B", Param: "weight"}, ""},
		{"base_model.model.score.bias", Key{Module: "score", Layer: -1, Target: "score", Param: "bias"}, ""},
		{"model.layers.0.q_proj.lora_A.weight", Key{}, "does not start with"},
		{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight", Key{}, `unexpected component "lora_A"`},
		{"base_model.model.model.layers.x.self_attn.q_proj.lora_A.weight", Key{}, `layer index "x"`},
		{"base_model.model.model.layers.01.self_attn.q_proj.lora_A.weight", Key{}, `layer index "01"`},
		{"base_model.model.q_proj.lora_A.bias", Key{}, "end in .weight"},
		{"base_model.model.score.scale", Key{}, "must end in"},
		{"base_model.model..weight", Key{}, "no module path"},
		{"base_model.model.lora_A.weight", Key{}, "no module path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := ParseKey(c.name)
			if c.err != "" {
				if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || k != c.want {
				t.Fatalf("ParseKey = %+v, %v", k, err)
			}
			if k.Name() != c.name {
				t.Errorf("Name() = %q", k.Name())
			}
		})
	}
}

func TestReadRejects(t *testing.T) {
	good, _ := MarshalConfig(llamaAdapter().Config)
	cfg := func(from, to string) []byte { return []byte(strings.Replace(string(good), from, to, 1)) }
	withTensors := func(edit func(map[string]engine.Tensor)) map[string]engine.Tensor {
		a := llamaAdapter()
		edit(a.Tensors)
		return a.Tensors
	}
	qa, qb := LoraNames("model.layers.0.self_attn.q_proj")
	cases := []struct {
		name    string
		config  []byte
		tensors map[string]engine.Tensor
		want    string
	}{
		{"peft type", cfg(`"LORA"`, `"IA3"`), nil, `adapter_config.json: field "peft_type": "IA3" is not supported`},
		{"rank zero", cfg(`"r": 4`, `"r": 0`), nil, `field "r": 0`},
		{"bias", cfg(`"bias": "none"`, `"bias": "all"`), nil, `field "bias": "all"`},
		{"task", cfg(`"SEQ_CLS"`, `"TOKEN_CLS"`), nil, `field "task_type": "TOKEN_CLS"`},
		{"regex targets", cfg(`"target_modules": [
    "q_proj",
    "v_proj"
  ]`, `"target_modules": ".*proj"`), nil, `field "target_modules": a regular expression`},
		{"rank pattern", cfg(`"rank_pattern": {}`, `"rank_pattern": {"q_proj": 8}`), nil, `field "rank_pattern"`},
		{"dora", cfg(`"use_dora": false`, `"use_dora": true`), nil, `field "use_dora"`},
		{"r type", cfg(`"r": 4`, `"r": "4"`), nil, `field "r": has JSON type string`},
		{"A wrong rank", nil, withTensors(func(m map[string]engine.Tensor) { m[qa] = filled([]int{2, 16}, 0) }), `tensor "` + qa + `": shape [2 16], want [r=4, in]`},
		{"B wrong rank", nil, withTensors(func(m map[string]engine.Tensor) { m[qb] = filled([]int{16, 2}, 0) }), `tensor "` + qb + `": shape [16 2], want [out, r=4]`},
		{"B missing", nil, withTensors(func(m map[string]engine.Tensor) { delete(m, qb) }), `has no matching "` + qb + `"`},
		{"A missing", nil, withTensors(func(m map[string]engine.Tensor) { delete(m, qa) }), `has no matching "` + qa + `"`},
		{"not a target", nil, withTensors(func(m map[string]engine.Tensor) {
			a, b := LoraNames("model.layers.0.mlp.up_proj")
			m[a], m[b] = filled([]int{4, 16}, 0), filled([]int{24, 4}, 0)
		}), `module "up_proj" is not in target_modules`},
		{"not saved", nil, withTensors(func(m map[string]engine.Tensor) { m[Prefix+"lm_head.weight"] = filled([]int{2}, 0) }), `module "lm_head" is neither`},
		{"bad name", nil, withTensors(func(m map[string]engine.Tensor) { m["score.weight"] = filled([]int{2}, 0) }), `adapter_model.safetensors: tensor "score.weight": name does not start with`},
		{"3-D", nil, withTensors(func(m map[string]engine.Tensor) { m[qa] = filled([]int{4, 4, 4}, 0) }), `is not 2-D`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.config == nil {
				c.config = good
			}
			if c.tensors == nil {
				c.tensors = llamaAdapter().Tensors
			}
			os.WriteFile(filepath.Join(dir, ConfigName), c.config, 0o644)
			if err := safetensors.WriteFile(filepath.Join(dir, WeightsName), c.tensors); err != nil {
				t.Fatal(err)
			}
			_, err := Read(dir)
			if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %v\nwant %q", err, c.want)
			}
		})
	}
	if _, err := Read(t.TempDir()); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("empty folder: %v", err)
	}
}

func TestGPT2FanInFanOut(t *testing.T) {
	a := &Adapter{Config: Config{R: 2, LoraAlpha: 4, TargetModules: []string{"c_attn"}, TaskType: CausalLM, FanInFanOut: true},
		Tensors: map[string]engine.Tensor{}}
	an, bn := LoraNames("transformer.h.0.attn.c_attn")
	a.Tensors[an], a.Tensors[bn] = filled([]int{2, 8}, 1), filled([]int{24, 2}, 2)
	dir := t.TempDir()
	if err := Write(dir, a); err != nil {
		t.Fatal(err)
	}
	back, err := Read(dir)
	if err != nil || !back.Config.FanInFanOut || !reflect.DeepEqual(back.Tensors, a.Tensors) {
		t.Fatalf("round trip: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	good, _ := MarshalConfig(llamaAdapter().Config)
	f.Add(good)
	f.Add([]byte(`{"peft_type":"LORA","r":8,"lora_alpha":16,"target_modules":["c_attn"],"task_type":"CAUSAL_LM","bias":"none"}`))
	f.Add([]byte(`{"peft_type":"LORA","target_modules":"q_proj"}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := ParseConfig(src)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatalf("kind %s: %v", errs.Kind(err), err)
			}
			return
		}
		out, err := MarshalConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(out)
		if err != nil {
			t.Fatal(err)
		}
		out2, _ := MarshalConfig(again)
		if string(out) != string(out2) {
			t.Fatal("MarshalConfig not stable")
		}
	})
}

func FuzzParseKey(f *testing.F) {
	f.Add("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
	f.Add("base_model.model.score.bias")
	f.Add("base_model.model.transformer.h.3.mlp.c_fc.lora_B.weight")
	f.Fuzz(func(t *testing.T, name string) {
		k, err := ParseKey(name)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalid) {
				t.Fatal(err)
			}
			return
		}
		if k.Name() != name {
			t.Fatalf("Name() = %q, input %q", k.Name(), name)
		}
	})
}
