package lab

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netns"
)

// ensureNetns creates the named network namespace if it does not exist,
// with its loopback up, without moving this process out of its own.
func ensureNetns(name string) error {
	if _, err := os.Stat("/run/netns/" + name); err == nil {
		return nil
	}
	// A goroutine of its own: if switching back fails, its thread stays
	// locked and dies with it, never running other code in the lab's namespace.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		reuse, err := newNetns(name)
		if reuse {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// newNetns creates the named namespace from the calling goroutine's
// locked thread, and reports whether the thread is back in its own
// namespace (NewNamed moves it into the new one).
func newNetns(name string) (reuse bool, err error) {
	orig, err := netns.Get()
	if err != nil {
		return false, err
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		err = fmt.Errorf("lab: create network namespace %s: %w", name, err)
	} else {
		ns.Close()
	}
	if serr := netns.Set(orig); serr != nil {
		return false, errors.Join(err, serr)
	}
	return true, err
}

// deleteNetns removes the named namespace; a missing one is no error.
func deleteNetns(name string) error {
	if _, err := os.Stat("/run/netns/" + name); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return netns.DeleteNamed(name)
}
