package linuxbridge_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
)

func portID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func randomMAC() network.MAC {
	m := make([]byte, 6)
	_, _ = rand.Read(m)
	m[0] = 0xfa
	return network.MAC(m)
}

// testVIF is a VIF on bridge with the n-th address of 10.77.0.0/24 and
// fd00:77::/64 (gateways .1 and ::1, which nothing answers).
func testVIF(bridge string, n int) network.VIF {
	return network.VIF{
		ID: portID(), Address: randomMAC(), Type: network.VIFTypeBridge, Bridge: bridge, MTU: 1400,
		Subnets: []network.Subnet{
			{
				CIDR: netip.MustParsePrefix("10.77.0.0/24"), Gateway: netip.MustParseAddr("10.77.0.1"),
				IPs:    []netip.Addr{netip.AddrFrom4([4]byte{10, 77, 0, byte(n)})},
				Routes: []network.Route{{Dest: netip.MustParsePrefix("192.168.77.0/24"), Gateway: netip.MustParseAddr("10.77.0.254")}},
			},
			{
				CIDR: netip.MustParsePrefix("fd00:77::/64"), Gateway: netip.MustParseAddr("fd00:77::1"),
				IPs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("fd00:77::%d", n))},
			},
		},
	}
}

func newDriver(t *testing.T, opts ...linuxbridge.Option) (*linuxbridge.Driver, testenv.Netns) {
	t.Helper()
	host := testenv.NewHostNetns(t)
	d, err := linuxbridge.New(append([]linuxbridge.Option{linuxbridge.WithHostNetNS(host.Path)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, d.Close()) })
	return d, host
}

// TestTwoInstancesTraffic plugs two instances' namespaces on one bridge in
// a private host namespace and sends real packets between them.
func TestTwoInstancesTraffic(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	ctx := t.Context()
	d, host := newDriver(t)
	bridge := testenv.UniqueName("br")
	a, b := testVIF(bridge, 2), testVIF(bridge, 3)
	ga, gb := testenv.StartNetnsProcess(t), testenv.StartNetnsProcess(t)
	for _, p := range []struct {
		vif network.VIF
		ns  string
	}{{a, ga.Path}, {b, gb.Path}} {
		require.NoError(t, d.Plug(ctx, "inst", p.vif))
		require.NoError(t, d.Plug(ctx, "inst", p.vif), "second plug")
		t.Cleanup(func() { assert.NoError(t, d.Unplug(context.WithoutCancel(ctx), "inst", p.vif)) })
		require.NoError(t, d.Attach(ctx, "inst", p.vif, network.Target{NetNS: p.ns, IfName: "eth0", DefaultRouteV4: true, DefaultRouteV6: true}))
	}

	// What the instance sees.
	g, err := linkutil.Open(ga.Path)
	require.NoError(t, err)
	defer g.Close()
	eth0, err := g.Link("eth0")
	require.NoError(t, err)
	require.NotNil(t, eth0)
	assert.Equal(t, 1400, eth0.Attrs().MTU)
	assert.Equal(t, a.Address.String(), eth0.Attrs().HardwareAddr.String())
	addrs, err := g.AddrList(eth0, netlink.FAMILY_ALL)
	require.NoError(t, err)
	var got []string
	for _, ad := range addrs {
		if ad.IP.IsGlobalUnicast() {
			got = append(got, ad.IPNet.String())
		}
	}
	assert.ElementsMatch(t, []string{"10.77.0.2/24", "fd00:77::2/64"}, got)
	routes, err := g.RouteList(nil, netlink.FAMILY_ALL)
	require.NoError(t, err)
	var defaults, hostRoutes int
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			defaults++
		}
		if r.Dst != nil && r.Dst.String() == "192.168.77.0/24" && r.Gw.String() == "10.77.0.254" {
			hostRoutes++
		}
	}
	assert.Equal(t, 2, defaults, "one default route per family: %v", routes)
	assert.Equal(t, 1, hostRoutes, "host route: %v", routes)
	lo, err := g.Link("lo")
	require.NoError(t, err)
	assert.NotZero(t, lo.Attrs().Flags&1, "loopback up")

	// Real packets, both families.
	for _, dst := range []string{"10.77.0.3", "fd00:77::3"} {
		out, err := testenv.PingEventually(t, ga.Path, dst, 10*time.Second)
		require.NoError(t, err, "ping %s: %s", dst, out)
	}
	body := make([]byte, 1<<20)
	_, _ = rand.Read(body)
	testenv.StartHTTPServer(t, gb.Path, 8080, body)
	for _, url := range []string{"http://10.77.0.3:8080/data", "http://[fd00:77::3]:8080/data"} {
		got, err := testenv.HTTPGet(t, ga.Path, url)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(body, got), "%s: %d bytes, want %d identical", url, len(got), len(body))
	}

	// Attach again replaces the attachment; traffic still flows.
	require.NoError(t, d.Detach(ctx, "inst", a, network.Target{NetNS: ga.Path, IfName: "eth0"}))
	l, err := g.Link("eth0")
	require.NoError(t, err)
	assert.Nil(t, l, "detach removes the guest end")
	require.NoError(t, d.Detach(ctx, "inst", a, network.Target{NetNS: ga.Path, IfName: "eth0"}), "detach twice")
	require.NoError(t, d.Attach(ctx, "inst", a, network.Target{NetNS: ga.Path, IfName: "eth0", DefaultRouteV4: true}))
	out, err := testenv.PingEventually(t, ga.Path, "10.77.0.3", 10*time.Second)
	require.NoError(t, err, "%s", out)

	// Unplug both: nothing of ours is left in the host namespace.
	require.NoError(t, d.Unplug(ctx, "inst", a))
	assert.Contains(t, testenv.LinkNames(t, host.Path), bridge, "bridge stays while b is on it")
	require.NoError(t, d.Unplug(ctx, "inst", b))
	require.NoError(t, d.Unplug(ctx, "inst", b), "unplug twice")
	assert.Equal(t, []string{"lo"}, testenv.LinkNames(t, host.Path))
}

