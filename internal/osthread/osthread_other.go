//go:build !linux

package osthread

import "runtime"

// Go runs f on a new goroutine locked to an OS thread, and returns at
// once. When f returns true the thread is unlocked; when it returns
// false the thread ends with the goroutine. (Namespaces are Linux's: on
// other systems nothing keeps f off the main thread.)
func Go(f func() (reuse bool)) {
	go func() {
		runtime.LockOSThread()
		if f() {
			runtime.UnlockOSThread()
		}
	}()
}
