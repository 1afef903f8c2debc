package eval

import (
	"math"
	"math/bits"
	"slices"

	"github.com/tailor-ml/tailor/internal/errs"
)

// Scores hold one model's per-example results, from which any metric of its
// task can be computed on any resample of the examples.
type Scores struct {
	task Task
	n    int
	cls  *classData
	gen  *genData
}

// Score prepares preds for metric computation and the bootstrap.
func Score(task Task, preds []Prediction, gen GenOptions) (*Scores, error) {
	s := &Scores{task: task, n: len(preds)}
	var err error
	switch task {
	case TaskClassify:
		s.cls, err = newClassData(preds)
	case TaskGenerate:
		s.gen, err = newGenData(preds, gen)
	default:
		return nil, errs.Invalid("task %q: want %q or %q", task, TaskClassify, TaskGenerate)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// N is the number of examples.
func (s *Scores) N() int { return s.n }

// Metric computes the named metric over the examples idx (repeats allowed).
func (s *Scores) Metric(name string, idx []int) (float64, error) {
	if len(idx) == 0 {
		return 0, errs.Invalid("metric %s: no examples", name)
	}
	var v float64
	var ok bool
	if s.cls != nil {
		v, ok = s.cls.metric(name, idx)
	} else {
		v, ok = s.gen.metric(name, idx)
	}
	if !ok {
		return 0, errs.Invalid("metric %q: not computed for task %s (have %v)", name, s.task, s.metricNames())
	}
	return v, nil
}

func (s *Scores) metricNames() []string {
	if s.cls != nil {
		if s.cls.hasProbs {
			return []string{"accuracy", "ece", "log_loss", "macro_f1"}
		}
		return []string{"accuracy", "macro_f1"}
	}
	return sortedKeys(s.gen.scores)
}

// LowerIsBetter reports whether a smaller value of metric is better
// (ece, log_loss and latency and cost figures).
func LowerIsBetter(metric string) bool {
	switch metric {
	case "ece", "log_loss", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms",
		"cost_per_1k", "energy_wh_per_1k", "cpu_seconds_per_1k":
		return true
	}
	return false
}

// BootstrapOptions configure the paired bootstrap. Zero fields take the
// defaults; Seed 0 is itself a fixed seed.
type BootstrapOptions struct {
	Resamples  int     `json:"resamples"`  // default 1000
	Confidence float64 `json:"confidence"` // one-sided level, default 0.95
	Seed       uint64  `json:"seed"`
}

func (o BootstrapOptions) withDefaults() BootstrapOptions {
	if o.Resamples == 0 {
		o.Resamples = 1000
	}
	if o.Confidence == 0 {
		o.Confidence = 0.95
	}
	return o
}

// BootstrapResult is the outcome of one paired bootstrap. Delta and the
// resampled deltas are oriented so that positive means the candidate is
// better: candidate − champion, or champion − candidate for a metric where
// lower is better.
type BootstrapResult struct {
	Metric     string  `json:"metric"`
	Delta      float64 `json:"delta"` // on all examples
	Lower      float64 `json:"lower"` // one-sided lower confidence bound of Delta
	Resamples  int     `json:"resamples"`
	Confidence float64 `json:"confidence"`
	Seed       uint64  `json:"seed"`
}

// PairedBootstrap compares candidate and champion on the same examples
// (index i of one is index i of the other). The exact rule: draw Resamples
// resamples, each n indices uniform with replacement from a SplitMix64
// stream seeded with Seed (index = ⌊u·n / 2⁶⁴⌋ with Lemire's rejection, so
// the draw is unbiased); compute the oriented delta d_b of the metric on
// each; sort them ascending; Lower = d_(k) with k = ⌊(1−Confidence)·B⌋
// (0-based: with B = 1000 and 95 %, the 51st smallest). The candidate is not
// worse than the champion by more than ε when Lower ≥ −ε.
func PairedBootstrap(metric string, candidate, champion *Scores, opts BootstrapOptions) (BootstrapResult, error) {
	opts = opts.withDefaults()
	switch {
	case candidate.n != champion.n:
		return BootstrapResult{}, errs.Invalid("bootstrap: candidate has %d examples, champion %d", candidate.n, champion.n)
	case opts.Resamples < 1:
		return BootstrapResult{}, errs.Invalid("bootstrap: %d resamples, want at least 1", opts.Resamples)
	case !(opts.Confidence > 0 && opts.Confidence < 1):
		return BootstrapResult{}, errs.Invalid("bootstrap: confidence %v, want a number in (0, 1)", opts.Confidence)
	}
	delta := func(idx []int) (float64, error) {
		a, err := candidate.Metric(metric, idx)
		if err != nil {
			return 0, err
		}
		b, err := champion.Metric(metric, idx)
		if err != nil {
			return 0, err
		}
		if LowerIsBetter(metric) {
			return b - a, nil
		}
		return a - b, nil
	}
	res := BootstrapResult{Metric: metric, Resamples: opts.Resamples, Confidence: opts.Confidence, Seed: opts.Seed}
	var err error
	if res.Delta, err = delta(identity(candidate.n)); err != nil {
		return BootstrapResult{}, err
	}
	rng := splitMix64{state: opts.Seed}
	idx := make([]int, candidate.n)
	ds := make([]float64, opts.Resamples)
	for b := range ds {
		rng.resample(idx)
		if ds[b], err = delta(idx); err != nil {
			return BootstrapResult{}, err
		}
	}
	res.Lower = lowerQuantile(ds, opts.Confidence)
	return res, nil
}

// lowerQuantile sorts ds and returns d_(k), k = ⌊(1−confidence)·B⌋
// (0-based), PairedBootstrap's one-sided lower bound.
func lowerQuantile(ds []float64, confidence float64) float64 {
	slices.Sort(ds)
	k := int(math.Floor((1-confidence)*float64(len(ds)) + 1e-9))
	return ds[min(k, len(ds)-1)]
}

// BootstrapIndices returns the resamples PairedBootstrap draws for n
// examples under opts (defaults filled): Resamples slices of n indices. It
// exists so that independent implementations can be checked on exactly the
// same draws.
func BootstrapIndices(n int, opts BootstrapOptions) [][]int {
	opts = opts.withDefaults()
	rng := splitMix64{state: opts.Seed}
	out := make([][]int, max(opts.Resamples, 0))
	for b := range out {
		out[b] = make([]int, n)
		rng.resample(out[b])
	}
	return out
}

// resample fills idx with len(idx) indices uniform in [0, len(idx)).
func (r *splitMix64) resample(idx []int) {
	for i := range idx {
		idx[i] = r.intn(len(idx))
	}
}

// splitMix64 is Steele, Lea and Flood's SplitMix64: a fixed, documented
// generator, so a seed gives the same resamples on every Go version.
type splitMix64 struct{ state uint64 }

func (r *splitMix64) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn returns a uniform integer in [0, n) by Lemire's multiply-shift with
// rejection.
func (r *splitMix64) intn(n int) int {
	// #nosec G115 -- n > 0 (an index range)
	un := uint64(n)
	hi, lo := bits.Mul64(r.next(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(r.next(), un)
		}
	}
	// #nosec G115 -- hi < n (Lemire's bounded draw), so it fits an int
	return int(hi)
}