// TestForeignBridgeKept checks that unplug never deletes a bridge the driver
// did not create, and that a non-bridge device of the bridge's name is a
// typed conflict.
func TestForeignBridgeKept(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	ctx := t.Context()
	d, host := newDriver(t)
	hns, err := linkutil.Open(host.Path)
	require.NoError(t, err)
	defer hns.Close()
	bridge := testenv.UniqueName("br")
	require.NoError(t, hns.Handle().LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge, TxQLen: -1}}))
	v := testVIF(bridge, 2)
	g := testenv.StartNetnsProcess(t)
	require.NoError(t, d.Plug(ctx, "i", v))
	require.NoError(t, d.Attach(ctx, "i", v, network.Target{NetNS: g.Path, IfName: "eth0"}))
	require.NoError(t, d.Unplug(ctx, "i", v))
	assert.ElementsMatch(t, []string{"lo", bridge}, testenv.LinkNames(t, host.Path))

	dummy := testenv.UniqueName("du")
	require.NoError(t, hns.Handle().LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: dummy, TxQLen: -1}, PeerName: dummy + "p", PeerTxQLen: -1}))
	v2 := testVIF(dummy, 3)
	assert.ErrorIs(t, d.Plug(ctx, "i", v2), network.ErrDeviceConflict)
	assert.ErrorIs(t, d.Attach(ctx, "i", v2, network.Target{NetNS: g.Path, IfName: "eth0"}), network.ErrDeviceConflict)
	require.NoError(t, d.Unplug(ctx, "i", v2))
	assert.ElementsMatch(t, []string{"lo", bridge, dummy, dummy + "p"}, testenv.LinkNames(t, host.Path))
}

// TestNamespaceGoneMidAttach kills the instance's process after the veth
// was created: Attach fails with ErrNamespaceGone and leaves no tap.
func TestNamespaceGoneMidAttach(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	ctx := t.Context()
	var g *testenv.NetnsProcess
	d, host := newDriver(t, linuxbridge.WithAttachHook(func(context.Context, network.VIF, network.Target) error {
		g.Kill()
		return nil
	}))
	g = testenv.StartNetnsProcess(t)
	v := testVIF(testenv.UniqueName("br"), 2)
	require.NoError(t, d.Plug(ctx, "i", v))
	err := d.Attach(ctx, "i", v, network.Target{NetNS: g.Path, IfName: "eth0", DefaultRouteV4: true})
	require.ErrorIs(t, err, network.ErrNamespaceGone)
	assert.ElementsMatch(t, []string{"lo", v.Bridge}, testenv.LinkNames(t, host.Path), "no tap left")

	// Gone before the attach starts.
	err = d.Attach(ctx, "i", v, network.Target{NetNS: g.Path, IfName: "eth0"})
	require.ErrorIs(t, err, network.ErrNamespaceGone)
	require.NoError(t, d.Unplug(ctx, "i", v))
	assert.Equal(t, []string{"lo"}, testenv.LinkNames(t, host.Path))
}

