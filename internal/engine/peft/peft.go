// Package peft reads and writes LoRA adapters in the Hugging Face PEFT
// layout: a folder holding adapter_config.json and
// adapter_model.safetensors, whose keys are the base model's module paths
// under "base_model.model." followed by ".lora_A.weight" ([r, in]) or
// ".lora_B.weight" ([out, r]), plus whole saved modules (modules_to_save,
// e.g. a classification "score" head) under the same prefix.
//
// Writes are deterministic: the same Adapter gives the same bytes (sorted
// JSON keys, sorted target lists, safetensors with sorted keys). Reads
// validate the config and every tensor name and shape, with errors naming the
// file, field or tensor.
//
// This package imports only internal/errs, internal/engine and
// internal/engine/safetensors.
package peft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
	"github.com/tailor-ml/tailor/internal/errs"
)

// File names inside an adapter folder.
const (
	ConfigName  = "adapter_config.json"
	WeightsName = "adapter_model.safetensors"
)

// Task types PEFT names.
const (
	CausalLM = "CAUSAL_LM"
	SeqCls   = "SEQ_CLS"
)

// Prefix starts every adapter key: PEFT wraps the base model twice
// (PeftModel.base_model = LoraModel, LoraModel.model = the HF model).
const Prefix = "base_model.model."

// Config is adapter_config.json for a LoRA adapter.
type Config struct {
	R                   int      // rank
	LoraAlpha           float64  // scale = LoraAlpha / R (or / sqrt(R) with UseRSLoRA)
	LoraDropout         float64  // training only
	TargetModules       []string // module names, e.g. q_proj, v_proj (GPT-2: c_attn)
	BaseModelNameOrPath string
	TaskType            string   // CAUSAL_LM or SEQ_CLS
	ModulesToSave       []string // whole modules stored with the adapter, e.g. score
	FanInFanOut         bool     // true for GPT-2's Conv1D layers ([in, out] weights)
	UseRSLoRA           bool
}

// Adapter is a LoRA adapter: its config and its tensors keyed by PEFT name.
type Adapter struct {
	Config  Config
	Tensors map[string]engine.Tensor
}

// Scale returns the factor the LoRA product B·A is multiplied by.
func (c Config) Scale() float64 {
	if c.UseRSLoRA {
		return c.LoraAlpha / math.Sqrt(float64(c.R))
	}
	return c.LoraAlpha / float64(c.R)
}

// fileConfig is the JSON shape PEFT writes (LoraConfig.to_dict, sorted).
type fileConfig struct {
	AlphaPattern        map[string]any  `json:"alpha_pattern"`
	AutoMapping         any             `json:"auto_mapping"`
	BaseModelNameOrPath string          `json:"base_model_name_or_path"`
	Bias                string          `json:"bias"`
	FanInFanOut         bool            `json:"fan_in_fan_out"`
	InferenceMode       bool            `json:"inference_mode"`
	InitLoraWeights     bool            `json:"init_lora_weights"`
	LayersPattern       any             `json:"layers_pattern"`
	LayersToTransform   any             `json:"layers_to_transform"`
	LoraAlpha           float64         `json:"lora_alpha"`
	LoraDropout         float64         `json:"lora_dropout"`
	ModulesToSave       []string        `json:"modules_to_save"`
	PeftType            string          `json:"peft_type"`
	R                   int             `json:"r"`
	RankPattern         map[string]any  `json:"rank_pattern"`
	Revision            any             `json:"revision"`
	TargetModules       json.RawMessage `json:"target_modules"`
	TaskType            string          `json:"task_type"`
	UseDora             bool            `json:"use_dora"`
	UseRSLoRA           bool            `json:"use_rslora"`
}

