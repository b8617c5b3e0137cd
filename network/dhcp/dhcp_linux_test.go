package dhcp_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/dhcp"
)

// lan is a network in private namespaces: a bridge in a host namespace
// and the server's namespace with one port on it holding 10.20.30.2/24
// and fd00:20:30::2/64, as Neutron's DHCP port.
type lan struct {
	t    *testing.T
	host testenv.Netns
	svc  testenv.Netns
	n    int
}

var (
	v4Net  = netip.MustParsePrefix("10.20.30.0/24")
	v6Net  = netip.MustParsePrefix("fd00:20:30::/64")
	v6Net2 = netip.MustParsePrefix("fd00:20:31::/64")
	server = netip.MustParseAddr("10.20.30.2")
)

func run(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := testenv.RunInNetns(t, t.Context(), ns, args...)
	require.NoError(t, err, "%v: %s", args, out)
	return string(out)
}

func newLAN(t *testing.T) *lan {
	t.Helper()
	testenv.MustHaveDnsmasq(t)
	l := &lan{t: t, host: testenv.NewHostNetns(t), svc: testenv.NewHostNetns(t)}
	run(t, l.host.Path, "ip", "link", "add", "br0", "type", "bridge", "forward_delay", "0")
	run(t, l.host.Path, "ip", "link", "set", "br0", "up")
	run(t, l.svc.Path, "sysctl", "-qw", "net.ipv6.conf.default.accept_ra=0", "net.ipv6.conf.default.accept_dad=0")
	run(t, l.host.Path, "ip", "link", "add", "svh0", "type", "veth", "peer", "name", "svc0", "netns", l.svc.Path)
	run(t, l.host.Path, "ip", "link", "set", "svh0", "master", "br0", "up")
	run(t, l.svc.Path, "ip", "addr", "add", "10.20.30.2/24", "dev", "svc0")
	run(t, l.svc.Path, "ip", "addr", "add", "fd00:20:30::2/64", "dev", "svc0", "nodad")
	run(t, l.svc.Path, "ip", "addr", "add", "fd00:20:31::2/64", "dev", "svc0", "nodad")
	run(t, l.svc.Path, "ip", "link", "set", "svc0", "up")
	return l
}

// client makes a namespace with eth0 (MAC mac) on the bridge, up.
func (l *lan) client(mac string) testenv.Netns {
	l.t.Helper()
	c := testenv.NewGuestNetns(l.t)
	l.n++
	end := fmt.Sprintf("c%d", l.n)
	run(l.t, l.host.Path, "ip", "link", "add", end, "type", "veth", "peer", "name", "eth0", "netns", c.Path)
	run(l.t, l.host.Path, "ip", "link", "set", end, "master", "br0", "up")
	run(l.t, c.Path, "ip", "link", "set", "eth0", "address", mac)
	run(l.t, c.Path, "ip", "link", "set", "lo", "up")
	run(l.t, c.Path, "ip", "link", "set", "eth0", "up")
	return c
}

// udhcpc asks for a DHCPv4 lease from c with busybox udhcpc and returns
// what its script saw on "bound" (the lease's options as environment
// variables), or the error of a client that got none.
func (l *lan) udhcpc(c testenv.Netns) (map[string]string, error) {
	l.t.Helper()
	dir := l.t.TempDir()
	out := filepath.Join(dir, "bound")
	script := filepath.Join(dir, "script")
	require.NoError(l.t, os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" = bound ] && env > "+out+"\nexit 0\n"), 0o755))
	ctx, cancel := context.WithTimeout(l.t.Context(), 30*time.Second)
	defer cancel()
	res, err := testenv.RunInNetns(l.t, ctx, c.Path, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
		"-t", "4", "-T", "1", "-s", script, "-O", "staticroutes", "-O", "mtu")
	if err != nil {
		return nil, fmt.Errorf("udhcpc: %w: %s", err, res)
	}
	b, err := os.ReadFile(out)
	require.NoError(l.t, err, "udhcpc: %s", res)
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

