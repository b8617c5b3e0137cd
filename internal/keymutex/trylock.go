package keymutex

// TryLock takes key if it is free and nobody waits for it, without
// waiting. ok is false when key is held (or queued for); otherwise unlock
// must be called exactly once.
func (m *Mutex) TryLock(key string) (unlock func(), ok bool) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = make(map[string]*entry)
	}
	e := m.locks[key]
	if e != nil {
		m.mu.Unlock()
		return nil, false
	}
	e = &entry{ch: make(chan struct{}, 1), refs: 1}
	e.ch <- struct{}{}
	m.locks[key] = e
	m.mu.Unlock()
	done := false
	return func() {
		if done {
			return
		}
		done = true
		<-e.ch
		m.release(key, e)
	}, true
}
