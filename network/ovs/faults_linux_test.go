package ovs_test

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/internal/linkutil"
	"github.com/dockervisor/dockervisor/network/ovs"
)

// killingRunner is the real ovs-vsctl runner that kills ovsdb-server just
// before the first command that changes the database: Open vSwitch goes
// down in the middle of a plug, after the Linux devices were created.
type killingRunner struct {
	ovs.Runner
	o    *testenv.OVS
	once sync.Once
}

func (k *killingRunner) Run(ctx context.Context, args ...string) ([]byte, error) {
	if slices.Contains(args, "add-port") {
		k.once.Do(k.o.KillDB)
	}
	return k.Runner.Run(ctx, args...)
}

func TestPlugOVSDownMidPlug(t *testing.T) {
	o := testenv.StartOVS(t) // a private switch of its own: this test breaks it
	for _, hybrid := range []bool{true, false} {
		t.Run(map[bool]string{true: "hybrid", false: "direct"}[hybrid], func(t *testing.T) {
			r := &killingRunner{Runner: ovs.Vsctl{DB: o.DB}, o: o}
			d := newDriver(t, o, ovs.WithRunner(r))
			net4, net6 := testNets()
			vif := testVIF(hybrid, 1, net4, net6)
			err := d.Plug(t.Context(), "inst-down", vif)
			require.ErrorIs(t, err, ovs.ErrUnavailable)
			require.ErrorIs(t, err, network.ErrUnavailable)
			assertNoLinks(t, o, vif)
		})
	}
	// With the database down before the plug, the driver's own read of the
	// interface (OVSDB over the socket, not ovs-vsctl) fails first.
	t.Run("read", func(t *testing.T) {
		o.KillDB()
		d := newDriver(t, o)
		net4, net6 := testNets()
		vif := testVIF(true, 1, net4, net6)
		err := d.Plug(t.Context(), "inst-down", vif)
		require.ErrorIs(t, err, ovs.ErrUnavailable)
		require.ErrorIs(t, err, network.ErrUnavailable)
		assert.Contains(t, err.Error(), "ovsdb")
		assertNoLinks(t, o, vif)
		require.ErrorIs(t, d.Unplug(t.Context(), "inst-down", vif), ovs.ErrUnavailable)
	})
}

// assertNoLinks checks that no device of vif is left in o's namespace.
func assertNoLinks(t *testing.T, o *testenv.OVS, vif network.VIF) {
	t.Helper()
	names, err := network.DeviceNames(vif.ID)
	require.NoError(t, err)
	host, err := linkutil.Open(o.NetNS)
	require.NoError(t, err)
	defer host.Close()
	for _, n := range []string{names.Tap, names.Bridge, names.VethBridge, names.VethOVS, names.Guest} {
		l, err := host.Link(n)
		require.NoError(t, err)
		assert.Nil(t, l, "link %s left behind", n)
	}
}

// TestPlugPortFailedRollsBack plugs with the host side in a namespace
// where ovs-vswitchd does not run: Open vSwitch accepts the port but cannot
// open its device (ofport -1). The plug fails with ErrPortFailed and
// leaves neither the port nor the devices.
func TestPlugPortFailedRollsBack(t *testing.T) {
	o := testenv.MustHaveOVS(t)
	for _, hybrid := range []bool{true, false} {
		t.Run(map[bool]string{true: "hybrid", false: "direct"}[hybrid], func(t *testing.T) {
			t.Parallel()
			elsewhere := newNetns(t)
			d := newDriver(t, o, ovs.WithHostNetNS(elsewhere))
			net4, net6 := testNets()
			vif := testVIF(hybrid, 1, net4, net6)
			err := d.Plug(t.Context(), "inst-fail", vif)
			require.ErrorIs(t, err, ovs.ErrPortFailed)
			names, _ := network.DeviceNames(vif.ID)
			for _, n := range []string{names.Tap, names.VethOVS} {
				assert.Empty(t, o.MustVsctl(t, "--columns=name", "find", "Interface", "name="+n))
			}
			ns, err := linkutil.Open(elsewhere)
			require.NoError(t, err)
			defer ns.Close()
			links, err := ns.LinkList()
			require.NoError(t, err)
			for _, l := range links {
				assert.Equal(t, "lo", l.Attrs().Name, "device left behind")
			}
		})
	}
}

func TestMissingBridge(t *testing.T) {
	o := testenv.MustHaveOVS(t)
	d := newDriver(t, o)
	net4, net6 := testNets()
	vif := testVIF(true, 1, net4, net6)
	vif.Bridge = "br-missing"
	require.ErrorIs(t, d.Plug(t.Context(), "inst", vif), ovs.ErrBridgeNotFound)
	assertNoLinks(t, o, vif)
}

