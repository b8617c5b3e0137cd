package osthread

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Go runs f on a new goroutine locked to an OS thread other than the
// main thread, and returns at once. When f returns true the thread is
// unlocked and goes back to the runtime; when it returns false (a thread
// left in another namespace, or one never to be reused) the thread ends
// with the goroutine.
func Go(f func() (reuse bool)) {
	go run(f, nil)
}

// onMainThread reports whether the calling thread is the main thread; a
// variable so that a test can make the hand-off below happen.
var onMainThread = func() bool { return unix.Gettid() == unix.Getpid() }

// run locks the calling goroutine's thread, tells locked so, and runs f
// there; on the main thread it hands f to a new goroutine instead, which
// cannot run on this thread while this goroutine holds it locked, and
// releases the main thread once that goroutine has locked its own.
func run(f func() bool, locked chan<- struct{}) {
	runtime.LockOSThread()
	if locked != nil {
		close(locked)
	}
	if onMainThread() {
		next := make(chan struct{})
		go run(f, next)
		<-next
		runtime.UnlockOSThread()
		return
	}
	if f() {
		runtime.UnlockOSThread()
	}
}
