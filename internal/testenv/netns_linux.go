package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dockervisor/dockervisor/internal/netnsdir"
	"github.com/dockervisor/dockervisor/network/nldump"
)

// NewHostNetns creates a private network namespace to stand in for the
// host side of a network test (bridges, veth host ends, Open vSwitch
// ports, firewall rules), with loopback up, and deletes it when the test
// ends. Its FORWARD chain is empty with policy ACCEPT, so bridged traffic
// flows there even where the real host drops it.
func NewHostNetns(t testing.TB) Netns {
	t.Helper()
	return newNamedNetns(t, "dvh")
}

// NewGuestNetns creates a private network namespace to stand in for an
// instance's namespace, with loopback down (as a fresh instance has it),
// and deletes it when the test ends.
func NewGuestNetns(t testing.TB) Netns {
	t.Helper()
	return newNamedNetns(t, "dvg")
}

func newNamedNetns(t testing.TB, prefix string) Netns {
	t.Helper()
	MustHaveRoot(t)
	name := UniqueName(prefix)
	if err := netnsdir.Create(name); err != nil {
		t.Fatalf("create network namespace %s: %v", name, err)
	}
	n := Netns{Name: name, Path: netnsdir.Path(name)}
	t.Cleanup(func() {
		if err := netnsdir.Delete(name); err != nil {
			t.Errorf("cleanup: delete network namespace %s: %v", name, err)
		}
	})
	if prefix == "dvh" {
		withNetlink(t, n.Path, func(h *netlink.Handle) error {
			lo, err := nldump.LinkByName(h, "lo")
			if err != nil {
				return err
			}
			return h.LinkSetUp(lo)
		})
	}
	return n
}

func withNetlink(t testing.TB, path string, f func(*netlink.Handle) error) {
	t.Helper()
	fd, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatalf("open namespace %s: %v", path, err)
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink in %s: %v", path, err)
	}
	defer h.Close()
	if err := f(h); err != nil {
		t.Fatalf("in namespace %s: %v", path, err)
	}
}

// LinkNames returns the names of the links in the network namespace at
// path, read over netlink with nldump's retry: a dump that a concurrent
// change interrupted is read again, never half-parsed (`ip link show`
// prints "Dump was interrupted and may be inconsistent." among its lines).
func LinkNames(t testing.TB, path string) []string {
	t.Helper()
	var names []string
	withNetlink(t, path, func(h *netlink.Handle) error {
		links, err := nldump.LinkList(h)
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return err
	})
	return names
}

// NetnsProcess is a process in a network namespace of its own, as an
// instance's process is: the namespace lives as long as the process.
type NetnsProcess struct {
	cmd *exec.Cmd
	// Path is "/proc/<pid>/ns/net".
	Path string
}

// StartNetnsProcess starts a sleeping process in a new network namespace
// and kills it when the test ends.
func StartNetnsProcess(t testing.TB) *NetnsProcess {
	t.Helper()
	MustHaveRoot(t)
	cmd := exec.Command("sleep", "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a process in a new network namespace: %v", err)
	}
	p := &NetnsProcess{cmd: cmd, Path: fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)}
	t.Cleanup(p.Kill)
	return p
}

// Kill kills the process and waits for it, so its namespace is gone. It is
// idempotent.
func (p *NetnsProcess) Kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// RunInNetns runs the command args inside the network namespace at path
// (nsenter --net) and returns its combined output. It fails the test if
// the command cannot be started, not if it exits non-zero.
func RunInNetns(t testing.TB, ctx context.Context, path string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + path, "--"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run %v in %s: %v", args, path, err)
	}
	return out.Bytes(), err
}

// StartInNetns starts the command args in the background inside the
// network namespace at path and kills it when the test ends. Its output
// goes to the returned buffer (read it after the process ended).
func StartInNetns(t testing.TB, path string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + path, "--"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v in %s: %v", args, path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// Ping sends count ICMP echo requests (busybox ping, IPv4 or IPv6 by the
// address) from the namespace at path to addr and returns ping's output
// and error.
func Ping(t testing.TB, path, addr string, count int) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	return RunInNetns(t, ctx, path, "busybox", "ping", "-c", fmt.Sprint(count), "-W", "5", addr)
}

