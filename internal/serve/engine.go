package serve

import (
	"context"

	"github.com/tailor-ml/tailor/internal/engine/tokenizer"
)

// Engine does the model work. Implementations keep one copy of each base in
// memory and adapters resident by content digest, loading them on demand.
// Rows of one call may name different adapters of different bases; an
// implementation batches rows of the same base together.
//
// The interface is small on purpose: modelengine implements it with
// model.Decoder (per-row adapters in one batched step, a KV cache per
// sequence), and another backend (a GPU one) can take its place.
type Engine interface {
	// Load makes t's model resident and warms it with one forward pass.
	// It is safe to call concurrently and for a model already resident.
	Load(ctx context.Context, t Target) (*Loaded, error)
	// Classify returns class probabilities, one slice per row, in order.
	Classify(ctx context.Context, rows []ClassifyRow) ([][]float32, error)
	// Logits returns next-token logits (one vocabulary-sized slice per
	// row) for each row's full token sequence. Seq identifies a sequence
	// across steps, so that an engine with a cache can reuse its prefix;
	// Release says a sequence is finished.
	Logits(ctx context.Context, rows []StepRow) ([][]float32, error)
	Release(seq uint64)
	// Stats reports residency for the metrics.
	Stats() EngineStats
}

// Loaded describes a resident model.
type Loaded struct {
	Target    Target
	Tokenizer *tokenizer.Tokenizer
	// Labels are the classes of a classification model (nil: a causal LM).
	Labels       []string
	MaxPositions int
	// MaxInputTokens is where classification cuts an input, as training
	// did (the adapter's max_seq_len, at most MaxPositions).
	MaxInputTokens int
	VocabSize      int
	// EOS lists the token ids that end a generation (config eos, the
	// tokenizer's EOS and special end-of-turn tokens).
	EOS []int32
}

// Classifier reports whether the model has a classification head.
func (l *Loaded) Classifier() bool { return len(l.Labels) > 0 }

// ClassifyRow is one input for Classify.
type ClassifyRow struct {
	Model  *Loaded
	Tokens []int32
}

// StepRow is one sequence in a generation step.
type StepRow struct {
	Seq    uint64
	Model  *Loaded
	Tokens []int32
}

// EngineStats is what an engine holds in memory and how it got there.
// Counters only grow, across restarts of a serving process included.
type EngineStats struct {
	Bases           int
	BaseBytes       int64
	BaseMappedBytes int64 // of BaseBytes, memory-mapped from the artifact store's files
	BaseBudgetBytes int64 // 0: no bound
	BaseLoads       int64 // base loads, reloads after an eviction included
	BaseEvictions   int64
	Adapters        []AdapterStat
	AdapterBytes    int64
	BudgetBytes     int64 // the adapter budget
	Loads           int64 // adapter loads, on demand included
	Evictions       int64 // adapter evictions, with their base's included
	CacheBytes      int64 // KV caches of generating sequences
	// ResidentBytes is the resident memory of the process that runs the
	// models, when that is a process of its own (0: unknown or in-process);
	// Restarts counts how often that process was started again after it
	// died.
	ResidentBytes int64
	Restarts      int64
}

// AdapterStat is one resident adapter.
type AdapterStat struct {
	Digest string
	Base   string
	Bytes  int64
}