// TestBadInput checks typed errors and that nothing is left behind.
func TestBadInput(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	ctx := t.Context()
	d, host := newDriver(t)
	g := testenv.StartNetnsProcess(t)
	bridge := testenv.UniqueName("br")
	cases := map[string]struct {
		mod  func(*network.VIF)
		want error
	}{
		"bad MAC":           {func(v *network.VIF) { v.Address = network.MAC{1, 2, 3, 4, 5, 6} }, network.ErrInvalidVIF},
		"bad CIDR":          {func(v *network.VIF) { v.Subnets[0].CIDR = netip.MustParsePrefix("10.77.0.9/24") }, network.ErrInvalidVIF},
		"bad MTU":           {func(v *network.VIF) { v.MTU = 20 }, network.ErrInvalidVIF},
		"IP outside subnet": {func(v *network.VIF) { v.Subnets[0].IPs[0] = netip.MustParseAddr("10.78.0.2") }, network.ErrInvalidVIF},
		"unknown type":      {func(v *network.VIF) { v.Type = "vhostuser" }, network.ErrUnsupportedVIFType},
		"bridge too long":   {func(v *network.VIF) { v.Bridge = "a-bridge-name-too-long" }, network.ErrDeviceNameTooLong},
		"no bridge":         {func(v *network.VIF) { v.Bridge = "" }, network.ErrInvalidVIF},
		"bad port ID":       {func(v *network.VIF) { v.ID = "a/b" }, network.ErrInvalidVIF},
	}
	for name, c := range cases {
		v := testVIF(bridge, 2)
		c.mod(&v)
		assert.ErrorIs(t, d.Plug(ctx, "i", v), c.want, name)
		assert.ErrorIs(t, d.Attach(ctx, "i", v, network.Target{NetNS: g.Path, IfName: "eth0"}), c.want, name)
	}
	v := testVIF(bridge, 2)
	require.NoError(t, d.Plug(ctx, "i", v))
	for name, tg := range map[string]network.Target{
		"no netns":       {IfName: "eth0"},
		"bad ifname":     {NetNS: g.Path, IfName: "eth/0"},
		"not a netns":    {NetNS: "/etc/hostname", IfName: "eth0"},
		"host namespace": {NetNS: host.Path, IfName: "eth0"},
	} {
		assert.ErrorIs(t, d.Attach(ctx, "i", v, tg), network.ErrInvalidTarget, name)
	}
	err := d.Attach(ctx, "i", v, network.Target{NetNS: "/proc/999999999/ns/net", IfName: "eth0"})
	assert.ErrorIs(t, err, network.ErrNamespaceGone)
	// A guest device of the target's name is a conflict and is left alone.
	require.NoError(t, d.Attach(ctx, "i", v, network.Target{NetNS: g.Path, IfName: "eth0"}))
	other := testVIF(bridge, 3)
	require.NoError(t, d.Plug(ctx, "i", other))
	assert.ErrorIs(t, d.Attach(ctx, "i", other, network.Target{NetNS: g.Path, IfName: "eth0"}), network.ErrDeviceConflict)
	require.NoError(t, d.Unplug(ctx, "i", other))
	require.NoError(t, d.Unplug(ctx, "i", v))
	assert.Equal(t, []string{"lo"}, testenv.LinkNames(t, host.Path))
	assert.True(t, errors.Is(network.ErrDeviceNameTooLong, network.ErrInvalidVIF))
}