// PingEventually is [Ping] for a check that traffic must pass: it sends
// one echo request at a time from the namespace at path to addr until one
// is answered or within has passed, and returns the last try's output and
// error. A port that was just added or replaced may take a moment to
// forward on a loaded host (Open vSwitch's userspace datapath starts
// polling a new port after its reconfiguration), and an address's first
// packet waits for ARP or neighbour discovery. A check that traffic must
// not pass uses Ping: one try that must fail.
func PingEventually(t testing.TB, path, addr string, within time.Duration) ([]byte, error) {
	t.Helper()
	start := time.Now()
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		out, err := RunInNetns(t, ctx, path, "busybox", "ping", "-c", "1", "-W", "2", addr)
		cancel()
		if err == nil {
			if try > 1 {
				t.Logf("ping %s from %s answered at try %d, after %v", addr, path, try, time.Since(start).Round(time.Millisecond))
			}
			return out, nil
		}
		if time.Since(start) >= within || t.Context().Err() != nil {
			return out, fmt.Errorf("%w (%d tries in %v)", err, try, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// StartHTTPServer serves body as /data from a busybox httpd listening on
// port (all addresses, IPv4 and IPv6) in the namespace at path, until the
// test ends.
func StartHTTPServer(t testing.TB, path string, port int, body []byte) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/data", body, 0o644); err != nil {
		t.Fatal(err)
	}
	StartInNetns(t, path, "busybox", "httpd", "-f", "-p", fmt.Sprint(port), "-h", dir)
}

// HTTPGet fetches url with busybox wget from inside the namespace at path,
// retrying for a few seconds while the server comes up, and returns the
// body.
func HTTPGet(t testing.TB, path, url string) ([]byte, error) {
	t.Helper()
	var (
		out []byte
		err error
	)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		cmd := exec.CommandContext(ctx, "nsenter", "--net="+path, "--", "busybox", "wget", "-q", "-O", "-", url) // busybox 1.35's wget -T crashes
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err = cmd.Output()
		cancel()
		if err == nil {
			return out, nil
		}
		err = fmt.Errorf("wget %s: %w: %s", url, err, stderr.String())
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ipDumpInterrupted is what ip(8) says on standard error when the kernel
// flagged its dump NLM_F_DUMP_INTR: the objects changed while it was
// dumped, so what came back may be inconsistent.
const ipDumpInterrupted = "Dump was interrupted"

// ipDumpRetries counts the dumps IPJSONInNetns took again (for its test).
var ipDumpRetries atomic.Int64

// IPJSONInNetns runs ip(8) with -j and args inside the network namespace
// at path and decodes what it prints into v. Its standard error is kept
// apart from the JSON, and a dump the kernel flags as interrupted (links
// or addresses changing meanwhile, as they do in a namespace other tests
// share) is taken again, up to ten times.
func IPJSONInNetns(t testing.TB, ctx context.Context, path string, v any, args ...string) error {
	t.Helper()
	for attempt := 1; ; attempt++ {
		cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + path, "--", "ip", "-j"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil && cmd.ProcessState == nil {
			t.Fatalf("run ip %v in %s: %v", args, path, err)
		}
		if strings.Contains(stderr.String(), ipDumpInterrupted) && attempt < 10 {
			ipDumpRetries.Add(1)
			continue
		}
		if err != nil {
			return fmt.Errorf("ip -j %s in %s: %w: %s", strings.Join(args, " "), path, err, stderr.Bytes())
		}
		if err := json.Unmarshal(stdout.Bytes(), v); err != nil {
			return fmt.Errorf("ip -j %s in %s: %w (stderr: %s)", strings.Join(args, " "), path, err, stderr.Bytes())
		}
		return nil
	}
}
