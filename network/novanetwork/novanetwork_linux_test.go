package novanetwork_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/network/networktest"
	"github.com/dockervisor/dockervisor/network/novanetwork"
)

func links(t *testing.T, path string) []string {
	t.Helper()
	names := testenv.LinkNames(t, path)
	slices.Sort(names)
	return names
}

func link(t *testing.T, path, name string) netlink.Link {
	t.Helper()
	ns, err := linkutil.Open(path)
	require.NoError(t, err)
	defer ns.Close()
	l, err := ns.Link(name)
	require.NoError(t, err)
	return l
}

// addVeth adds the veth pair a/b in the namespace at path, both up: the
// stand-in for a host's physical interfaces (this kernel has no dummy).
func addVeth(t *testing.T, path, a, b string) {
	t.Helper()
	ns, err := linkutil.Open(path)
	require.NoError(t, err)
	defer ns.Close()
	_, err = ns.AddVeth(linkutil.VethSpec{Name: a, PeerName: b})
	require.NoError(t, err)
	l, err := ns.Link(b)
	require.NoError(t, err)
	require.NoError(t, ns.Handle().LinkSetUp(l))
}

func setup(t *testing.T) (*novanetwork.Driver, testenv.Netns) {
	t.Helper()
	testenv.MustHaveRoot(t)
	host := testenv.NewHostNetns(t)
	d, err := novanetwork.New(novanetwork.WithHostNetNS(host.Path))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, d.Close()) })
	return d, host
}

func vif(bridge string, n int) network.VIF {
	v := networktest.TestVIF(network.VIFTypeBridge, bridge, n)
	return v
}

// TestConformance runs the VIFDriver suite against flat networks whose
// bridge has a host interface (bridge_interface) enslaved.
func TestConformance(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	networktest.TestVIFDriver(t, func(t *testing.T) networktest.Harness {
		d, host := setup(t)
		addVeth(t, host.Path, "phys0", "phys0p")
		bridge := testenv.UniqueName("br")
		return networktest.Harness{
			Driver: d,
			VIF: func(n int) network.VIF {
				v := vif(bridge, n)
				v.BridgeInterface = "phys0"
				return v
			},
			NewNamespace: func(t *testing.T) (string, func()) {
				p := testenv.StartNetnsProcess(t)
				return p.Path, p.Kill
			},
			HostState: func(t *testing.T) []string { return testenv.LinkState(t, host.Path) },
			GuestLinks: func(t *testing.T, path string) []string {
				return slices.DeleteFunc(links(t, path), func(n string) bool { return n == "lo" })
			},
			Ping: testenv.PingAddr,
			AddForeignDevice: func(t *testing.T, name string) networktest.ForeignDevice {
				return testenv.ForeignBridge(t, host.Path, name)
			},
		}
	}, networktest.InParallel()) // each subtest has its own host namespace
}

func ping(t *testing.T, from, to string) {
	t.Helper()
	out, err := testenv.PingEventually(t, from, to, 10*time.Second)
	require.NoError(t, err, "ping %s: %s", to, out)
}

// TestFlatWithBridgeInterface plugs two instances on a flat network whose
// bridge has a host interface enslaved, sends packets between them, and
// checks that unplug releases the interface without deleting it.
func TestFlatWithBridgeInterface(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, host := setup(t)
	addVeth(t, host.Path, "phys0", "phys0p")
	before := links(t, host.Path)
	bridge := testenv.UniqueName("br")
	a, b := vif(bridge, 1), vif(bridge, 2)
	a.BridgeInterface, b.BridgeInterface = "phys0", "phys0"
	ga, gb := testenv.StartNetnsProcess(t), testenv.StartNetnsProcess(t)
	for _, p := range []struct {
		v  network.VIF
		ns string
	}{{a, ga.Path}, {b, gb.Path}} {
		require.NoError(t, d.Plug(ctx, "i", p.v))
		require.NoError(t, d.Plug(ctx, "i", p.v))
		t.Cleanup(func() { _ = d.Unplug(context.WithoutCancel(ctx), "i", p.v) })
		require.NoError(t, d.Attach(ctx, "i", p.v, network.Target{NetNS: p.ns, IfName: "eth0", DefaultRouteV4: true}))
	}
	br := link(t, host.Path, bridge)
	require.NotNil(t, br)
	assert.Equal(t, br.Attrs().Index, link(t, host.Path, "phys0").Attrs().MasterIndex, "bridge_interface enslaved")
	ping(t, ga.Path, "10.99.0.3")
	ping(t, gb.Path, "fd00:99::2")

	require.NoError(t, d.Unplug(ctx, "i", a))
	require.NotNil(t, link(t, host.Path, bridge), "bridge stays while b is on it")
	require.NoError(t, d.Unplug(ctx, "i", b))
	assert.Equal(t, before, links(t, host.Path), "bridge deleted, phys0 kept")
	assert.Zero(t, link(t, host.Path, "phys0").Attrs().MasterIndex, "phys0 released")
}

