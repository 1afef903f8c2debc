package app

import (
	"context"
	"sync"

	"github.com/tailor-ml/tailor/internal/store"
)

// nameLocks serializes, within this process, the read-modify-write of one
// versioned name (read latest, build on it, record the new version), so
// concurrent imports of one dataset queue instead of racing. The store's
// compare-and-set on the parent still guards writers in other processes;
// a lock is only the way to make the common case conflict-free. Names
// are per project, and so are locks: one name in two projects is two
// locks. The zero value is ready to use.
type nameLocks struct {
	mu sync.Mutex
	m  map[string]*nameLock
}

type nameLock struct {
	ch   chan struct{} // holds one token while locked
	refs int           // holders and waiters; the entry goes at zero
}

// lock waits until key of ctx's project is free or ctx ends, and returns
// the unlock func.
func (l *nameLocks) lock(ctx context.Context, name string) (func(), error) {
	key := store.ProjectFrom(ctx) + "\x00" + name
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*nameLock{}
	}
	e := l.m[key]
	if e == nil {
		e = &nameLock{ch: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