// MarshalConfig encodes c as PEFT writes adapter_config.json: sorted keys,
// two-space indent, lists sorted.
func MarshalConfig(c Config) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	targets := slices.Clone(c.TargetModules)
	sort.Strings(targets)
	tm, _ := json.Marshal(targets)
	fc := fileConfig{
		AlphaPattern:        map[string]any{},
		BaseModelNameOrPath: c.BaseModelNameOrPath,
		Bias:                "none",
		FanInFanOut:         c.FanInFanOut,
		InferenceMode:       true,
		InitLoraWeights:     true,
		LoraAlpha:           c.LoraAlpha,
		LoraDropout:         c.LoraDropout,
		PeftType:            "LORA",
		R:                   c.R,
		RankPattern:         map[string]any{},
		TargetModules:       tm,
		TaskType:            c.TaskType,
		UseRSLoRA:           c.UseRSLoRA,
	}
	if len(c.ModulesToSave) > 0 {
		fc.ModulesToSave = slices.Clone(c.ModulesToSave)
		sort.Strings(fc.ModulesToSave)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(fc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func fieldErr(field, format string, args ...any) error {
	return errs.Invalid("%s: field %q: %s", ConfigName, field, fmt.Sprintf(format, args...))
}

// ParseConfig decodes adapter_config.json, accepting LoRA adapters the
// engine can apply: bias "none", no per-module rank or alpha patterns, no
// DoRA, target_modules given as a list.
func ParseConfig(src []byte) (Config, error) {
	var fc fileConfig
	if err := json.Unmarshal(src, &fc); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
			return Config{}, fieldErr(te.Field, "has JSON type %s, want %s", te.Value, te.Type)
		}
		return Config{}, errs.Invalid("%s: %v", ConfigName, err)
	}
	switch {
	case fc.PeftType != "LORA":
		return Config{}, fieldErr("peft_type", "%q is not supported (supported: LORA)", fc.PeftType)
	case fc.Bias != "none":
		return Config{}, fieldErr("bias", "%q is not supported (supported: none)", fc.Bias)
	case len(fc.RankPattern) > 0:
		return Config{}, fieldErr("rank_pattern", "per-module ranks are not supported")
	case len(fc.AlphaPattern) > 0:
		return Config{}, fieldErr("alpha_pattern", "per-module alphas are not supported")
	case fc.UseDora:
		return Config{}, fieldErr("use_dora", "DoRA is not supported")
	case fc.LayersToTransform != nil:
		return Config{}, fieldErr("layers_to_transform", "is not supported; adapt every layer")
	}
	c := Config{
		R: fc.R, LoraAlpha: fc.LoraAlpha, LoraDropout: fc.LoraDropout,
		BaseModelNameOrPath: fc.BaseModelNameOrPath, TaskType: fc.TaskType,
		ModulesToSave: fc.ModulesToSave, FanInFanOut: fc.FanInFanOut, UseRSLoRA: fc.UseRSLoRA,
	}
	if len(fc.TargetModules) > 0 && fc.TargetModules[0] == '"' {
		return Config{}, fieldErr("target_modules", "a regular expression is not supported; list the module names")
	}
	if err := json.Unmarshal(fc.TargetModules, &c.TargetModules); err != nil {
		return Config{}, fieldErr("target_modules", "must be a list of module names")
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch {
	case c.R <= 0 || c.R > 1<<16:
		return fieldErr("r", "%d must be between 1 and 65536", c.R)
	case !(c.LoraAlpha > 0):
		return fieldErr("lora_alpha", "%v must be > 0", c.LoraAlpha)
	case !(c.LoraDropout >= 0 && c.LoraDropout < 1):
		return fieldErr("lora_dropout", "%v must be in [0, 1)", c.LoraDropout)
	case c.TaskType != CausalLM && c.TaskType != SeqCls:
		return fieldErr("task_type", "%q is not supported (supported: CAUSAL_LM, SEQ_CLS)", c.TaskType)
	case len(c.TargetModules) == 0:
		return fieldErr("target_modules", "is empty")
	}
	for _, list := range []struct {
		field string
		names []string
	}{{"target_modules", c.TargetModules}, {"modules_to_save", c.ModulesToSave}} {
		seen := map[string]bool{}
		for _, m := range list.names {
			if m == "" || strings.ContainsAny(m, ". \t\n") || seen[m] {
				return fieldErr(list.field, "entry %q is not a distinct module name", m)
			}
			seen[m] = true
		}
	}
	return nil
}

// Write stores a in dir (created if needed) as adapter_config.json and
// adapter_model.safetensors (F32), each written atomically.
func Write(dir string, a *Adapter) error {
	if err := Validate(a); err != nil {
		return fmt.Errorf("write adapter %s: %w", dir, err)
	}
	cfg, err := MarshalConfig(a.Config)
	if err != nil {
		return fmt.Errorf("write adapter %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write adapter: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, ConfigName), cfg); err != nil {
		return fmt.Errorf("write adapter %s: %w", dir, err)
	}
	return safetensors.WriteFile(filepath.Join(dir, WeightsName), a.Tensors,
		safetensors.WithMetadata(map[string]string{"format": "pt"}))
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		// #nosec G104 -- cleanup on an error path; the write error is returned (the temp file is removed)
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		// #nosec G104 -- cleanup on an error path; the sync error is returned (the temp file is removed)
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Read loads and validates the adapter in dir.
func Read(dir string) (*Adapter, error) {
	// #nosec G304 -- the adapter folder the caller loads
	src, err := os.ReadFile(filepath.Join(dir, ConfigName))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errs.NotFound("adapter %s: %s is missing", dir, ConfigName)
		}
		return nil, fmt.Errorf("adapter %s: %w", dir, err)
	}
	cfg, err := ParseConfig(src)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", dir, err)
	}
	tensors, err := safetensors.ReadFile(filepath.Join(dir, WeightsName))
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", dir, err)
	}
	a := &Adapter{Config: cfg, Tensors: tensors}
	if err := Validate(a); err != nil {
		return nil, fmt.Errorf("adapter %s: %w", dir, err)
	}
	return a, nil
}