// TestAttachNamespaceGone attaches into a namespace that no longer exists:
// ErrNamespaceGone, and no tap left on the host.
func TestAttachNamespaceGone(t *testing.T) {
	o := testenv.MustHaveOVS(t)
	for _, hybrid := range []bool{true, false} {
		t.Run(map[bool]string{true: "hybrid", false: "direct"}[hybrid], func(t *testing.T) {
			t.Parallel()
			d := newDriver(t, o)
			net4, net6 := testNets()
			vif := testVIF(hybrid, 1, net4, net6)
			t.Cleanup(func() { require.NoError(t, d.Unplug(context.WithoutCancel(t.Context()), "inst", vif)) })
			require.NoError(t, d.Plug(t.Context(), "inst", vif))
			err := d.Attach(t.Context(), "inst", vif, network.Target{NetNS: "/run/netns/dv-gone-ns", IfName: "eth0"})
			require.ErrorIs(t, err, network.ErrNamespaceGone)
			names, _ := network.DeviceNames(vif.ID)
			host, err := linkutil.Open(o.NetNS)
			require.NoError(t, err)
			defer host.Close()
			if hybrid {
				l, err := host.Link(names.Tap)
				require.NoError(t, err)
				assert.Nil(t, l, "tap left behind")
			}
			// Detach from a gone namespace is success.
			require.NoError(t, d.Detach(t.Context(), "inst", vif, network.Target{NetNS: "/run/netns/dv-gone-ns", IfName: "eth0"}))
		})
	}
}

// TestReattachAfterNamespaceDies: the instance's namespace dies (its
// process stopped) and a new one comes (the next start); Attach into the
// new one brings traffic back, for both plugs.
func TestReattachAfterNamespaceDies(t *testing.T) {
	o := testenv.MustHaveOVS(t)
	for _, hybrid := range []bool{true, false} {
		t.Run(map[bool]string{true: "hybrid", false: "direct"}[hybrid], func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			d := newDriver(t, o)
			net4, net6 := testNets()
			a, b := testVIF(hybrid, 1, net4, net6), testVIF(hybrid, 2, net4, net6)
			ta, tb := plugged(t, o, d, "inst-a", a), plugged(t, o, d, "inst-b", b)
			ping(t, ta.NetNS, b.Subnets[0].IPs[0])

			// The instance stops: its namespace goes, and the veth with it.
			out, err := exec.Command("ip", "netns", "del", strings.TrimPrefix(ta.NetNS, "/run/netns/")).CombinedOutput()
			require.NoError(t, err, "%s", out)
			// Plug again (an agent re-plugging at start) and attach into a
			// new namespace, as at the next start.
			require.NoError(t, d.Plug(ctx, "inst-a", a))
			ta2 := network.Target{NetNS: newNetns(t), IfName: "eth0"}
			require.NoError(t, d.Attach(ctx, "inst-a", a, ta2))
			ping(t, ta2.NetNS, b.Subnets[0].IPs[0])
			tcpTransfer(t, tb.NetNS, ta2.NetNS, a.Subnets[1].IPs[0], 1<<20)

			// Detach: no NIC inside; attach again: traffic.
			require.NoError(t, d.Detach(ctx, "inst-a", a, ta2))
			g, err := linkutil.Open(ta2.NetNS)
			require.NoError(t, err)
			defer g.Close()
			l, err := g.Link("eth0")
			require.NoError(t, err)
			assert.Nil(t, l, "eth0 still inside after Detach")
			require.NoError(t, d.Detach(ctx, "inst-a", a, ta2), "detach twice")
			require.NoError(t, d.Attach(ctx, "inst-a", a, ta2))
			ping(t, ta2.NetNS, b.Subnets[0].IPs[0])
		})
	}
}

// TestUnplugLeavesForeign: a bridge qbrX and an OVS port qvoX/tapX that
// someone else created under the VIF's names are not ours: Plug refuses
// to take them over and Unplug leaves them.
func TestUnplugLeavesForeign(t *testing.T) {
	o := testenv.MustHaveOVS(t)
	ctx := t.Context()
	d := newDriver(t, o)
	net4, net6 := testNets()
	vif := testVIF(true, 1, net4, net6)
	names, _ := network.DeviceNames(vif.ID)
	host, err := linkutil.Open(o.NetNS)
	require.NoError(t, err)
	defer host.Close()
	// A foreign internal OVS port under the qvo name, and a foreign bridge
	// under the qbr name.
	o.MustVsctl(t, "--", "add-port", o.Bridge, names.VethOVS, "--", "set", "Interface", names.VethOVS, "type=internal")
	t.Cleanup(func() { o.MustVsctl(t, "--if-exists", "del-port", names.VethOVS) })
	_, created, err := host.EnsureBridge(linkutil.BridgeSpec{Name: names.Bridge})
	require.NoError(t, err)
	require.True(t, created)
	t.Cleanup(func() {
		h, err := linkutil.Open(o.NetNS)
		require.NoError(t, err)
		defer h.Close()
		require.NoError(t, h.DeleteLink(names.Bridge))
	})

	require.ErrorIs(t, d.Plug(ctx, "inst", vif), network.ErrDeviceConflict)
	require.NoError(t, d.Unplug(ctx, "inst", vif))
	assert.Equal(t, o.Bridge, o.MustVsctl(t, "port-to-br", names.VethOVS), "foreign port kept")
	l, err := host.Link(names.Bridge)
	require.NoError(t, err)
	assert.NotNil(t, l, "foreign bridge kept")
	for _, n := range []string{names.VethBridge, names.Tap} {
		l, err := host.Link(n)
		require.NoError(t, err)
		assert.Nil(t, l, "%s left behind by the failed plug", n)
	}
	// The integration bridge is never touched.
	assert.Equal(t, o.Datapath, o.MustVsctl(t, "get", "Bridge", o.Bridge, "datapath_type"))
}

