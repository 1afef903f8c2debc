package data

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// BenchmarkAppend appends one record at a time to a 40,000-record version,
// with the parent's state cached (the server's case) and without (after a
// restart: the parent's records are read again).
//
//	go test -run '^$' -bench BenchmarkAppend ./internal/data/
func BenchmarkAppend(b *testing.B) {
	const n = 40000
	var base bytes.Buffer
	for i := range n {
		fmt.Fprintf(&base, "{\"id\":\"c%d-o%d-r0\",\"text\":\"record c%d-o%d-r0 about the project\",\"label\":\"ham\"}\n", i%64, i, i%64, i)
	}
	for _, tc := range []struct {
		name  string
		cache *Cache
	}{{"cached", NewCache(0)}, {"replayed", nil}} {
		b.Run(tc.name, func(b *testing.B) {
			st := newMemStore()
			m, err := Import(context.Background(), bytes.NewReader(base.Bytes()), ImportOptions{Name: "ds", Task: TaskClassify, FileName: "a.jsonl", Cache: tc.cache}, st)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for j := 0; j < b.N; j++ {
				in := fmt.Sprintf("{\"id\":\"new-%d\",\"text\":\"record new about the project\",\"label\":\"spam\"}\n", j)
				if m, err = Import(context.Background(), bytes.NewReader([]byte(in)), ImportOptions{FileName: "b.jsonl", Append: m, Src: st, Cache: tc.cache}, st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
