package stats

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
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
// ErrNamespaceGone. Reading another namespace needs CAP_SYS_ADMIN.
//
// A pid can be reused once its process has exited: callers that work on
// one instance for a while should open the namespace once and use
// InterfaceCountersAt with the open file.
func InterfaceCounters(ctx context.Context, nsPath string) ([]Interface, error) {
	f, err := os.Open(nsPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("%w: open %s: %w", ErrNamespaceGone, nsPath, err)
		}
		return nil, fmt.Errorf("stats: open network namespace: %w", err)
	}
	defer f.Close()
	return InterfaceCountersAt(ctx, f)
}

// InterfaceCountersAt is InterfaceCounters for a network namespace the
// caller holds open (an open file of /proc/<pid>/ns/net or of a netns bind
// mount). Holding the file keeps the namespace alive, so the namespace
// cannot be gone; a file that is not a network namespace gives an error
// wrapping ErrNamespaceGone (that is what a path left behind by a removed
// bind mount becomes).
//
// ctx is checked between netlink reads, and its deadline (5 s without
// one) bounds each read.
//
// It creates a route netlink socket inside the namespace (on a locked OS
// thread that enters the namespace and leaves it again at once; a thread
// that cannot return to its own namespace is discarded, never reused) and
// dumps the links over that socket from the calling goroutine.
func InterfaceCountersAt(ctx context.Context, ns *os.File) ([]Interface, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := routeSocketAt(int(ns.Fd()))
	runtime.KeepAlive(ns)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return dumpLinks(ctx, fd)
}

// AttachPortIDs sets PortID on each interface whose Device is a key of
// portByDevice (device name inside the instance → VIF/port ID). Other
// interfaces, such as "lo", keep an empty PortID.
func AttachPortIDs(ifaces []Interface, portByDevice map[string]string) {
	for i := range ifaces {
		if id, ok := portByDevice[ifaces[i].Device]; ok {
			ifaces[i].PortID = id
		}
	}
}

// routeSocketAt returns a NETLINK_ROUTE socket that belongs to the network
// namespace nsFD. A socket keeps the namespace it was created in, so only
// its creation needs the thread to be inside the namespace.
func routeSocketAt(nsFD int) (int, error) {
	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{-1, fmt.Errorf("stats: open own network namespace: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			if errors.Is(err, unix.EINVAL) {
				err = fmt.Errorf("%w: not a network namespace: %w", ErrNamespaceGone, err)
			} else {
				err = fmt.Errorf("stats: enter network namespace: %w", err)
			}
			ch <- result{-1, err}
			return
		}
		fd, serr := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// The thread is stuck in the other namespace: keep it locked
			// so that the runtime ends it with this goroutine.
			if serr == nil {
				unix.Close(fd)
			}
			ch <- result{-1, fmt.Errorf("stats: return to own network namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		if serr != nil {
			ch <- result{-1, fmt.Errorf("stats: netlink socket: %w", serr)}
			return
		}
		ch <- result{fd, nil}
	}()
	r := <-ch
	return r.fd, r.err
}

// dumpLinks sends RTM_GETLINK with NLM_F_DUMP on fd and collects the
// answers.
func dumpLinks(ctx context.Context, fd int) ([]Interface, error) {
	timeout := defaultNetlinkTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(dl), time.Millisecond))
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("stats: netlink timeout: %w", err)
	}
	buf := make([]byte, 1<<16)
	// A dump that links changed during is flagged NLM_F_DUMP_INTR and may
	// be inconsistent: ask again, a bounded number of times.
	for seq := uint32(1); ; seq++ {
		out, intr, err := dumpLinksOnce(ctx, fd, seq, buf)
		if err != nil || !intr {
			return out, err
		}
		if seq == maxDumpAttempts {
			return nil, fmt.Errorf("stats: netlink link dump interrupted %d times: %w", seq, unix.EINTR)
		}
	}
}

const maxDumpAttempts = 3

