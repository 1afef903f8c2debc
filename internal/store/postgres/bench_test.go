package postgres

import (
	"fmt"
	"sync"
	"testing"

	"github.com/tailor-ml/tailor/internal/store"
)

// BenchmarkAppendEvent is one event (and so one audit entry) per write
// transaction, the cost every change pays; as sqlite's benchmark of the
// same name.
func BenchmarkAppendEvent(b *testing.B) {
	s, err := Open(pg.Database(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := store.WithActor(ctx, "bench")
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.AppendEvents(c, []store.Event{{Type: "run.state.changed", Subject: fmt.Sprint("r", i%100)}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendEventParallel is the same from 8 goroutines at once: the
// write lock serialises them, so this measures its overhead under
// contention.
func BenchmarkAppendEventParallel(b *testing.B) {
	s, err := Open(pg.Database(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := store.WithActor(ctx, "bench")
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/8 + 1
	for g := range 8 {
		wg.Go(func() {
			for i := range per {
				if _, err := s.AppendEvents(c, []store.Event{{Type: "run.state.changed", Subject: fmt.Sprint("r", g, i%100)}}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
