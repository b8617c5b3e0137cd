package netcounters

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/nldump"
	"github.com/dockervisor/dockervisor/stats"
)

// defaultNetlinkTimeout bounds one netlink receive when ctx has no
// deadline, so a dump can never hang forever.
const defaultNetlinkTimeout = 5 * time.Second

// InterfaceCounters returns the counters of every network interface in the
// network namespace at nsPath (such as /proc/<pid>/ns/net or a bind mount
// under /run/netns), in the kernel's interface-index order. The loopback
// device is included, with Device "lo": traffic an instance sends to
// itself is useful to see. PortID is left empty; see AttachPortIDs.
//
// If the namespace no longer exists (the path is missing, the process
// has exited, or the bind mount was removed) the error wraps
// network.ErrNamespaceGone. Reading another namespace needs CAP_SYS_ADMIN.
//
// A pid can be reused once its process has exited: callers that work on
// one instance for a while should open the namespace once and use
// InterfaceCountersAt with the open file.
func InterfaceCounters(ctx context.Context, nsPath string) ([]stats.Interface, error) {
	f, err := os.Open(nsPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("%w: open %s: %w", network.ErrNamespaceGone, nsPath, err)
		}
		return nil, fmt.Errorf("netcounters: open network namespace: %w", err)
	}
	defer f.Close()
	return InterfaceCountersAt(ctx, f)
}

// InterfaceCountersAt is InterfaceCounters for a network namespace the
// caller holds open (an open file of /proc/<pid>/ns/net or of a netns bind
// mount). Holding the file keeps the namespace alive, so the namespace
// cannot be gone; a file that is not a network namespace gives an error
// wrapping network.ErrNamespaceGone (that is what a path left behind by a removed
// bind mount becomes).
//
// It lists the links through a netlink handle bound to the namespace
// (netlink.NewHandleAt), so the calling thread never changes namespace.
// ctx's deadline (5 s without one) bounds each netlink read.
func InterfaceCountersAt(ctx context.Context, ns *os.File) ([]stats.Interface, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(ns.Fd()), &st); err != nil || st.Type != unix.NSFS_MAGIC {
		return nil, fmt.Errorf("%w: %s is not a namespace file", network.ErrNamespaceGone, ns.Name())
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(int(ns.Fd())), unix.NETLINK_ROUTE)
	runtime.KeepAlive(ns)
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("%w: %s: %w", network.ErrNamespaceGone, ns.Name(), err)
		}
		return nil, fmt.Errorf("netcounters: netlink handle in %s: %w", ns.Name(), err)
	}
	defer h.Close()
	timeout := defaultNetlinkTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	if err := h.SetSocketTimeout(timeout); err != nil {
		return nil, fmt.Errorf("netcounters: netlink timeout: %w", err)
	}
	links, err := nldump.LinkList(h)
	if err != nil {
		return nil, fmt.Errorf("netcounters: list links in %s: %w", ns.Name(), err)
	}
	out := make([]stats.Interface, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		ifc := stats.Interface{Device: a.Name}
		if s := a.Statistics; s != nil {
			ifc.RxBytes, ifc.TxBytes = s.RxBytes, s.TxBytes
			ifc.RxPackets, ifc.TxPackets = s.RxPackets, s.TxPackets
			ifc.RxErrors, ifc.TxErrors = s.RxErrors, s.TxErrors
			ifc.RxDropped, ifc.TxDropped = s.RxDropped, s.TxDropped
		}
		out = append(out, ifc)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