// TestBridgeInterfaceFaults: a missing interface and one enslaved to a
// foreign bridge are typed errors that leave nothing behind.
func TestBridgeInterfaceFaults(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, host := setup(t)
	v := vif(testenv.UniqueName("br"), 1)
	v.BridgeInterface = "nosuch0"
	before := links(t, host.Path)
	assert.ErrorIs(t, d.Plug(ctx, "i", v), network.ErrInvalidVIF)
	assert.Equal(t, before, links(t, host.Path))

	addVeth(t, host.Path, "phys1", "phys1p")
	ns, err := linkutil.Open(host.Path)
	require.NoError(t, err)
	defer ns.Close()
	foreign, _, err := ns.EnsureBridge(linkutil.BridgeSpec{Name: "foreign0"})
	require.NoError(t, err)
	require.NoError(t, ns.Handle().LinkSetMaster(link(t, host.Path, "phys1"), foreign))
	before = links(t, host.Path)
	v.BridgeInterface = "phys1"
	assert.ErrorIs(t, d.Plug(ctx, "i", v), network.ErrDeviceConflict)
	assert.Equal(t, before, links(t, host.Path), "the bridge this plug created is gone again")
	assert.Equal(t, foreign.Attrs().Index, link(t, host.Path, "phys1").Attrs().MasterIndex)
}

