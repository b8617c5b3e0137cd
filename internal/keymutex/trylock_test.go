package keymutex

import (
	"context"
	"testing"
	"time"
)

func TestTryLock(t *testing.T) {
	var m Mutex
	unlock, ok := m.TryLock("a")
	if !ok {
		t.Fatal("TryLock of a free key failed")
	}
	if _, ok := m.TryLock("a"); ok {
		t.Fatal("TryLock of a held key succeeded")
	}
	if u, ok := m.TryLock("b"); !ok {
		t.Fatal("TryLock of another key failed")
	} else {
		u()
	}
	// A Lock waits for the TryLock holder.
	got := make(chan func())
	go func() {
		u, err := m.Lock(context.Background(), "a")
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("Lock did not wait for the TryLock holder")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	unlock() // idempotent
	u := <-got
	if _, ok := m.TryLock("a"); ok {
		t.Fatal("TryLock succeeded while Lock holds the key")
	}
	u()
	if u, ok := m.TryLock("a"); !ok {
		t.Fatal("TryLock after unlock failed")
	} else {
		u()
	}
	if len(m.locks) != 0 {
		t.Fatalf("entries left: %d", len(m.locks))
	}
}
