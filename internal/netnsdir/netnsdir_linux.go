package netnsdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/osthread"
)

// Dir is the directory of named network namespaces.
const Dir = "/run/netns"

// Path returns the path of the named network namespace name.
func Path(name string) string { return filepath.Join(Dir, name) }

var prepareMu sync.Mutex

// Prepare makes Dir a shared mount point, binding it onto itself
// (recursively, so that namespaces already bound there stay reachable)
// when it is not one yet. It is what `ip netns add` does before binding a
// namespace, and is idempotent.
func Prepare() error {
	prepareMu.Lock()
	defer prepareMu.Unlock()
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return fmt.Errorf("netnsdir: %w", err)
	}
	bound := false
	for {
		err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		// EINVAL: not a mount point yet (once bound, it is one).
		if !errors.Is(err, unix.EINVAL) || bound {
			return fmt.Errorf("netnsdir: make %s shared: %w", Dir, err)
		}
		if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("netnsdir: bind %s onto itself: %w", Dir, err)
		}
		bound = true
	}
}

// Create creates the named network namespace name, after [Prepare]. The
// calling goroutine's thread is not moved: the work runs on a thread of
// its own, thrown away if it cannot be switched back.
func Create(name string) error {
	if err := Prepare(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	osthread.Go(func() bool {
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return false // the locked thread ends with the goroutine
		}
		defer orig.Close()
		ns, err := netns.NewNamed(name)
		if err == nil {
			ns.Close()
		}
		if serr := netns.Set(orig); serr != nil {
			errc <- errors.Join(err, fmt.Errorf("switch back: %w", serr)) // the thread stays locked and dies
			return false
		}
		errc <- err
		return true
	})
	if err := <-errc; err != nil {
		return fmt.Errorf("netnsdir: create namespace %s: %w", name, err)
	}
	return nil
}

// Delete unbinds and removes the named network namespace name; a missing
// one is no error.
func Delete(name string) error {
	if _, err := os.Stat(Path(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netnsdir: delete namespace %s: %w", name, err)
	}
	return nil
}