func (l *lan) config(subnets ...dhcp.Subnet) dhcp.Config {
	return dhcp.Config{
		Dir:           filepath.Join(testenv.PublicTempDir(l.t), "net1"),
		NetNS:         l.svc.Path,
		Interface:     "svc0",
		Subnets:       subnets,
		MTU:           1400,
		MetadataRoute: server,
	}
}

func start(t *testing.T, cfg dhcp.Config, hosts ...dhcp.Host) *dhcp.Server {
	t.Helper()
	s, err := dhcp.Start(t.Context(), cfg, hosts)
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, s.Stop(context.WithoutCancel(t.Context())))
	})
	return s
}

func host(mac string, ips ...string) dhcp.Host {
	h := dhcp.Host{MAC: network.MustParseMAC(mac)}
	for _, ip := range ips {
		h.IPs = append(h.IPs, netip.MustParseAddr(ip))
	}
	return h
}

// TestDHCPv4: a known MAC gets its fixed IP with the subnet's gateway,
// DNS servers, host routes (with the metadata route and the default route
// as classless routes), MTU and domain; an unknown MAC gets nothing; a
// host added while the server runs is served, and a removed one no more.
func TestDHCPv4(t *testing.T) {
	l := newLAN(t)
	cfg := l.config(dhcp.Subnet{
		CIDR:    v4Net,
		Mode:    dhcp.ModeDHCP,
		Gateway: netip.MustParseAddr("10.20.30.1"),
		DNS:     []netip.Addr{netip.MustParseAddr("10.20.30.53")},
		Routes:  []network.Route{{Dest: netip.MustParsePrefix("192.168.7.0/24"), Gateway: netip.MustParseAddr("10.20.30.254")}},
	})
	s := start(t, cfg, host("02:00:00:00:00:05", "10.20.30.5", "fd00:20:30::5"))

	env, err := l.udhcpc(l.client("02:00:00:00:00:05"))
	require.NoError(t, err)
	assert.Equal(t, "10.20.30.5", env["ip"])
	assert.Equal(t, "255.255.255.0", env["subnet"])
	assert.Equal(t, "10.20.30.1", env["router"])
	assert.Equal(t, "10.20.30.53", env["dns"])
	assert.Equal(t, "1400", env["mtu"])
	assert.Equal(t, "novalocal", env["domain"])
	assert.Equal(t, "host-10-20-30-5", env["hostname"])
	assert.Equal(t, "10.20.30.2", env["serverid"])
	assert.Equal(t, "86400", env["lease"])
	assert.Equal(t, "192.168.7.0/24 10.20.30.254 169.254.169.254/32 10.20.30.2 0.0.0.0/0 10.20.30.1", env["staticroutes"])

	leases, err := s.Leases()
	require.NoError(t, err)
	require.Len(t, leases, 1)
	assert.Equal(t, "02:00:00:00:00:05", leases[0].MAC.String())
	assert.Equal(t, "10.20.30.5", leases[0].IP.String())
	assert.WithinDuration(t, time.Now().Add(24*time.Hour), leases[0].Expires, time.Hour)

	// No dynamic pool: an unknown MAC gets no lease.
	_, err = l.udhcpc(l.client("02:00:00:00:00:06"))
	require.Error(t, err)

	// A host added to the running server is served at once: dnsmasq
	// re-reads its hosts (no restart).
	pid, err := s.PID()
	require.NoError(t, err)
	require.NoError(t, s.AddHost(t.Context(), host("02:00:00:00:00:07", "10.20.30.7")))
	after, err := s.PID()
	require.NoError(t, err)
	assert.Equal(t, pid, after, "hosts are reloaded, not restarted")
	env, err = l.udhcpc(l.client("02:00:00:00:00:07"))
	require.NoError(t, err)
	assert.Equal(t, "10.20.30.7", env["ip"])

	// A removed one is not, and its lease is gone.
	require.NoError(t, s.RemoveHost(t.Context(), network.MustParseMAC("02:00:00:00:00:07")))
	_, err = l.udhcpc(l.client("02:00:00:00:00:07"))
	require.Error(t, err)
	leases, err = s.Leases()
	require.NoError(t, err)
	require.Len(t, leases, 1)
	assert.Equal(t, "02:00:00:00:00:05", leases[0].MAC.String())

	hosts, err := s.Hosts()
	require.NoError(t, err)
	require.Len(t, hosts, 1)
	assert.Equal(t, "02:00:00:00:00:05", hosts[0].MAC.String())

	// A port's address given to a new port (a new MAC) while the old
	// port's lease runs: the new port gets it, the old lease is gone.
	require.NoError(t, s.SetHosts(t.Context(), []dhcp.Host{host("02:00:00:00:00:08", "10.20.30.5")}))
	env, err = l.udhcpc(l.client("02:00:00:00:00:08"))
	require.NoError(t, err)
	assert.Equal(t, "10.20.30.5", env["ip"])
	leases, err = s.Leases()
	require.NoError(t, err)
	require.Len(t, leases, 1)
	assert.Equal(t, "02:00:00:00:00:08", leases[0].MAC.String())
}