// TestVLANMode is nova-network's VLAN mode between two hosts (two host
// namespaces joined by a veth "trunk", each host's bridge_interface): where
// the kernel has 802.1Q, instances on VLAN 100 on either host ping each
// other, instances on VLAN 200 ping each other, and no instance reaches one
// on the other VLAN although all share one subnet; unplugging everything
// leaves each host as it was. On a kernel without 802.1Q (this project's CI
// kernel) it proves Plug returns the typed error naming the missing feature
// and leaves nothing behind. Where the environment requires 802.1Q (the
// kernel lane), a kernel without it fails the test.
func TestVLANMode(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d, host := setup(t)
	addVeth(t, host.Path, "trunk0", "trunk1")
	before := links(t, host.Path)

	// A device called as the VLAN device that is something else is
	// someone else's: a conflict, and left alone (any kernel).
	hostNS, err := linkutil.Open(host.Path)
	require.NoError(t, err)
	defer hostNS.Close()
	other, _, err := hostNS.EnsureBridge(linkutil.BridgeSpec{Name: "vlan44"})
	require.NoError(t, err)
	c := vif(testenv.UniqueName("brc"), 3)
	c.VLAN, c.BridgeInterface = 44, "trunk0"
	assert.ErrorIs(t, d.Plug(ctx, "i", c), network.ErrDeviceConflict)
	require.NoError(t, d.Unplug(ctx, "i", c))
	require.NotNil(t, link(t, host.Path, "vlan44"))
	assert.Equal(t, other.Attrs().Index, link(t, host.Path, "vlan44").Attrs().Index)
	require.NoError(t, hostNS.DeleteByIndex(other))

	if !testenv.HasKernelFeature(t, testenv.FeatureVLAN) {
		t.Log("kernel without CONFIG_VLAN_8021Q: checking the typed error")
		a := vif(testenv.UniqueName("br100"), 1)
		a.VLAN, a.BridgeInterface = 100, "trunk0"
		err := d.Plug(ctx, "i", a)
		require.ErrorIs(t, err, network.ErrKernelFeatureMissing)
		var kf *network.KernelFeatureError
		require.ErrorAs(t, err, &kf)
		assert.Equal(t, "CONFIG_VLAN_8021Q", kf.Config)
		assert.Contains(t, err.Error(), "802.1Q")
		assert.Equal(t, before, links(t, host.Path), "nothing left behind")
		require.NoError(t, d.Unplug(ctx, "i", a))
		return
	}

	// The second host: its own namespace, with the trunk's other end.
	host2 := testenv.NewHostNetns(t)
	hns := hostNS
	h2, err := linkutil.Open(host2.Path)
	require.NoError(t, err)
	defer h2.Close()
	require.NoError(t, hns.Handle().LinkSetNsFd(link(t, host.Path, "trunk1"), h2.Fd()))
	require.NoError(t, h2.Handle().LinkSetUp(link(t, host2.Path, "trunk1")))
	before, before2 := links(t, host.Path), links(t, host2.Path)
	d2, err := novanetwork.New(novanetwork.WithHostNetNS(host2.Path))
	require.NoError(t, err)
	defer d2.Close()

	// Bridges per VLAN are shared by the VIFs of one VLAN on one host.
	br100, br200 := testenv.UniqueName("br100"), testenv.UniqueName("br200")
	type inst struct {
		drv *novanetwork.Driver
		vif network.VIF
		ns  string
	}
	mk := func(drv *novanetwork.Driver, trunk, bridge string, vlan, n int) inst {
		v := vif(bridge, n)
		v.VLAN, v.BridgeInterface = vlan, trunk
		return inst{drv: drv, vif: v, ns: testenv.StartNetnsProcess(t).Path}
	}
	a100 := mk(d, "trunk0", br100, 100, 1)  // host 1, VLAN 100, 10.99.0.2
	b100 := mk(d2, "trunk1", br100, 100, 2) // host 2, VLAN 100, 10.99.0.3
	c200 := mk(d2, "trunk1", br200, 200, 3) // host 2, VLAN 200, 10.99.0.4
	e200 := mk(d, "trunk0", br200, 200, 4)  // host 1, VLAN 200, 10.99.0.5
	all := []inst{a100, b100, c200, e200}
	for _, in := range all {
		require.NoError(t, in.drv.Plug(ctx, "i", in.vif))
		t.Cleanup(func() { _ = in.drv.Unplug(context.WithoutCancel(ctx), "i", in.vif) })
		require.NoError(t, in.drv.Attach(ctx, "i", in.vif, network.Target{NetNS: in.ns, IfName: "eth0"}))
	}
	for _, h := range []string{host.Path, host2.Path} {
		for _, id := range []int{100, 200} {
			l, ok := link(t, h, novanetwork.VLANDeviceName(id)).(*netlink.Vlan)
			require.True(t, ok, "vlan%d is an 802.1Q device", id)
			assert.Equal(t, id, l.VlanId)
		}
	}
	addr := func(in inst) string { return in.vif.Subnets[0].IPs[0].String() }
	ping(t, a100.ns, addr(b100))
	ping(t, b100.ns, a100.vif.Subnets[1].IPs[0].String())
	ping(t, c200.ns, addr(e200))
	for _, p := range [][2]inst{{a100, c200}, {c200, b100}, {e200, a100}} {
		out, err := testenv.Ping(t, p[0].ns, addr(p[1]), 1)
		assert.Error(t, err, "%s must not reach %s on another VLAN: %s", addr(p[0]), addr(p[1]), out)
	}

	// Every device the driver made carries its mark.
	shared := network.DeviceOwner{Driver: novanetwork.DriverName}.Mark()
	assert.Equal(t, shared, link(t, host.Path, novanetwork.VLANDeviceName(100)).Attrs().Alias)
	assert.Equal(t, shared, link(t, host.Path, br100).Attrs().Alias)
	names, err := network.DeviceNames(a100.vif.ID)
	require.NoError(t, err)
	assert.Equal(t, network.DeviceOwner{Driver: novanetwork.DriverName, Instance: "i", Port: a100.vif.ID}.Mark(), link(t, host.Path, names.Tap).Attrs().Alias)

	for _, in := range all {
		require.NoError(t, in.drv.Unplug(ctx, "i", in.vif))
	}
	assert.Equal(t, before, links(t, host.Path), "host 1: bridges and VLAN devices deleted, the trunk kept")
	assert.Equal(t, before2, links(t, host2.Path), "host 2: bridges and VLAN devices deleted, the trunk kept")
	assert.Zero(t, link(t, host.Path, "trunk0").Attrs().MasterIndex)

	// An operator's VLAN device is used, and kept when the bridge we made
	// goes.
	require.NoError(t, hostNS.Handle().LinkAdd(&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "vlan43", ParentIndex: link(t, host.Path, "trunk0").Attrs().Index, TxQLen: -1}, VlanId: 43}))
	mine := link(t, host.Path, "vlan43").Attrs().Index
	e := vif(testenv.UniqueName("bre"), 4)
	e.VLAN, e.BridgeInterface = 43, "trunk0"
	require.NoError(t, d.Plug(ctx, "i", e))
	assert.Equal(t, link(t, host.Path, e.Bridge).Attrs().Index, link(t, host.Path, "vlan43").Attrs().MasterIndex)
	require.NoError(t, d.Unplug(ctx, "i", e))
	assert.NotContains(t, links(t, host.Path), e.Bridge, "our bridge goes")
	require.NotNil(t, link(t, host.Path, "vlan43"), "the operator's VLAN device stays")
	assert.Equal(t, mine, link(t, host.Path, "vlan43").Attrs().Index)
	require.NoError(t, hostNS.DeleteByIndex(link(t, host.Path, "vlan43")))
}
