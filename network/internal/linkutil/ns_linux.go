package linkutil

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/netnsdir"
	"github.com/dockervisor/dockervisor/internal/osthread"
	"github.com/dockervisor/dockervisor/network"
)

// CurrentNetNS is the path of the process's own network namespace, the
// default host namespace of the drivers. It names the calling thread's
// namespace, not /proc/self's: /proc/self is the main thread, which runs
// goroutines like any other and so may be, at that instant, one that a
// goroutine has locked and switched into an instance's namespace (Do,
// netlink's handles in other namespaces). A goroutine that is not locked
// into another namespace only ever runs on threads in the process's own.
const CurrentNetNS = "/proc/thread-self/ns/net"

// nsGetNSType is the NS_GET_NSTYPE ioctl of <linux/nsfs.h>: _IO(0xb7, 0x3).
const nsGetNSType = 0xb703

// NS is a network namespace held open by a file descriptor, with a
// netlink route handle bound to it. Holding the descriptor keeps the
// namespace alive, so a path that names a process's namespace
// ("/proc/<pid>/ns/net") is resolved once, even if the PID is reused. An
// NS is safe for concurrent use; Close it when done.
type NS struct {
	path string
	fd   netns.NsHandle
	h    *netlink.Handle
	dev  uint64
	ino  uint64
}

// Open opens the network namespace at path ("" means [CurrentNetNS]) and
// binds a netlink route handle to it. A path that does not exist (a dead
// process, a deleted named namespace) is [network.ErrNamespaceGone]; a
// path that is not a network namespace is [network.ErrInvalidTarget].
func Open(path string) (*NS, error) {
	if path == "" {
		path = CurrentNetNS
	}
	fd, err := netns.GetFromPath(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("%w: %s: %w", network.ErrNamespaceGone, path, err)
		}
		return nil, fmt.Errorf("%w: open namespace %s: %w", network.ErrInvalidTarget, path, err)
	}
	var st unix.Stat_t
	var sfs unix.Statfs_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		fd.Close()
		return nil, fmt.Errorf("linkutil: stat namespace %s: %w", path, err)
	}
	if err := unix.Fstatfs(int(fd), &sfs); err != nil || sfs.Type != unix.NSFS_MAGIC {
		fd.Close()
		return nil, fmt.Errorf("%w: %s is not a namespace", network.ErrInvalidTarget, path)
	}
	if t, err := unix.IoctlRetInt(int(fd), nsGetNSType); err != nil || t != unix.CLONE_NEWNET {
		fd.Close()
		return nil, fmt.Errorf("%w: %s is not a network namespace", network.ErrInvalidTarget, path)
	}
	h, err := netlink.NewHandleAt(fd, unix.NETLINK_ROUTE)
	if err != nil {
		fd.Close()
		if errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("%w: %s is not a network namespace: %w", network.ErrInvalidTarget, path, err)
		}
		return nil, fmt.Errorf("linkutil: netlink handle in %s: %w", path, err)
	}
	return &NS{path: path, fd: fd, h: h, dev: st.Dev, ino: st.Ino}, nil
}

// Path returns the path the namespace was opened from.
func (n *NS) Path() string { return n.path }

// Handle returns the netlink handle bound to the namespace.
func (n *NS) Handle() *netlink.Handle { return n.h }

// Fd returns the namespace's file descriptor, valid until Close.
func (n *NS) Fd() int { return int(n.fd) }

// Close releases the handle and the descriptor. It is idempotent.
func (n *NS) Close() error {
	if n == nil || n.h == nil {
		return nil
	}
	n.h.Close()
	n.h = nil
	return n.fd.Close()
}

// SameAs reports whether n and o are the same namespace.
func (n *NS) SameAs(o *NS) bool { return n.dev == o.dev && n.ino == o.ino }

// Alive checks that the namespace's path still names the namespace held
// open: it fails with [network.ErrNamespaceGone] once the process the path
// belongs to has died (or its PID names another process's namespace), or a
// named namespace was deleted. The held namespace itself lives until Close,
// so a caller checks Alive after its work and undoes that work on error.
func (n *NS) Alive() error {
	var st unix.Stat_t
	if err := unix.Stat(n.path, &st); err != nil {
		return fmt.Errorf("%w: %s: %w", network.ErrNamespaceGone, n.path, err)
	}
	if st.Dev != n.dev || st.Ino != n.ino {
		return fmt.Errorf("%w: %s now names another namespace", network.ErrNamespaceGone, n.path)
	}
	return nil
}

// Do runs f on an OS thread switched into the namespace, for what netlink
// cannot do (an ioctl, a sysctl write). The thread is locked while f runs
// and thrown away if it cannot be switched back.
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	osthread.Go(func() bool {
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("linkutil: current namespace: %w", err)
			return false // the locked thread ends with the goroutine
		}
		defer orig.Close()
		if err := netns.Set(n.fd); err != nil {
			errc <- fmt.Errorf("linkutil: enter namespace %s: %w", n.path, err)
			return false
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it exits with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("linkutil: leave namespace %s: %w", n.path, err))
			return false
		}
		errc <- ferr
		return true
	})
	return <-errc
}

// SetSysctl writes a sysctl of the namespace, such as
// "net.ipv6.conf.default.accept_ra", from a thread inside it (the
// /proc/sys/net a task opens is its own namespace's).
func (n *NS) SetSysctl(key, value string) error {
	if key == "" || strings.Contains(key, "/") || strings.Contains(key, "..") {
		return fmt.Errorf("linkutil: sysctl %q", key)
	}
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return n.Do(func() error {
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("linkutil: sysctl %s in %s: %w", key, n.path, err)
		}
		return nil
	})
}

// NamedPath returns the path of the named network namespace name.
func NamedPath(name string) string { return netnsdir.Path(name) }

// EnsureNamed creates the named network namespace name (under
// /run/netns, made a shared mount point first as `ip netns add` does)
// unless it exists, and reports whether it made it. The calling
// goroutine's thread is not moved.
func EnsureNamed(name string) (bool, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return false, fmt.Errorf("%w: namespace name %q", network.ErrInvalidTarget, name)
	}
	if _, err := os.Stat(NamedPath(name)); err == nil {
		return false, nil
	}
	if err := netnsdir.Create(name); err != nil {
		return false, fmt.Errorf("linkutil: %w", err)
	}
	return true, nil
}

// DeleteNamed removes the named network namespace name; a missing one is
// no error.
func DeleteNamed(name string) error {
	if err := netnsdir.Delete(name); err != nil {
		return fmt.Errorf("linkutil: %w", err)
	}
	return nil
}
