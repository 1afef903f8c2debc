package worker

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/tailor-ml/tailor/internal/adapter"
	"github.com/tailor-ml/tailor/internal/engine/model"
	"github.com/tailor-ml/tailor/internal/engine/peft"
	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
	"github.com/tailor-ml/tailor/internal/engine/train"
	"github.com/tailor-ml/tailor/internal/errs"
	"github.com/tailor-ml/tailor/internal/eval"
	"github.com/tailor-ml/tailor/internal/recipe"
)

// replayStream is the RNG stream id of the replay sample (see
// train.DeriveSeed), apart from the trainer's shuffles and dropout.
const replayStream = 0x7265706c6179 // "replay"

// loadInit loads the adapter an incremental run starts from (nil for any
// other run) and checks that it fits: a classifier on the run's own base.
func (j *job) loadInit(ctx context.Context, r *recipe.Recipe) (*adapter.Loaded, error) {
	in := j.spec.Inputs
	switch {
	case r.Incremental == nil && in.Init.Manifest == "":
		return nil, nil
	case r.Incremental == nil:
		return nil, errs.Invalid("worker: the spec starts from %s but recipe %s has no incremental block", in.Init.Name, r.Name)
	case in.Init.Manifest == "" || in.Replay.Manifest == "" || in.Forgetting.Manifest == "":
		return nil, errs.Invalid("worker: recipe %s is incremental but the spec resolved no model to start from, replay or forgetting dataset", r.Name)
	}
	a, err := adapter.Load(ctx, j.blobs, in.Init.Manifest, j.dir)
	if err != nil {
		return nil, fmt.Errorf("incremental: %s: %w", in.Init.Name, err)
	}
	m := a.Manifest
	switch {
	case m.Base != in.Base.ID:
		return nil, errs.Invalid("incremental: %s was trained on base %s, this run's base is %s; an adapter only starts training on its own base",
			in.Init.Name, short(m.Base), short(in.Base.ID))
	case m.Task != string(recipe.TaskClassify) || len(m.Labels) < 2:
		return nil, errs.Invalid("incremental: %s is not a classifier (task %q, %d labels)", in.Init.Name, m.Task, len(m.Labels))
	}
	if l := r.Method.LoRA; l != nil && r.Method.Kind == "lora" {
		c := a.PEFT.Config
		if c.R != l.Rank || c.LoraAlpha != l.Alpha || !slices.Equal(slices.Sorted(slices.Values(c.TargetModules)), slices.Sorted(slices.Values(l.Targets))) {
			return nil, errs.Invalid("incremental: %s has LoRA rank %d, alpha %v, targets %v; the recipe asks for rank %d, alpha %v, targets %v (they must match to start from it)",
				in.Init.Name, c.R, c.LoraAlpha, c.TargetModules, l.Rank, l.Alpha, l.Targets)
		}
	}
	return a, nil
}

