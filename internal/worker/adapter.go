package worker

import (
	"context"
	"path/filepath"

	"github.com/tailor-ml/tailor/internal/adapter"
	"github.com/tailor-ml/tailor/internal/engine"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/peft"
	"github.com/tailor-ml/tailor/internal/recipe"
)

// writeAdapter stores the trained parameters as a PEFT adapter with its
// manifest and returns the manifest's digest: the run's result.
func (j *job) writeAdapter(ctx context.Context, r *recipe.Recipe, m *model.Model, base *loaded, labels []string) (string, error) {
	tensors := map[string]engine.Tensor{}
	var names []string
	for _, p := range m.Params() {
		tensors[p.Name] = engine.Tensor{Shape: p.Shape, Data: p.Data}
		names = append(names, p.Name)
	}
	man := adapter.Manifest{Task: string(r.Task), Base: j.spec.Inputs.Base.ID, RunKey: j.spec.Key, Labels: labels, Trained: names,
		MaxSeqLen: maxTokens(r, base.manifest.Config)}
	if r.Method.Head != nil && len(labels) > 0 {
		man.Pooling = r.Method.Head.Pooling
	}
	a := &peft.Adapter{Config: adapterConfig(r, base, labels), Tensors: tensors}
	return adapter.Write(ctx, j.blobs, filepath.Join(j.dir, "adapter"), a, man)
}

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