// TestSLAAC: on a SLAAC subnet a host makes the EUI-64 address of its MAC
// from the server's router advertisements (which carry the MTU and do not
// make the server a default router).
func TestSLAAC(t *testing.T) {
	l := newLAN(t)
	start(t, l.config(dhcp.Subnet{CIDR: v6Net, Mode: dhcp.ModeSLAAC}))
	c := l.client("02:00:00:00:00:05")
	addr := waitFor(t, func() (string, bool) {
		out := run(t, c.Path, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
		return out, strings.Contains(out, "fd00:20:30::ff:fe00:5/64")
	})
	assert.Contains(t, addr, "dynamic", "made from an advertisement")
	mtu := waitFor(t, func() (string, bool) {
		out := run(t, c.Path, "cat", "/proc/sys/net/ipv6/conf/eth0/mtu")
		return out, strings.TrimSpace(out) == "1400"
	})
	assert.Equal(t, "1400", strings.TrimSpace(mtu))
	assert.NotContains(t, run(t, c.Path, "ip", "-6", "route", "show", "default"), "default", "the server is no router")
}

// TestDHCPv6: a stateful subnet gives a known host its fixed address by
// DHCPv6 (ISC dhclient as the client), with the DNS servers; a stateless
// one gives SLAAC addresses and the DNS servers.
func TestDHCPv6(t *testing.T) {
	l := newLAN(t)
	dns := netip.MustParseAddr("fd00:20:30::53")
	s := start(t, l.config(
		dhcp.Subnet{CIDR: v6Net, Mode: dhcp.ModeDHCPv6Stateful, DNS: []netip.Addr{dns}},
		dhcp.Subnet{CIDR: v6Net2, Mode: dhcp.ModeDHCPv6Stateless, DNS: []netip.Addr{dns}},
	), host("02:00:00:00:00:05", "fd00:20:30::1234"))
	c := l.client("02:00:00:00:00:05")
	run(t, c.Path, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0")
	// The stateless subnet: a SLAAC address.
	waitFor(t, func() (string, bool) {
		out := run(t, c.Path, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
		return out, strings.Contains(out, "fd00:20:31::ff:fe00:5/64")
	})
	out := waitFor(t, func() (string, bool) {
		out := run(t, c.Path, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link")
		return out, strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative")
	})
	require.NotEmpty(t, out)
	// The lease and PID files where Debian's AppArmor profile of dhclient
	// lets it write them (/run/dhclient*.lease*, /run/dhclient*.pid): on
	// a host that enforces it, a lease file elsewhere is never written.
	base := filepath.Join("/run", testenv.UniqueName("dhclient-dv"))
	lease, pidFile := base+".lease", base+".pid"
	t.Cleanup(func() {
		for _, f := range []string{lease, pidFile} {
			if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	res, err := testenv.RunInNetns(t, ctx, c.Path, "dhclient", "-6", "-1", "-v",
		"-lf", lease, "-pf", pidFile, "-sf", "/bin/true", "eth0")
	t.Cleanup(func() {
		// dhclient -1 stays as a daemon after its lease; end it by its PID file.
		if b, err := os.ReadFile(pidFile); err == nil {
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
		}
	})
	require.NoError(t, err, "dhclient: %s", res)
	b, err := os.ReadFile(lease)
	require.NoError(t, err)
	assert.Contains(t, string(b), "iaaddr fd00:20:30::1234")
	assert.Contains(t, string(b), "option dhcp6.name-servers fd00:20:30::53")
	leases, err := s.Leases()
	require.NoError(t, err)
	require.Len(t, leases, 1)
	assert.Equal(t, "fd00:20:30::1234", leases[0].IP.String())
}

// exited reports whether process pid has exited: it is gone, or a zombie
// its new parent has not reaped yet.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

func waitFor(t *testing.T, f func() (string, bool)) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, ok := f()
		if ok {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached: last seen %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLifecycle: Start is idempotent (same configuration: same process;
// a changed one: a new process), Open finds a server by its directory,
// Stop ends it and only it, and a second Stop is no error.
func TestLifecycle(t *testing.T) {
	l := newLAN(t)
	cfg := l.config(dhcp.Subnet{CIDR: v4Net, Mode: dhcp.ModeDHCP})
	s := start(t, cfg, host("02:00:00:00:00:05", "10.20.30.5"))
	pid, err := s.PID()
	require.NoError(t, err)

	s2, err := dhcp.Start(t.Context(), cfg, []dhcp.Host{host("02:00:00:00:00:05", "10.20.30.5")})
	require.NoError(t, err)
	pid2, err := s2.PID()
	require.NoError(t, err)
	assert.Equal(t, pid, pid2, "same configuration: the same process")

	cfg.MTU = 1300
	_, err = dhcp.Start(t.Context(), cfg, []dhcp.Host{host("02:00:00:00:00:05", "10.20.30.5")})
	require.NoError(t, err)
	pid3, err := s.PID()
	require.NoError(t, err)
	assert.NotEqual(t, pid, pid3, "a changed configuration: restarted")
	assert.True(t, exited(pid), "the old process is gone")

	o, err := dhcp.Open(cfg.Dir)
	require.NoError(t, err)
	assert.Equal(t, 1300, o.Config().MTU)
	assert.True(t, o.Running())
	env, err := l.udhcpc(l.client("02:00:00:00:00:05"))
	require.NoError(t, err)
	assert.Equal(t, "1300", env["mtu"])

	require.NoError(t, o.Stop(t.Context()))
	assert.False(t, s.Running())
	assert.True(t, exited(pid3))
	require.NoError(t, o.Stop(t.Context()), "stopping a stopped server")
	_, err = o.PID()
	assert.ErrorIs(t, err, dhcp.ErrNotRunning)

	// A PID file naming another process is not that server's.
	require.NoError(t, os.WriteFile(filepath.Join(cfg.Dir, "dnsmasq.pid"), fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644))
	assert.False(t, o.Running())
	require.NoError(t, o.Stop(t.Context()), "and Stop leaves it alone")

	_, err = dhcp.Open(t.TempDir())
	assert.ErrorIs(t, err, dhcp.ErrNotRunning)
}

// TestStartErrors: dnsmasq's refusal (an interface that does not exist)
// is ErrStart with its message; a directory dnsmasq could not read after
// dropping its privileges is ErrInvalidConfig.
func TestStartErrors(t *testing.T) {
	l := newLAN(t)
	cfg := l.config(dhcp.Subnet{CIDR: v4Net, Mode: dhcp.ModeDHCP})
	cfg.Interface = "nosuch0"
	_, err := dhcp.Start(t.Context(), cfg, nil)
	require.ErrorIs(t, err, dhcp.ErrStart)
	assert.Contains(t, err.Error(), "nosuch0")

	cfg = l.config(dhcp.Subnet{CIDR: v4Net, Mode: dhcp.ModeDHCP})
	cfg.Dir = filepath.Join(t.TempDir(), "private") // t.TempDir is 0700
	_, err = dhcp.Start(t.Context(), cfg, nil)
	require.ErrorIs(t, err, dhcp.ErrInvalidConfig)
}