func dumpLinksOnce(ctx context.Context, fd int, seq uint32, buf []byte) (out []Interface, intr bool, err error) {
	if err := unix.Sendto(fd, linkDumpRequest(seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, false, fmt.Errorf("stats: netlink send: %w", err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		n, _, rflags, _, err := unix.Recvmsg(fd, buf, nil, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if cerr := ctx.Err(); cerr != nil {
				return nil, false, cerr
			}
			return nil, false, fmt.Errorf("stats: netlink receive: %w", err)
		}
		if rflags&unix.MSG_TRUNC != 0 {
			return nil, false, fmt.Errorf("%w: netlink message truncated", ErrMalformed)
		}
		ifs, done, dumpIntr, err := parseLinkMessages(buf[:n], seq)
		if err != nil {
			return nil, false, err
		}
		out = append(out, ifs...)
		intr = intr || dumpIntr
		if done {
			return out, intr, nil
		}
	}
}

// linkDumpRequest builds an RTM_GETLINK dump request: a netlink header
// followed by an empty ifinfomsg.
func linkDumpRequest(seq uint32) []byte {
	b := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.RTM_GETLINK)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(b[8:], seq)
	b[unix.SizeofNlMsghdr] = unix.AF_UNSPEC
	return b
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// parseLinkMessages parses one datagram of a link dump. It reports done
// at NLMSG_DONE, intr when a message carries NLM_F_DUMP_INTR, and ignores
// messages of other sequence numbers.
func parseLinkMessages(b []byte, seq uint32) (out []Interface, done, intr bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(ne.Uint32(b[0:]))
		typ := ne.Uint16(b[4:])
		flags := ne.Uint16(b[6:])
		mseq := ne.Uint32(b[8:])
		if l < unix.SizeofNlMsghdr || l > len(b) {
			return nil, false, false, fmt.Errorf("%w: netlink message length %d of %d", ErrMalformed, l, len(b))
		}
		payload := b[unix.SizeofNlMsghdr:l]
		next := min(nlAlign(l), len(b))
		b = b[next:]
		if mseq != seq {
			continue
		}
		if flags&unix.NLM_F_DUMP_INTR != 0 {
			intr = true
		}
		switch typ {
		case unix.NLMSG_DONE:
			return out, true, intr, nil
		case unix.NLMSG_ERROR:
			if len(payload) < 4 {
				return nil, false, false, fmt.Errorf("%w: short netlink error", ErrMalformed)
			}
			if errno := int32(ne.Uint32(payload)); errno != 0 {
				return nil, false, false, fmt.Errorf("stats: netlink link dump: %w", unix.Errno(-errno))
			}
			return out, true, intr, nil
		case unix.RTM_NEWLINK:
			ifc, err := parseLink(payload)
			if err != nil {
				return nil, false, false, err
			}
			out = append(out, ifc)
		}
	}
	return out, false, intr, nil
}

// parseLink parses the payload of an RTM_NEWLINK message: an ifinfomsg
// followed by attributes, of which it uses IFLA_IFNAME and IFLA_STATS64
// (or the 32-bit IFLA_STATS when the kernel sends no 64-bit counters).
func parseLink(p []byte) (Interface, error) {
	if len(p) < unix.SizeofIfInfomsg {
		return Interface{}, fmt.Errorf("%w: short ifinfomsg", ErrMalformed)
	}
	ne := binary.NativeEndian
	var (
		ifc     Interface
		have64  bool
		stats32 []byte
	)
	a := p[unix.SizeofIfInfomsg:]
	for len(a) >= 4 {
		l := int(ne.Uint16(a[0:]))
		typ := ne.Uint16(a[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(a) {
			return Interface{}, fmt.Errorf("%w: netlink attribute length %d of %d", ErrMalformed, l, len(a))
		}
		v := a[4:l]
		a = a[min(nlAlign(l), len(a)):]
		switch typ {
		case unix.IFLA_IFNAME:
			for i, c := range v {
				if c == 0 {
					v = v[:i]
					break
				}
			}
			ifc.Device = string(v)
		case unix.IFLA_STATS64:
			if len(v) < 8*8 {
				return Interface{}, fmt.Errorf("%w: short IFLA_STATS64", ErrMalformed)
			}
			u := func(i int) uint64 { return ne.Uint64(v[8*i:]) }
			fillCounters(&ifc, u)
			have64 = true
		case unix.IFLA_STATS:
			stats32 = v
		}
	}
	if !have64 && stats32 != nil {
		if len(stats32) < 8*4 {
			return Interface{}, fmt.Errorf("%w: short IFLA_STATS", ErrMalformed)
		}
		fillCounters(&ifc, func(i int) uint64 { return uint64(ne.Uint32(stats32[4*i:])) })
	}
	return ifc, nil
}

// fillCounters copies the first eight counters of rtnl_link_stats(64),
// whose order is rx/tx packets, rx/tx bytes, rx/tx errors, rx/tx dropped.
func fillCounters(ifc *Interface, u func(int) uint64) {
	ifc.RxPackets, ifc.TxPackets = u(0), u(1)
	ifc.RxBytes, ifc.TxBytes = u(2), u(3)
	ifc.RxErrors, ifc.TxErrors = u(4), u(5)
	ifc.RxDropped, ifc.TxDropped = u(6), u(7)
}
