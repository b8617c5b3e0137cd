package keymutex

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSerialisesSameKey(t *testing.T) {
	var m Mutex
	var wg sync.WaitGroup
	counter, inside := 0, 0
	var mu sync.Mutex
	maxInside := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := m.Lock(t.Context(), "a")
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			inside++
			maxInside = max(maxInside, inside)
			mu.Unlock()
			counter++ // guarded by the key lock; -race checks it
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	assert.Equal(t, 50, counter)
	assert.Equal(t, 1, maxInside)
	assert.Empty(t, m.locks, "entries are freed")
}

func TestDifferentKeysDoNotBlock(t *testing.T) {
	var m Mutex
	unlockA, err := m.Lock(t.Context(), "a")
	require.NoError(t, err)
	defer unlockA()
	unlockB, err := m.Lock(t.Context(), "b")
	require.NoError(t, err)
	unlockB()
}

func TestLockHonoursContext(t *testing.T) {
	var m Mutex
	unlock, err := m.Lock(t.Context(), "a")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = m.Lock(ctx, "a")
	require.ErrorIs(t, err, context.Canceled)
	unlock()
	unlock() // a second call is harmless
	unlock2, err := m.Lock(t.Context(), "a")
	require.NoError(t, err)
	unlock2()
	assert.Empty(t, m.locks)
}

func TestWaitersGetKeyInArrivalOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m Mutex
		unlock, err := m.Lock(t.Context(), "a")
		require.NoError(t, err)
		const n = 10
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				unlock, err := m.Lock(t.Context(), "a")
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				unlock()
			})
			synctest.Wait() // waiter i is blocked before waiter i+1 starts
		}
		unlock()
		wg.Wait()
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		assert.Equal(t, want, order)
		assert.Empty(t, m.locks)
	})
}
