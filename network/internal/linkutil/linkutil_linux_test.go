package linkutil_test

import (
	"net/netip"
	"os/exec"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
)

func open(t *testing.T, path string) *linkutil.NS {
	t.Helper()
	ns, err := linkutil.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, ns.Close()) })
	return ns
}

func TestBridgeVethAndGuest(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	h := open(t, testenv.NewHostNetns(t).Path)
	g := open(t, testenv.NewGuestNetns(t).Path)
	assert.False(t, h.SameAs(g))

	mark := network.DeviceOwner{Driver: "test"}.Mark()
	br, created, err := h.EnsureBridge(linkutil.BridgeSpec{Name: "br0", MTU: 1400, Alias: mark})
	require.NoError(t, err)
	assert.True(t, created)
	again, created, err := h.EnsureBridge(linkutil.BridgeSpec{Name: "br0"})
	require.NoError(t, err)
	assert.False(t, created, "EEXIST is re-fetched")
	assert.Equal(t, br.Attrs().Index, again.Attrs().Index)
	assert.Equal(t, mark, again.Attrs().Alias)
	assert.NotZero(t, again.Attrs().Flags&1, "up")

	_, err = h.AddVeth(linkutil.VethSpec{Name: "tap0", MTU: 1400, Master: br.Attrs().Index, PeerName: "eth0", PeerMAC: network.MustParseMAC("fa:16:3e:00:00:07").HardwareAddr(), PeerNS: g})
	require.NoError(t, err)
	_, err = h.AddVeth(linkutil.VethSpec{Name: "tap0", PeerName: "eth9", PeerNS: g})
	assert.ErrorIs(t, err, network.ErrDeviceConflict)
	_, _, err = h.EnsureBridge(linkutil.BridgeSpec{Name: "tap0"})
	assert.ErrorIs(t, err, network.ErrDeviceConflict, "a veth is not a bridge")
	ports, err := h.Ports(br.Attrs().Index)
	require.NoError(t, err)
	require.Len(t, ports, 1)
	assert.Equal(t, "tap0", ports[0].Attrs().Name)

	eth0, err := g.Link("eth0")
	require.NoError(t, err)
	require.NotNil(t, eth0, "the peer was created in the guest")
	assert.Equal(t, "fa:16:3e:00:00:07", eth0.Attrs().HardwareAddr.String())
	assert.Equal(t, 1400, eth0.Attrs().MTU)
	cfg := linkutil.GuestConfig{
		Addrs:     []netip.Prefix{netip.MustParsePrefix("10.5.0.2/24"), netip.MustParsePrefix("fd05::2/64")},
		Routes:    []linkutil.Route{{Dst: netip.MustParsePrefix("10.6.0.0/16"), Gateway: netip.MustParseAddr("10.5.0.9")}},
		DefaultV4: netip.MustParseAddr("10.5.0.1"), DefaultV6: netip.MustParseAddr("fd05::1"),
	}
	require.NoError(t, g.ConfigureGuest(eth0, cfg))
	require.NoError(t, g.ConfigureGuest(eth0, cfg), "configuring twice converges")
	addrs, err := g.AddrList(eth0, netlink.FAMILY_V6)
	require.NoError(t, err)
	var v6 *netlink.Addr
	for i := range addrs {
		if addrs[i].IP.String() == "fd05::2" {
			v6 = &addrs[i]
		}
	}
	require.NotNil(t, v6)
	assert.NotZero(t, v6.Flags&0x02, "IFA_F_NODAD")
	assert.Zero(t, v6.Flags&0x40, "not tentative: usable at once")
	routes, err := g.RouteList(eth0, netlink.FAMILY_ALL)
	require.NoError(t, err)
	var defaults int
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			defaults++
		}
	}
	assert.Equal(t, 2, defaults)
	lo, err := g.Link("lo")
	require.NoError(t, err)
	assert.NotZero(t, lo.Attrs().Flags&1, "loopback up")

	// Transmit checksum offload, as `ethtool -K tap0 tx off`.
	require.NoError(t, h.SetTxChecksum("tap0", false))
	on, err := h.TxChecksum("tap0")
	require.NoError(t, err)
	assert.False(t, on)
	require.NoError(t, h.SetTxChecksum("tap0", true))
	on, err = h.TxChecksum("tap0")
	require.NoError(t, err)
	assert.True(t, on)
	assert.True(t, linkutil.IsNotFound(h.SetTxChecksum("nosuch0", false)))

	require.NoError(t, h.DeleteLink("tap0"))
	require.NoError(t, h.DeleteLink("tap0"), "not found is success")
	gone, err := g.Link("eth0")
	require.NoError(t, err)
	assert.Nil(t, gone, "the peer goes with the tap")
}