// initFrom sets every trainable parameter of m to the init adapter's tensor
// of the same name. Every parameter needs one, and every tensor must be used:
// a LoRA adapter does not start a head-only recipe, nor the reverse.
func initFrom(m *model.Model, a *adapter.Loaded) error {
	used := map[string]bool{}
	for _, p := range m.Params() {
		name := p.Name
		if !strings.HasPrefix(name, peft.Prefix) {
			name = peft.Prefix + name
		}
		t, ok := a.PEFT.Tensors[name]
		if !ok {
			return errs.Invalid("the adapter has no tensor %q (it was trained with another method, targets or number of labels)", name)
		}
		if !slices.Equal(t.Shape, p.Shape) || len(t.Data) != len(p.Data) {
			return errs.Invalid("the adapter's tensor %q has shape %v, the model's %v", name, t.Shape, p.Shape)
		}
		copy(p.Data, t.Data)
		used[name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(a.PEFT.Tensors)) {
		if !used[name] {
			return errs.Invalid("the adapter's tensor %q has no place in this recipe's model (another method or targets)", name)
		}
	}
	return nil
}

// withReplay adds the replay sample to the new training records: the
// replay dataset's training split, sampled and interleaved by replay.
func (j *job) withReplay(ctx context.Context, r *recipe.Recipe, base *loaded, fresh []labeled, labels []string, maxLen int) ([]labeled, error) {
	if r.Incremental.Replay.Ratio == 0 {
		return fresh, nil
	}
	in := j.spec.Inputs
	pool, _, err := j.loadDataFrom(ctx, in.Replay.Manifest, r, base.tok, r.Data.Split, labels, maxLen)
	if err != nil {
		return nil, fmt.Errorf("replay dataset %s: %w", in.Replay.Name, err)
	}
	// #nosec G115 -- recipe checks seed >= 0, so it converts exactly
	return replay(fresh, pool, r.Incremental.Replay.Ratio, uint64(r.Seed)), nil
}

// replay draws k = ⌊ratio·len(fresh) + ½⌋ records (at most len(pool)) of
// pool without replacement from a stream of seed, keeps them in pool order,
// and interleaves them evenly with fresh: fresh record i sits at (i+½)/n
// and sampled record j at (j+½)/k along the run, fresh first on a tie.
func replay(fresh, pool []labeled, ratio float64, seed uint64) []labeled {
	k := min(int(math.Floor(ratio*float64(len(fresh))+0.5)), len(pool))
	if k <= 0 {
		return fresh
	}
	pick := train.NewRNG(train.DeriveSeed(seed, replayStream)).Perm(len(pool))[:k]
	slices.Sort(pick)
	n := len(fresh)
	out := make([]labeled, 0, n+k)
	i, jj := 0, 0
	for i < n || jj < k {
		// (2i+1)/2n <= (2j+1)/2k  ⇔  (2i+1)·k <= (2j+1)·n
		if jj == k || (i < n && (2*i+1)*k <= (2*jj+1)*n) {
			out = append(out, fresh[i])
			i++
			continue
		}
		out = append(out, pool[pick[jj]])
		jj++
	}
	return out
}

// forgetting evaluates a candidate (by predict) and the model it started
// from on the forgetting split, for the report's forgetting gate. tok and
// maxLen prepare the records as the candidate's training did.
func (j *job) forgetting(ctx context.Context, r *recipe.Recipe, tok *tokenizer.Tokenizer, labels []string, maxLen int,
	predict func([]labeled) ([]eval.Prediction, error)) (*eval.ForgettingInput, error) {
	in, f := j.spec.Inputs, r.Incremental.Forgetting
	set, _, err := j.loadDataFrom(ctx, in.Forgetting.Manifest, r, tok, f.Split, labels, maxLen)
	if err != nil {
		return nil, fmt.Errorf("forgetting dataset %s: %w", in.Forgetting.Name, err)
	}
	if len(set) == 0 {
		return nil, errs.Invalid("forgetting dataset %s@%s: split %q has no records; set incremental.forgetting.split or dataset", in.Forgetting.Name, short(in.Forgetting.ID), f.Split)
	}
	cand, err := predict(set)
	if err != nil {
		return nil, err
	}
	prev, err := j.loadStored(ctx, "model "+in.Init.Name, in.Base.Manifest, in.Init.Manifest)
	if err != nil {
		return nil, err
	}
	champ, err := prev.classify(r, set)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Init.Name, err)
	}
	j.logf("forgetting gate: candidate vs %s on %s@%s split %s (%d records)", in.Init.Name, in.Forgetting.Name, short(in.Forgetting.ID), f.Split, len(set))
	return &eval.ForgettingInput{DatasetID: in.Forgetting.ID, Split: f.Split, ChampionID: in.Init.ID, Candidate: cand, Champion: champ,
		// #nosec G115 -- recipe checks seed >= 0, so it converts exactly
		Metric: f.Metric, Epsilon: f.Epsilon, Bootstrap: eval.BootstrapOptions{Seed: uint64(r.Seed), Resamples: f.Resamples, Confidence: f.Confidence}}, nil
}
