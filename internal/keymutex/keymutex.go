// Package keymutex provides a mutex per key whose Lock honours a context.
package keymutex

import (
	"context"
	"sync"
)

// Mutex serialises work per key: callers waiting for the same key get it in
// the order they called Lock. The zero value is ready to use.
type Mutex struct {
	mu    sync.Mutex
	locks map[string]*entry
}

type entry struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

// Lock waits until key is free or ctx ends. On success it returns the
// function that unlocks key; it must be called exactly once.
func (m *Mutex) Lock(ctx context.Context, key string) (unlock func(), err error) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = make(map[string]*entry)
	}
	e := m.locks[key]
	if e == nil {
		e = &entry{ch: make(chan struct{}, 1)}
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

func (m *Mutex) release(key string, e *entry) {
	m.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(m.locks, key)
	}
	m.mu.Unlock()
}