// TestClashWithStoppedInstance: the host side of a plugged VIF outlives its
// instance's process (qbr/qvb/qvo, or the port on the integration bridge),
// so while instance a is stopped another instance's VIF whose port ID
// starts the same is still refused up front, its rollback leaves a's host
// side, and a's next start brings its traffic back.
func TestClashWithStoppedInstance(t *testing.T) {
	o := testenv.MustHaveOVS(t)
	for _, hybrid := range []bool{true, false} {
		t.Run(map[bool]string{true: "hybrid", false: "direct"}[hybrid], func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			d := newDriver(t, o)
			net4, net6 := testNets()
			a, b := testVIF(hybrid, 1, net4, net6), testVIF(hybrid, 2, net4, net6)
			ta, _ := plugged(t, o, d, "inst-a", a), plugged(t, o, d, "inst-b", b)
			ping(t, ta.NetNS, b.Subnets[0].IPs[0])
			out, err := exec.Command("ip", "netns", "del", strings.TrimPrefix(ta.NetNS, "/run/netns/")).CombinedOutput()
			require.NoError(t, err, "%s", out)

			names, _ := network.DeviceNames(a.ID)
			port := names.Tap
			if hybrid {
				port = names.VethOVS
			}
			ids := o.MustVsctl(t, "get", "Interface", port, "external_ids")
			clash := testVIF(hybrid, 3, net4, net6)
			clash.ID = a.ID[:network.PortIDPrefixLen] + clash.ID[network.PortIDPrefixLen:]
			require.ErrorIs(t, d.Plug(ctx, "inst-c", clash), network.ErrDeviceConflict)
			require.NoError(t, d.Unplug(ctx, "inst-c", clash), "the rollback")
			assert.Equal(t, ids, o.MustVsctl(t, "get", "Interface", port, "external_ids"), "a's port is untouched")

			ta2 := network.Target{NetNS: newNetns(t), IfName: "eth0"}
			require.NoError(t, d.Attach(ctx, "inst-a", a, ta2))
			ping(t, ta2.NetNS, b.Subnets[0].IPs[0])
		})
	}
}

// TestLegacyMarks: devices an earlier version plugged (marked with the
// port ID alone, the parked guest end unmarked) are still the VIF's own:
// Attach uses them and Unplug removes them.
func TestLegacyMarks(t *testing.T) {
	o := testenv.MustHaveOVS(t)
	for _, hybrid := range []bool{true, false} {
		t.Run(map[bool]string{true: "hybrid", false: "direct"}[hybrid], func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			d := newDriver(t, o)
			net4, net6 := testNets()
			a, b := testVIF(hybrid, 1, net4, net6), testVIF(hybrid, 2, net4, net6)
			_ = plugged(t, o, d, "inst-b", b)
			require.NoError(t, d.Plug(ctx, "inst-a", a))
			host, err := linkutil.Open(o.NetNS)
			require.NoError(t, err)
			defer host.Close()
			names, _ := network.DeviceNames(a.ID)
			for n, alias := range map[string]string{
				names.Bridge: "dockervisor:" + a.ID, names.VethBridge: "dockervisor:" + a.ID, names.VethOVS: "dockervisor:" + a.ID,
				names.Tap: "dockervisor:" + a.ID, names.Guest: "",
			} {
				l, err := host.Link(n)
				require.NoError(t, err)
				if l == nil {
					continue
				}
				require.NoError(t, host.Handle().LinkSetAlias(l, alias))
			}
			require.NoError(t, d.Plug(ctx, "inst-a", a), "plug again")
			ta := network.Target{NetNS: newNetns(t), IfName: "eth0"}
			require.NoError(t, d.Attach(ctx, "inst-a", a, ta))
			ping(t, ta.NetNS, b.Subnets[0].IPs[0])
			require.NoError(t, d.Unplug(ctx, "inst-a", a))
			assertNothingLeft(t, o, a)
		})
	}
}
