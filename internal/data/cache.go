package data

import (
	"container/list"
	"hash"
	"sync"
)

// Cache keeps, in memory, what an append needs from its parent version:
// the importer's state after the version's last record (stream hash,
// profile, schema, split counts, record ids) and the records of its open
// last chunk. An append whose parent is cached reads none of the parent's
// records; one whose parent is not reads them once, as before, and gives
// the same manifest byte for byte. Entries beyond MaxBytes (estimated) are
// evicted least recently used. Safe for concurrent use; the zero value is
// not usable, and a nil *Cache caches nothing.
//
// A state goes to the one import that continues it (the cache drops it
// then), and that import's own end state comes back: so appends one after
// another to a dataset copy nothing but what they add.
type Cache struct {
	mu      sync.Mutex
	max     int64
	used    int64
	entries map[cacheKey]*list.Element // of *importState
	lru     list.List                  // front: most recently used
	hits    int64
	misses  int64
}

// DefaultCacheBytes bounds a Cache made with NewCache(0).
const DefaultCacheBytes = 256 << 20

// NewCache returns a cache holding about maxBytes of states (0: the
// default).
func NewCache(maxBytes int64) *Cache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	return &Cache{max: maxBytes, entries: map[cacheKey]*list.Element{}}
}

// CacheStats counts lookups.
type CacheStats struct {
	Hits, Misses int64
	Entries      int
	Bytes        int64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Entries: len(c.entries), Bytes: c.used}
}

// cacheKey names a state: the version's content id plus what else the
// state depends on. Versions with one id can differ in their chunks (other
// chunking, or appended before appends reopened the last chunk), so the
// key holds the last chunk's digest, which the state's tail must match.
type cacheKey struct {
	id       string
	task     string
	split    SplitRatios
	chunking Chunking
	last     string
}

// importState is an importer's state after a version's last record.
type importState struct {
	key     cacheKey
	stream  hash.Hash
	prof    *profiler // quiescent: its goroutines have ended
	schema  *schemaBuilder
	ids     map[[16]byte]struct{}
	counts  SplitCounts
	records int64
	bytes   int64
	// tail holds the records of the version's last chunk when the input,
	// not the boundary rule, ended it; tailRecords counts them.
	tail        []byte
	tailRecords int64
	size        int64
}

// take hands over the state for key, or returns nil: the cache drops it,
// since the import that takes it changes it. Another import from the same
// parent meanwhile reads the parent's records instead.
func (c *Cache) take(key cacheKey) *importState {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		c.misses++
		return nil
	}
	c.hits++
	st := e.Value.(*importState)
	c.lru.Remove(e)
	delete(c.entries, key)
	c.used -= st.size
	return st
}

// put stores st, which the caller no longer uses.
func (c *Cache) put(st *importState) {
	if c == nil {
		return
	}
	st.size = st.estimate()
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.size > c.max {
		return
	}
	if e, ok := c.entries[st.key]; ok { // another import of the same records
		c.lru.MoveToFront(e)
		return
	}
	c.entries[st.key] = c.lru.PushFront(st)
	c.used += st.size
	for c.used > c.max {
		e := c.lru.Back()
		old := e.Value.(*importState)
		c.lru.Remove(e)
		delete(c.entries, old.key)
		c.used -= old.size
	}
}

// estimate approximates the bytes st holds.
func (st *importState) estimate() int64 {
	p := st.prof
	n := int64(len(st.tail)) + int64(len(st.ids))*48 + int64(len(p.labels))*64 + int64(len(p.vocab.set.slots))*8 + int64(len(p.vocab.heap))*8
	for _, hh := range []*heavyHitters{p.uni, p.bi.hh} {
		n += int64(len(hh.slots))*32 + int64(len(hh.arena))
	}
	return n + 4096
}
