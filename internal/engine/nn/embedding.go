package nn

import (
	"github.com/tailor-ml/tailor/internal/errs"
)

// Embedding looks rows of W [Vocab, Dim] up by id. DW nil means frozen.
type Embedding[T Float] struct {
	Vocab, Dim int
	W, DW      []T
}

// Forward writes y[len(ids), Dim]. An id outside [0, Vocab) is an error
// naming its position.
func (e *Embedding[T]) Forward(ids []int32, y []T) error {
	for i, id := range ids {
		if id < 0 || int(id) >= e.Vocab {
			return errs.Invalid("embedding: token %d at position %d outside vocabulary [0, %d)", id, i, e.Vocab)
		}
		copy(y[i*e.Dim:(i+1)*e.Dim], e.W[int(id)*e.Dim:(int(id)+1)*e.Dim])
	}
	return nil
}

// Backward scatter-adds dy rows into DW in position order (deterministic).
func (e *Embedding[T]) Backward(ids []int32, dy []T) {
	if e.DW == nil {
		return
	}
	for i, id := range ids {
		dst := e.DW[int(id)*e.Dim : (int(id)+1)*e.Dim]
		for j, v := range dy[i*e.Dim : (i+1)*e.Dim] {
			dst[j] += v
		}
	}
}
