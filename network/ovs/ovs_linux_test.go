package ovs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/network/ovs"
	"github.com/dockervisor/dockervisor/network/ovs/ovsrun"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopOVS()
	os.Exit(code)
}

var seq atomic.Int64

// uniq is a short name unique to this test process and call.
func uniq(prefix string) string {
	return fmt.Sprintf("%s%d%d", prefix, os.Getpid()%100000, seq.Add(1))
}

// newNetns creates a named network namespace (the instance's) removed at
// cleanup, and returns its path.
func newNetns(t testing.TB) string {
	t.Helper()
	name := uniq("dvg")
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	return "/run/netns/" + name
}

// portID is a port UUID whose first 11 characters are unique.
func portID() string {
	return fmt.Sprintf("%05x%06x-9d7e-4c1a-8b6f-0123456789ab", os.Getpid()%0xfffff, seq.Add(1))
}

// testVIF is an OVS VIF with one IPv4 and one IPv6 address; n picks them.
// Its MAC is unique in the process (the tests of a process share one
// switch, and two VIFs with one MAC on it take each other's frames).
func testVIF(hybrid bool, n int, net4, net6 netip.Prefix) network.VIF {
	id := portID()
	k := seq.Add(1)
	return network.VIF{
		ID: id, Type: network.VIFTypeOVS, HybridPlug: hybrid, Bridge: testenv.OVSBridge,
		Address: network.MustParseMAC(fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", (k>>16)&0xff, (k>>8)&0xff, k&0xff)),
		MTU:     1400,
		Subnets: []network.Subnet{
			{CIDR: net4, IPs: []netip.Addr{nthAddr(net4, n)}},
			{CIDR: net6, IPs: []netip.Addr{nthAddr(net6, n)}},
		},
	}
}

func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// testNets returns a private IPv4 and IPv6 subnet unique to the call.
func testNets() (netip.Prefix, netip.Prefix) {
	k := int(seq.Add(1))
	return netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 200+os.Getpid()%50, k%250)),
		netip.MustParsePrefix(fmt.Sprintf("fd00:%x:%x::/64", os.Getpid()&0xffff, k))
}

// newDriver returns a driver on the shared private Open vSwitch, with its
// host side in that switch's namespace.
func newDriver(t testing.TB, o *testenv.OVS, opts ...ovs.Option) *ovs.Driver {
	t.Helper()
	d, err := ovs.New(append([]ovs.Option{ovs.WithDB(o.DB), ovs.WithHostNetNS(o.NetNS), ovs.WithTimeout(10 * time.Second)}, opts...)...)
	require.NoError(t, err)
	return d
}

// plugged plugs and attaches vif into a new namespace as eth0 and
// registers unplug (and a check that nothing is left) at cleanup.
func plugged(t *testing.T, o *testenv.OVS, d *ovs.Driver, inst string, vif network.VIF) network.Target {
	t.Helper()
	ctx := t.Context()
	target := network.Target{NetNS: newNetns(t), IfName: "eth0"}
	t.Cleanup(func() {
		require.NoError(t, d.Unplug(context.WithoutCancel(ctx), inst, vif))
		assertNothingLeft(t, o, vif)
	})
	require.NoError(t, d.Plug(ctx, inst, vif))
	require.NoError(t, d.Attach(ctx, inst, vif, target))
	return target
}

// assertNothingLeft checks that no device or Open vSwitch port of vif is
// left.
func assertNothingLeft(t *testing.T, o *testenv.OVS, vif network.VIF) {
	t.Helper()
	names, err := network.DeviceNames(vif.ID)
	require.NoError(t, err)
	host, err := linkutil.Open(o.NetNS)
	require.NoError(t, err)
	defer host.Close()
	for _, n := range []string{names.Tap, names.Bridge, names.VethBridge, names.VethOVS, names.Guest} {
		l, err := host.Link(n)
		require.NoError(t, err)
		assert.Nil(t, l, "link %s left in the host namespace", n)
		assert.Empty(t, o.MustVsctl(t, "--columns=name", "find", "Interface", "name="+n), "OVS interface %s left", n)
	}
}

// ping sends IPv4 or IPv6 echo requests from the namespace at nsPath.
func ping(t *testing.T, nsPath string, to netip.Addr) {
	t.Helper()
	name := strings.TrimPrefix(nsPath, "/run/netns/")
	out, err := exec.Command("ip", "netns", "exec", name, "busybox", "ping", "-c", "2", "-W", "2", to.String()).CombinedOutput()
	require.NoError(t, err, "ping %s from %s: %s", to, name, out)
}

