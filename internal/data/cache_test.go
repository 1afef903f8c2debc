package data

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"testing"
)

// genWords writes n classify records from index from whose texts draw on a
// vocabulary large enough to make the heavy-hitter tables prune.
func genWords(rng *rand.Rand, from, n int) []byte {
	var b bytes.Buffer
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"id":"w%06d","text":"`, i)
		for w := 0; w < 4+rng.Intn(40); w++ {
			if w > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "w%d", rng.Intn(400000)>>rng.Intn(14))
		}
		fmt.Fprintf(&b, `","label":"l%d"}`+"\n", rng.Intn(5))
	}
	return b.Bytes()
}

// TestCacheAppendsMatchFreshImport appends batches one after another,
// once through a Cache and once without, and checks that every version's
// manifest is the one a single import of the same records gives: same id,
// chunks, profile, split and schema. The vocabulary makes the profile's
// heavy-hitter tables prune, so a state that lost anything would show.
func TestCacheAppendsMatchFreshImport(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(7))
	var batches [][]byte
	from := 0
	for _, n := range []int{900, 1, 2, 150, 1, 3000, 7, 1, 2000, 40} {
		batches = append(batches, genWords(rng, from, n))
		from += n
	}
	chunking := Chunking{Bits: 7, MinRecords: 16, MaxRecords: 512}
	cache := NewCache(0)
	st := newMemStore()
	var cached, plain *Manifest
	var all []byte
	for i, b := range batches {
		all = append(all, b...)
		for _, c := range []struct {
			m     **Manifest
			cache *Cache
		}{{&cached, cache}, {&plain, nil}} {
			o := ImportOptions{Name: "ds", Task: TaskClassify, FileName: fmt.Sprintf("b%d.jsonl", i), Chunking: chunking, Src: st, Append: *c.m, Cache: c.cache}
			m, err := Import(ctx, bytes.NewReader(b), o, st)
			if err != nil {
				t.Fatalf("batch %d: %v", i, err)
			}
			*c.m = m
		}
		fresh, err := Import(ctx, bytes.NewReader(all), ImportOptions{Name: "ds", Task: TaskClassify, FileName: "all.jsonl", Chunking: chunking}, st)
		if err != nil {
			t.Fatal(err)
		}
		for name, m := range map[string]*Manifest{"cached": cached, "replayed": plain} {
			if m.ID != fresh.ID || m.Records != fresh.Records || m.Bytes != fresh.Bytes {
				t.Fatalf("batch %d, %s append: version %s (%d records), fresh import %s (%d)", i, name, m.ID, m.Records, fresh.ID, fresh.Records)
			}
			if !reflect.DeepEqual(m.Chunks, fresh.Chunks) {
				t.Errorf("batch %d, %s append: %d chunks differ from the fresh import's %d", i, name, len(m.Chunks), len(fresh.Chunks))
			}
			if !reflect.DeepEqual(m.Profile, fresh.Profile) {
				t.Errorf("batch %d, %s append: profile differs from the fresh import's:\n%+v\n%+v", i, name, m.Profile, fresh.Profile)
			}
			if m.Split != fresh.Split || !reflect.DeepEqual(m.Schema, fresh.Schema) {
				t.Errorf("batch %d, %s append: split or schema differ", i, name)
			}
		}
	}
	// Every append but the first found its parent in the cache (the first
	// batch was an import, which filled it).
	if s := cache.Stats(); s.Hits != int64(len(batches)-1) || s.Misses != 0 {
		t.Errorf("cache stats %+v, want %d hits and no miss", s, len(batches)-1)
	}
	if p := cached.Profile; p.Words.Vocabulary < hhUnigrams*3/2 || len(p.Unigrams) == 0 {
		t.Fatalf("vocabulary %d: the test needs enough words to prune", p.Words.Vocabulary)
	}
}