func TestOpenAndAlive(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	p := testenv.StartNetnsProcess(t)
	ns := open(t, p.Path)
	require.NoError(t, ns.Alive())
	p.Kill()
	assert.ErrorIs(t, ns.Alive(), network.ErrNamespaceGone)
	_, err := linkutil.Open(p.Path)
	assert.ErrorIs(t, err, network.ErrNamespaceGone)
	_, err = linkutil.Open("/etc/hostname")
	assert.ErrorIs(t, err, network.ErrInvalidTarget)
	_, err = linkutil.Open("/proc/self/ns/uts")
	assert.ErrorIs(t, err, network.ErrInvalidTarget, "not a network namespace")
	self := open(t, "")
	assert.Equal(t, linkutil.CurrentNetNS, self.Path())
	require.NoError(t, self.Alive())
}

// TestOwnerMarks: marked devices carry their mark under their final name,
// a name taken by a device that is not ours is ErrDeviceConflict with
// nothing left behind, and DeleteOwned deletes only marked devices.
func TestOwnerMarks(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	h := open(t, testenv.NewHostNetns(t).Path)
	g := open(t, testenv.NewGuestNetns(t).Path)
	names := func(ns *linkutil.NS) []string {
		links, err := ns.LinkList()
		require.NoError(t, err)
		var out []string
		for _, l := range links {
			out = append(out, l.Attrs().Name)
		}
		return out
	}
	mark := network.DeviceOwner{Driver: "test", Instance: "k1", Port: "p1"}.Mark()
	other := network.DeviceOwner{Driver: "test", Instance: "k2", Port: "p1"}.Mark()

	foreign, created, err := h.EnsureBridge(linkutil.BridgeSpec{Name: "tapx1"})
	require.NoError(t, err)
	require.True(t, created)
	_, err = h.OwnedLink("tapx1", mark)
	assert.ErrorIs(t, err, network.ErrDeviceConflict)
	deleted, err := h.DeleteOwned("tapx1", mark)
	require.NoError(t, err)
	assert.False(t, deleted, "a device without our mark is left alone")
	hostBefore, guestBefore := names(h), names(g)

	_, err = h.AddVeth(linkutil.VethSpec{Name: "tapx1", Alias: mark, PeerName: "eth0", PeerNS: g})
	assert.ErrorIs(t, err, network.ErrDeviceConflict)
	assert.Equal(t, hostBefore, names(h), "no temporary device left")
	assert.Equal(t, guestBefore, names(g), "the guest end went with it")
	l, err := h.Link("tapx1")
	require.NoError(t, err)
	assert.Equal(t, foreign.Attrs().Index, l.Attrs().Index, "the foreign device is untouched")

	// A peer whose name is taken: the same.
	_, err = h.AddVeth(linkutil.VethSpec{Name: "tapz1", Alias: mark, PeerName: "tapx1", PeerAlias: mark})
	assert.ErrorIs(t, err, network.ErrDeviceConflict)
	assert.Equal(t, hostBefore, names(h))

	// Both ends marked, in the host namespace.
	tap, err := h.AddVeth(linkutil.VethSpec{Name: "tapy1", Alias: mark, PeerName: "nsy1", PeerAlias: mark, MTU: 1400})
	require.NoError(t, err)
	assert.Equal(t, "tapy1", tap.Attrs().Name)
	assert.Equal(t, mark, tap.Attrs().Alias)
	assert.NotZero(t, tap.Attrs().Flags&1, "the local end is up")
	peer, err := h.OwnedLink("nsy1", mark)
	require.NoError(t, err)
	require.NotNil(t, peer)
	assert.Zero(t, peer.Attrs().Flags&1, "the peer is down")
	_, err = h.OwnedLink("tapy1", other)
	assert.ErrorIs(t, err, network.ErrDeviceConflict, "another instance's mark is not ours")
	deleted, err = h.DeleteOwned("tapy1", other)
	require.NoError(t, err)
	assert.False(t, deleted)
	deleted, err = h.DeleteOwned("tapy1", other, mark)
	require.NoError(t, err)
	assert.True(t, deleted)
	gone, err := h.Link("nsy1")
	require.NoError(t, err)
	assert.Nil(t, gone, "the peer goes with it")
	deleted, err = h.DeleteOwned("tapy1", mark)
	require.NoError(t, err)
	assert.False(t, deleted, "gone is success")

	// A marked bridge whose name is a veth: conflict, nothing left.
	_, err = h.AddVeth(linkutil.VethSpec{Name: "veth9", PeerName: "veth9p"})
	require.NoError(t, err)
	hostBefore = names(h)
	_, _, err = h.EnsureBridge(linkutil.BridgeSpec{Name: "veth9", Alias: mark})
	assert.ErrorIs(t, err, network.ErrDeviceConflict)
	assert.Equal(t, hostBefore, names(h))
	// An existing bridge that is not ours is returned as it is: not
	// brought up, its alias kept.
	require.NoError(t, h.Handle().LinkSetDown(foreign))
	br, created, err := h.EnsureBridge(linkutil.BridgeSpec{Name: "tapx1", Alias: mark})
	require.NoError(t, err)
	assert.False(t, created)
	assert.Empty(t, br.Attrs().Alias)
	assert.Zero(t, br.Attrs().Flags&1, "someone else's bridge is not reconfigured")
}

