package linkutil_test

import (
	"net/netip"
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

	br, created, err := h.EnsureBridge(linkutil.BridgeSpec{Name: "br0", MTU: 1400, Alias: linkutil.OwnerAlias})
	require.NoError(t, err)
	assert.True(t, created)
	again, created, err := h.EnsureBridge(linkutil.BridgeSpec{Name: "br0"})
	require.NoError(t, err)
	assert.False(t, created, "EEXIST is re-fetched")
	assert.Equal(t, br.Attrs().Index, again.Attrs().Index)
	assert.True(t, linkutil.Owned(again.Attrs().Alias))

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
