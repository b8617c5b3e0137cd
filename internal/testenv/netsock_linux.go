package testenv

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/dockervisor/dockervisor/internal/osthread"
)

// InNetns runs f on an OS thread switched into the network namespace at
// path, so the sockets f creates live there. The thread is thrown away if
// it cannot be switched back.
func InNetns(path string, f func() error) error {
	errc := make(chan error, 1)
	osthread.Go(func() bool {
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return false
		}
		defer orig.Close()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", path, err)
			return false
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", path, err)
			return false
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("switch back from %s: %w", path, err) // thread stays locked and dies
			return false
		}
		errc <- ferr
		return true
	})
	return <-errc
}

// DialTCP connects to addr ("host:port") from inside the network namespace
// at path, giving up after timeout (a dropped SYN times out).
func DialTCP(path, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := InNetns(path, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, timeout)
		return err
	})
	return c, err
}

// EchoServer is a TCP server in a test's network namespace that echoes
// every line back and records the peer address of every connection.
type EchoServer struct {
	l     net.Listener
	mu    sync.Mutex
	peers []string
	conns []net.Conn
}

// StartEchoServer listens on addr ("[::]:8080" for every address of both
// families) inside the namespace at path until the test ends.
func StartEchoServer(t testing.TB, path, addr string) *EchoServer {
	t.Helper()
	s := &EchoServer{}
	if err := InNetns(path, func() error {
		var err error
		s.l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, path, err)
	}
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

func (s *EchoServer) serve() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.peers = append(s.peers, c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap().String())
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadBytes('\n')
				if err != nil {
					return
				}
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		}()
	}
}

// Peers returns the source addresses of the connections accepted so far.
func (s *EchoServer) Peers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.peers...)
}

// Close stops the server and closes its connections. It is idempotent.
func (s *EchoServer) Close() {
	_ = s.l.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}

// Echo sends msg and a newline on c and checks that it comes back within
// timeout.
func Echo(c net.Conn, msg string, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintln(c, msg); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != msg+"\n" {
		return fmt.Errorf("echo: got %q, want %q", line, msg+"\n")
	}
	return nil
}
