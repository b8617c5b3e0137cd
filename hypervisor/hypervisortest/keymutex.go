package hypervisortest

import (
	"context"
	"sync"
)

// keyMutex serialises work per key in arrival order; Lock honours a
// context. The zero value is ready to use.
type keyMutex struct {
	mu    sync.Mutex
	locks map[string]*keyEntry
}

type keyEntry struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

// Lock waits until key is free or ctx ends, and returns the function that
// unlocks key.
func (m *keyMutex) Lock(ctx context.Context, key string) (func(), error) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = make(map[string]*keyEntry)
	}
	e := m.locks[key]
	if e == nil {
		e = &keyEntry{ch: make(chan struct{}, 1)}
		m.locks[key] = e
	}
	e.refs++
	m.mu.Unlock()

	select {
	case e.ch <- struct{}{}:
	case <-ctx.Done():
		m.release(key, e)
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-e.ch
			m.release(key, e)
		})
	}, nil
}

func (m *keyMutex) release(key string, e *keyEntry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(m.locks, key)
	}
}
