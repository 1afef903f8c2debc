package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tailor-ml/tailor/internal/store"
)

// BenchmarkAppendEvent is one event (and so one audit entry) per write
// transaction, the cost every change pays.
func BenchmarkAppendEvent(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "tailor.db"), Options{})
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

// BenchmarkVerifyAudit walks a chain of 10,000 entries.
func BenchmarkVerifyAudit(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "tailor.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := store.WithActor(ctx, "bench")
	const n, batch = 10000, 100
	for i := 0; i < n; i += batch {
		evs := make([]store.Event, batch)
		for j := range evs {
			evs[j] = store.Event{Type: "run.state.changed", Subject: fmt.Sprint("r", (i+j)%100)}
		}
		if _, err := s.AppendEvents(c, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		v, err := s.VerifyAudit(ctx)
		if err != nil || !v.OK() || v.Entries != n {
			b.Fatalf("%+v, %v", v, err)
		}
	}
}