// TestCacheDuplicateAfterResume checks that ids come back with the state:
// an append repeating a parent's id fails the same way with the cache.
func TestCacheDuplicateAfterResume(t *testing.T) {
	ctx := context.Background()
	cache := NewCache(0)
	st := newMemStore()
	m, err := Import(ctx, bytes.NewReader(genClassify(0, 100)), ImportOptions{Name: "ds", Task: TaskClassify, FileName: "a.jsonl", Cache: cache}, st)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Import(ctx, bytes.NewReader(genClassify(100, 5)), ImportOptions{FileName: "b.jsonl", Append: m, Src: st, Cache: cache}, st)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Import(ctx, bytes.NewReader(genClassify(102, 1)), ImportOptions{FileName: "c.jsonl", Append: m2, Src: st, Cache: cache}, st)
	if err == nil || err.Error() != `c.jsonl:1: field "id": duplicate id "r000102" (first at the parent version)` {
		t.Errorf("err = %v", err)
	}
	if s := cache.Stats(); s.Hits != 2 {
		t.Errorf("cache stats %+v, want 2 hits", s)
	}
}

// TestCacheEvicts bounds the cache: the least recently used state goes.
func TestCacheEvicts(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	probe := NewCache(0)
	if _, err := Import(ctx, bytes.NewReader(genClassify(0, 10)), ImportOptions{Name: "ds", Task: TaskClassify, FileName: "a.jsonl", Cache: probe}, st); err != nil {
		t.Fatal(err)
	}
	one := probe.Stats().Bytes
	cache := NewCache(2*one + one/2) // room for two states
	var ms []*Manifest
	for i := range 3 {
		m, err := Import(ctx, bytes.NewReader(genClassify(i*10, 10)), ImportOptions{Name: "ds", Task: TaskClassify, FileName: "a.jsonl", Cache: cache}, st)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if s := cache.Stats(); s.Entries != 2 || s.Bytes > 2*one+one/2 {
		t.Fatalf("stats %+v, want 2 entries", s)
	}
	for i, want := range []bool{false, true, true} {
		st := cache.take(cacheKey{id: ms[i].ID, task: TaskClassify, split: defaultSplit, chunking: Chunking{}.withDefaults(), last: ms[i].Chunks[len(ms[i].Chunks)-1].Digest})
		if (st != nil) != want {
			t.Errorf("version %d cached = %v, want %v", i, st != nil, want)
		}
	}
}

// TestCacheOtherChunking: one content under two chunkings has two layouts;
// an append to either must not take the other's state.
func TestCacheOtherChunking(t *testing.T) {
	ctx := context.Background()
	cache := NewCache(0)
	st := newMemStore()
	in := genClassify(0, 300)
	a, err := importBytes(t, st, "a.jsonl", TaskClassify, in, func(o *ImportOptions) { o.Cache = cache })
	if err != nil {
		t.Fatal(err)
	}
	b, err := Import(ctx, bytes.NewReader(in), ImportOptions{Name: "ds", Task: TaskClassify, FileName: "b.jsonl", Cache: cache}, st)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || reflect.DeepEqual(a.Chunks, b.Chunks) {
		t.Fatalf("the test needs one id with two layouts")
	}
	// And one chunking, two layouts: an append from before appends
	// reopened the last chunk kept the parent's chunks as they were.
	first, err := importBytes(t, st, "a.jsonl", TaskClassify, in[:bytes.Index(in, []byte(`"r000297"`))-7], nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := importBytes(t, st, "a.jsonl", TaskClassify, genClassify(297, 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	legacy := *a
	legacy.Chunks = append(slices.Clone(first.Chunks), second.Chunks...)
	for _, p := range []*Manifest{a, b, &legacy} {
		m, err := Import(ctx, bytes.NewReader(genClassify(300, 3)), ImportOptions{FileName: "c.jsonl", Append: p, Src: st, Cache: cache}, st)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := ReadRecords(ctx, st, m, "", func(Record) error { n++; return nil }); err != nil || n != 303 || m.Records != 303 {
			t.Errorf("append to the %d-chunk layout: %d records read (%v), manifest says %d; want 303", len(p.Chunks), n, err, m.Records)
		}
	}
	if s := cache.Stats(); s.Hits != 2 || s.Misses != 1 {
		t.Errorf("stats %+v, want each append to find its own parent's state and the legacy layout none", s)
	}
}
