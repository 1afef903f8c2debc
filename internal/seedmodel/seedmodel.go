// Package seedmodel writes small, randomly initialized base models as
// Hugging Face folders (config.json, model.safetensors, tokenizer.json), from
// an explicit seed. Tests and the demo use it to make base models on
// machines that cannot download any; the weights are the engine's own
// from-scratch initialization (model.RandomWeights).
package seedmodel

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/hfconfig"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/safetensors"
)

// Write writes config.json, model.safetensors and tokenizer.json into dir.
func Write(dir string, cfg engine.Config, tokenizerJSON []byte, seed uint64) error {
	w, err := model.RandomWeights(cfg, seed)
	if err != nil {
		return fmt.Errorf("seed model: %w", err)
	}
	return WriteFolder(dir, cfg, tokenizerJSON, w)
}

// WriteFolder writes a Hugging Face model folder from weights.
func WriteFolder(dir string, cfg engine.Config, tokenizerJSON []byte, weights map[string]engine.Tensor) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf, err := hfconfig.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("seed model: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), conf, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tokenizerJSON, 0o644); err != nil {
		return err
	}
	return safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), weights)
}