// TestBridgeOwnership: the driver marks what it creates, deletes a bridge
// only when it created it and no port is left on it, never deletes an
// operator's bridge or another driver's, and refuses a bridge that is the
// device of one port.
func TestBridgeOwnership(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	ctx := t.Context()
	d, host := newDriver(t)
	hns, err := linkutil.Open(host.Path)
	require.NoError(t, err)
	defer hns.Close()
	g := testenv.StartNetnsProcess(t)
	alias := func(name string) string {
		l, err := hns.Link(name)
		require.NoError(t, err)
		require.NotNil(t, l, name)
		return l.Attrs().Alias
	}

	// Ours: the marks, and a port of someone else's keeps the bridge.
	v := testVIF(testenv.UniqueName("br"), 2)
	require.NoError(t, d.Plug(ctx, "k1", v))
	require.NoError(t, d.Attach(ctx, "k1", v, network.Target{NetNS: g.Path, IfName: "eth0"}))
	names, err := network.DeviceNames(v.ID)
	require.NoError(t, err)
	assert.Equal(t, "dockervisor:linuxbridge", alias(v.Bridge))
	assert.Equal(t, network.DeviceOwner{Driver: linuxbridge.DriverName, Instance: "k1", Port: v.ID}.Mark(), alias(names.Tap))
	op, err := hns.AddVeth(linkutil.VethSpec{Name: testenv.UniqueName("op"), PeerName: testenv.UniqueName("op")})
	require.NoError(t, err)
	br, err := hns.Link(v.Bridge)
	require.NoError(t, err)
	require.NoError(t, hns.Handle().LinkSetMaster(op, br))
	require.NoError(t, d.Unplug(ctx, "k1", v))
	assert.Contains(t, testenv.LinkNames(t, host.Path), v.Bridge, "a port is left: the bridge stays")
	assert.NotContains(t, testenv.LinkNames(t, host.Path), names.Tap)
	require.NoError(t, hns.DeleteByIndex(op))
	require.NoError(t, d.Unplug(ctx, "k1", v), "unplug again, once the bridge is empty")
	assert.NotContains(t, testenv.LinkNames(t, host.Path), v.Bridge, "ours and empty: deleted")

	// Not ours: an operator's bridge (no mark), with and without ports,
	// and another driver's; never deleted. The legacy mark of earlier
	// versions is ours.
	for name, mark := range map[string]string{
		"operator's":       "",
		"operator's named": "my-network",
		"another driver's": network.DeviceOwner{Driver: "novanetwork"}.Mark(),
		"earlier version":  "dockervisor",
	} {
		bridge := testenv.UniqueName("br")
		b, _, err := hns.EnsureBridge(linkutil.BridgeSpec{Name: bridge})
		require.NoError(t, err)
		if mark != "" {
			require.NoError(t, hns.Handle().LinkSetAlias(b, mark))
		}
		v := testVIF(bridge, 3)
		require.NoError(t, d.Plug(ctx, "k2", v), name)
		require.NoError(t, d.Attach(ctx, "k2", v, network.Target{NetNS: g.Path, IfName: "eth1"}), name)
		require.NoError(t, d.Unplug(ctx, "k2", v), name)
		if mark == "dockervisor" {
			assert.NotContains(t, testenv.LinkNames(t, host.Path), bridge, name)
			continue
		}
		assert.Contains(t, testenv.LinkNames(t, host.Path), bridge, "%s bridge kept", name)
		assert.Equal(t, mark, alias(bridge), "%s bridge's alias kept", name)
		require.NoError(t, hns.DeleteByIndex(b))
	}

	// The bridge of one port (an Open vSwitch hybrid plug's qbr, say) is
	// no network's bridge.
	qbr := testenv.UniqueName("qbr")
	b, _, err := hns.EnsureBridge(linkutil.BridgeSpec{Name: qbr, Alias: network.DeviceOwner{Driver: "ovs", Instance: "k9", Port: "p9"}.Mark()})
	require.NoError(t, err)
	v3 := testVIF(qbr, 4)
	assert.ErrorIs(t, d.Plug(ctx, "k3", v3), network.ErrDeviceConflict)
	require.NoError(t, d.Unplug(ctx, "k3", v3))
	l, err := hns.Link(qbr)
	require.NoError(t, err)
	require.NotNil(t, l)
	assert.Equal(t, b.Attrs().Index, l.Attrs().Index, "left alone")
}