// TestSweepTemps: a temporary device whose creating process died (an
// agent killed between a device's creation and its rename) is deleted; one
// of a live process, a marked one and an operator's device are not.
func TestSweepTemps(t *testing.T) {
	testenv.MustHaveRoot(t)
	t.Parallel()
	h := open(t, testenv.NewHostNetns(t).Path)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	deadPID := dead.Process.Pid
	mine := linkutil.TempName()
	assert.LessOrEqual(t, len(mine), 15, "a device name")
	orphan := "dvt" + strconv.FormatInt(int64(deadPID), 36) + "xabcdef"
	marked := "dvt" + strconv.FormatInt(int64(deadPID), 36) + "x012345"
	for _, name := range []string{mine, orphan, marked, "dvtoperator"} {
		_, _, err := h.EnsureBridge(linkutil.BridgeSpec{Name: name})
		require.NoError(t, err)
	}
	l, err := h.Link(marked)
	require.NoError(t, err)
	require.NoError(t, h.Handle().LinkSetAlias(l, "dockervisor/linuxbridge"))

	gone, err := h.SweepTemps()
	require.NoError(t, err)
	assert.Equal(t, []string{orphan}, gone)
	for _, name := range []string{mine, marked, "dvtoperator"} {
		l, err := h.Link(name)
		require.NoError(t, err)
		assert.NotNil(t, l, "%s stays", name)
	}
	l, err = h.Link(orphan)
	require.NoError(t, err)
	assert.Nil(t, l, "the dead process's temporary device is gone")
}
