package metadata

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/network/internal/linkutil"
)

// ListenNetns answers on Address (169.254.169.254:80) inside the network
// namespace at nsPath, as the service of network networkID: the listening
// socket is made in that namespace (by a thread switched into it), so it
// sees the packets instances send there, and the rest of the program
// stays where it is. The address need not be on an interface yet
// (IP_FREEBIND): instances reach the service once it is. Close the
// Listener (or the Service) to stop.
func (s *Service) ListenNetns(ctx context.Context, nsPath, networkID string) (*Listener, error) {
	ns, err := linkutil.Open(nsPath)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	defer ns.Close()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = lc.Listen(ctx, "tcp4", Address)
		return err
	}); err != nil {
		return nil, fmt.Errorf("metadata: listen on %s in %s: %w", Address, nsPath, err)
	}
	return s.Serve(ln, networkID)
}
