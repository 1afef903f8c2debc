package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/peft"
	"github.com/tailor-ml/tailor/internal/recipe"
)

// AdapterManifest is the run's output artifact: the PEFT adapter files and
// what they need to be served. Its blob digest is the run's Result.
type AdapterManifest struct {
	Format  string        `json:"format"` // "peft-lora"
	Task    string        `json:"task"`
	Base    string        `json:"base"`    // base version id (fingerprint)
	RunKey  string        `json:"run_key"` // run key that produced it
	Labels  []string      `json:"labels,omitempty"`
	Pooling string        `json:"pooling,omitempty"` // classification head pooling
	Files   []AdapterFile `json:"files"`
	Trained []string      `json:"trained"` // trained tensor names
}

// AdapterFile is one stored adapter file.
type AdapterFile struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

func (j *job) writeAdapter(ctx context.Context, r *recipe.Recipe, m *model.Model, base *loaded, labels []string) (string, error) {
	tensors := map[string]engine.Tensor{}
	var names []string
	for _, p := range m.Params() {
		// PEFT keys every saved tensor, modules_to_save included, under
		// base_model.model.
		name := p.Name
		if !strings.HasPrefix(name, peftPrefix) {
			name = peftPrefix + name
		}
		tensors[name] = engine.Tensor{Shape: p.Shape, Data: p.Data}
		names = append(names, name)
	}
	dir := filepath.Join(j.dir, "adapter")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	a := &peft.Adapter{Config: adapterConfig(r, base, labels), Tensors: tensors}
	if err := peft.Write(dir, a); err != nil {
		return "", fmt.Errorf("write adapter: %w", err)
	}
	out := AdapterManifest{Format: "peft-lora", Task: string(r.Task), Base: j.spec.Inputs.Base.ID, RunKey: j.spec.Key, Labels: labels, Trained: names}
	if r.Method.Head != nil && len(labels) > 0 {
		out.Pooling = r.Method.Head.Pooling
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, en := range entries {
		f, err := os.Open(filepath.Join(dir, en.Name()))
		if err != nil {
			return "", err
		}
		d, n, err := j.blobs.Put(ctx, f)
		f.Close()
		if err != nil {
			return "", err
		}
		out.Files = append(out.Files, AdapterFile{Name: en.Name(), Digest: d, Size: n})
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return "", err
	}
	d, _, err := j.blobs.Put(ctx, strings.NewReader(string(raw)))
	return d, err
}

const peftPrefix = "base_model.model."

// adapterConfig describes the trained adapter in PEFT's terms.
func adapterConfig(r *recipe.Recipe, base *loaded, labels []string) peft.Config {
	c := peft.Config{BaseModelNameOrPath: base.manifest.Name, TaskType: "CAUSAL_LM"}
	if l := r.Method.LoRA; l != nil {
		c.R, c.LoraAlpha, c.LoraDropout, c.TargetModules = l.Rank, l.Alpha, l.Dropout, l.Targets
	}
	if len(labels) > 0 {
		c.TaskType = "SEQ_CLS"
		c.ModulesToSave = []string{"score"}
	}
	c.FanInFanOut = base.manifest.Arch == "GPT2LMHeadModel"
	return c
}
