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
	go func() { errc <- newNetns(name) }()
	return <-errc
}

func newNetns(name string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		return fmt.Errorf("lab: create network namespace %s: %w", name, err)
	}
	ns.Close()
	if err := netns.Set(orig); err != nil {
		runtime.LockOSThread() // stays locked: the thread dies with the goroutine
		return err
	}
	return nil
}

// deleteNetns removes the named namespace; a missing one is no error.
func deleteNetns(name string) error {
	if _, err := os.Stat("/run/netns/" + name); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return netns.DeleteNamed(name)
}
