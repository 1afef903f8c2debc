package train

import (
	"slices"

	"github.com/tailor-ml/tailor/internal/engine"
)

// Dataset is the training data the loop reads. Example must be cheap and
// deterministic: the same index always yields the same example.
type Dataset interface {
	Len() int
	Example(i int) engine.Example
}

// Cursor is the position of the data pipeline: the next micro-batch to read
// is batch Batch of epoch Epoch's plan. It is saved in checkpoints.
type Cursor struct {
	Epoch int
	Batch int
}

// row is one sequence of a micro-batch: a single example, or with packing
// several examples concatenated.
type row []int

// plan is one epoch's micro-batches, in order.
type plan struct {
	epoch   int
	batches [][]row
}

// planner builds epoch plans from the options and the examples' lengths
// (after truncation). Plans depend only on (seed, epoch), so a cursor is
// enough to resume.
type planner struct {
	seed      uint64
	batchSize int
	window    int // bucketing window in batches; <= 1 means off
	packing   bool
	maxLen    int // 0 means no truncation
	lengths   []int
}

// dataStream is the RNG stream id for epoch shuffles.
const dataStream = 1

// plan returns epoch e's micro-batches.
func (p *planner) plan(e int) *plan {
	// #nosec G115 -- a non-negative epoch number mixed into a seed
	rng := NewRNG(DeriveSeed(p.seed, dataStream, uint64(e)))
	order := rng.Perm(len(p.lengths))
	var rows []row
	if p.packing {
		rows = p.pack(order)
	} else {
		rows = make([]row, len(order))
		for i, idx := range order {
			rows[i] = row{idx}
		}
	}
	if !p.packing && p.window > 1 {
		return &plan{epoch: e, batches: p.bucket(rows, rng)}
	}
	return &plan{epoch: e, batches: chunk(rows, p.batchSize)}
}

// pack fills rows of at most maxLen tokens greedily in order: an example
// that does not fit in the current row starts a new one; examples are never
// split (they were already truncated to maxLen).
func (p *planner) pack(order []int) []row {
	var rows []row
	var cur row
	used := 0
	for _, idx := range order {
		n := p.lengths[idx]
		if len(cur) > 0 && used+n > p.maxLen {
			rows = append(rows, cur)
			cur, used = nil, 0
		}
		cur = append(cur, idx)
		used += n
	}
	if len(cur) > 0 {
		rows = append(rows, cur)
	}
	return rows
}

// bucket sorts rows by length (longest first, ties by shuffled position)
// within windows of window·batchSize rows, cuts each window into batches and
// shuffles the batches within the window, so batches hold similar lengths
// but their order stays random.
func (p *planner) bucket(rows []row, rng *RNG) [][]row {
	var out [][]row
	size := p.window * p.batchSize
	for start := 0; start < len(rows); start += size {
		w := slices.Clone(rows[start:min(start+size, len(rows))])
		slices.SortStableFunc(w, func(a, b row) int { return p.lengths[b[0]] - p.lengths[a[0]] })
		batches := chunk(w, p.batchSize)
		rng.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })
		out = append(out, batches...)
	}
	return out
}

// chunk cuts rows into batches of size n; the last may be shorter.
func chunk(rows []row, n int) [][]row {
	var out [][]row
	for start := 0; start < len(rows); start += n {
		out = append(out, rows[start:min(start+n, len(rows))])
	}
	return out
}

// truncate cuts an example to maxLen tokens (0 means no limit).
func truncate(ex engine.Example, maxLen int) engine.Example {
	if maxLen > 0 && len(ex.Tokens) > maxLen {
		ex.Tokens = ex.Tokens[:maxLen]
		if len(ex.LossMask) > maxLen {
			ex.LossMask = ex.LossMask[:maxLen]
		}
	}
	return ex
}

// materialize builds the engine.Batch for rows. A packed row concatenates
// its examples' tokens and loss masks and has Label -1; the last position of
// every example is masked out so no loss is taken for predicting the next,
// unrelated example's first token. Packed examples attend to each other
// (engine.Example has no segment ids), as in GPT-style packing.
func materialize(data Dataset, rows []row, maxLen int, packing bool) engine.Batch {
	b := engine.Batch{Examples: make([]engine.Example, 0, len(rows))}
	for _, r := range rows {
		if !packing {
			b.Examples = append(b.Examples, truncate(data.Example(r[0]), maxLen))
			continue
		}
		out := engine.Example{Label: -1}
		for _, idx := range r {
			ex := truncate(data.Example(idx), maxLen)
			out.Tokens = append(out.Tokens, ex.Tokens...)
			for i := range ex.Tokens {
				keep := ex.LossMask == nil || (i < len(ex.LossMask) && ex.LossMask[i])
				out.LossMask = append(out.LossMask, keep && i < len(ex.Tokens)-1)
			}
		}
		b.Examples = append(b.Examples, out)
	}
	return b
}
