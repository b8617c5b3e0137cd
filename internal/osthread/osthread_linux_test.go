package osthread

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

// TestGoNeverOnMainThread: f never runs on the main thread, and when the
// first thread Go locks is the main one (made so here), f runs on
// another thread while the main one stays out of it.
func TestGoNeverOnMainThread(t *testing.T) {
	pid := unix.Getpid()
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		Go(func() bool {
			defer wg.Done()
			assert.NotEqual(t, pid, unix.Gettid(), "f ran on the main thread")
			return true
		})
	}
	wg.Wait()

	// Make the first thread Go locks stand for the main one.
	orig := onMainThread
	t.Cleanup(func() { onMainThread = orig })
	var mu sync.Mutex
	fake := 0
	onMainThread = func() bool {
		mu.Lock()
		defer mu.Unlock()
		if fake == 0 {
			fake = unix.Gettid()
		}
		return unix.Gettid() == fake || orig()
	}
	for range 50 {
		ran := make(chan int, 1)
		Go(func() bool {
			ran <- unix.Gettid()
			return true
		})
		tid := <-ran
		mu.Lock()
		assert.NotEqual(t, fake, tid, "f ran on the thread taken for the main one")
		mu.Unlock()
		assert.NotEqual(t, pid, tid)
	}
}

// TestGoThreadEnds: a thread whose f returns false is not reused.
func TestGoThreadEnds(t *testing.T) {
	ended := make(chan int, 1)
	Go(func() bool {
		ended <- unix.Gettid()
		return false
	})
	tid := <-ended
	// The thread is gone once its goroutine has ended: its task
	// directory disappears. Other goroutines' threads never run as tid.
	for range 200 {
		done := make(chan int, 1)
		Go(func() bool {
			done <- unix.Gettid()
			return true
		})
		assert.NotEqual(t, tid, <-done, "a thread that was to end ran again")
	}
}