// tcpTransfer sends size random bytes over TCP from the namespace at from
// to a listener in the namespace at to, and checks they arrive intact.
func tcpTransfer(t *testing.T, from, to string, addr netip.Addr, size int) {
	t.Helper()
	src, err := linkutil.Open(from)
	require.NoError(t, err)
	defer src.Close()
	dst, err := linkutil.Open(to)
	require.NoError(t, err)
	defer dst.Close()

	var ln net.Listener
	require.NoError(t, dst.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}))
	defer ln.Close()
	got := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- [32]byte{}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		h := sha256.New()
		_, _ = io.Copy(h, c)
		got <- [32]byte(h.Sum(nil))
	}()
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	var c net.Conn
	require.NoError(t, src.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		return err
	}))
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = io.Copy(c, bytes.NewReader(payload))
	require.NoError(t, err, "send %d bytes to %s", size, ln.Addr())
	require.NoError(t, c.Close())
	assert.Equal(t, sha256.Sum256(payload), <-got, "TCP transfer to %s", ln.Addr())
}

// TestTraffic plugs two instances, hybrid and direct, and sends ping and
// TCP both ways over IPv4 and IPv6 through the private switch: on the
// kernel datapath where the kernel has the Open vSwitch module (the kernel
// lane requires it), else on the userspace datapath.
func TestTraffic(t *testing.T) {
	o := testenv.MustHaveOVS(t)
	if testenv.HasKernelFeature(t, testenv.FeatureOVSKernelDatapath) {
		require.Equal(t, ovsrun.DatapathSystem, o.Datapath, "the kernel has the Open vSwitch module")
	}
	t.Logf("datapath_type=%s", o.Datapath)
	for _, hybrid := range []bool{true, false} {
		t.Run(map[bool]string{true: "hybrid", false: "direct"}[hybrid], func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			d := newDriver(t, o)
			net4, net6 := testNets()
			a, b := testVIF(hybrid, 1, net4, net6), testVIF(hybrid, 2, net4, net6)
			instA, instB := "inst-"+a.ID[:8], "inst-"+b.ID[:8]
			ta, tb := plugged(t, o, d, instA, a), plugged(t, o, d, instB, b)

			// Plug and Attach again: idempotent.
			require.NoError(t, d.Plug(ctx, instA, a))
			require.NoError(t, d.Attach(ctx, instA, a, ta))

			for _, ip := range []netip.Addr{b.Subnets[0].IPs[0], b.Subnets[1].IPs[0]} {
				ping(t, ta.NetNS, ip)
				tcpTransfer(t, ta.NetNS, tb.NetNS, ip, 4<<20)
			}
			ping(t, tb.NetNS, a.Subnets[1].IPs[0])

			// The external-ids a Neutron agent reads.
			names, _ := network.DeviceNames(a.ID)
			port := names.Tap
			if hybrid {
				port = names.VethOVS
			}
			for k, v := range map[string]string{"iface-id": a.ID, "iface-status": "active", "attached-mac": a.Address.String(), "vm-uuid": instA} {
				got := o.MustVsctl(t, "get", "Interface", port, "external_ids:"+k)
				assert.Equal(t, v, strings.Trim(got, `"`), "external-ids:%s", k)
			}
			assert.Equal(t, testenv.OVSBridge, o.MustVsctl(t, "port-to-br", port))
			// The port is a port of the datapath the bridge uses.
			dpif, err := exec.Command("ovs-appctl", "-t", filepath.Join(o.Dir, "ovs-vswitchd.ctl"), "dpif/show").CombinedOutput()
			require.NoError(t, err, "%s", dpif)
			assert.Contains(t, string(dpif), map[string]string{ovsrun.DatapathSystem: "system@ovs-system", ovsrun.DatapathNetdev: "netdev@ovs-netdev"}[o.Datapath])
			assert.Regexp(t, `(?m)^\s+`+port+` \d+/\d+`, string(dpif), "port %s in the datapath", port)

			// The guest end inside: name, MAC, MTU.
			g, err := linkutil.Open(ta.NetNS)
			require.NoError(t, err)
			defer g.Close()
			l, err := g.Link("eth0")
			require.NoError(t, err)
			require.NotNil(t, l)
			assert.Equal(t, a.Address.String(), l.Attrs().HardwareAddr.String())
			assert.Equal(t, 1400, l.Attrs().MTU)
		})
	}
}
