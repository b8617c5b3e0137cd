package docker

import (
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/networktest"
)

// The three ways the bridge drivers once took other instances' devices,
// replayed through the backend with real containers on every kind of VIF
// driver: a port ID that truncates to a live instance's device names, a
// device someone else made under a new port's tap name, and the unplug of
// a VIF that was never attached next to one that is (a refused spawn's
// rollback, Destroy, Reconcile).

func TestVIFsOwnershipLinuxBridge(t *testing.T) {
	t.Parallel()
	testVIFsOwnership(t, newBridgeLab(t))
}

func TestVIFsOwnershipOVSHybrid(t *testing.T) {
	t.Parallel()
	testVIFsOwnership(t, newOVSLab(t, testenv.MustHaveOVS(t), true))
}

func TestVIFsOwnershipOVSDirect(t *testing.T) {
	t.Parallel()
	testVIFsOwnership(t, newOVSLab(t, testenv.MustHaveOVS(t), false))
}

// clashing returns v with the port ID of other's first 11 characters and
// a tail of its own: the same host device names as other.
func clashing(v, other network.VIF) network.VIF {
	v.ID = networktest.ClashingVIF(other).ID
	return v
}

// tapOf is the tap name of v.
func tapOf(t *testing.T, v network.VIF) string {
	t.Helper()
	d, err := network.DeviceNames(v.ID)
	require.NoError(t, err)
	return d.Tap
}

// linksOf returns the names in links that are host device names of vifs.
// The lab's host namespace may be shared (one Open vSwitch per test
// binary), so the package's other tests add and remove devices there.
func linksOf(t *testing.T, links []string, vifs ...network.VIF) []string {
	t.Helper()
	var names []string
	for _, v := range vifs {
		d, err := network.DeviceNames(v.ID)
		require.NoError(t, err)
		names = append(names, hostDevices(d)...)
	}
	var mine []string
	for _, l := range links {
		if slices.Contains(names, l) {
			mine = append(mine, l)
		}
	}
	return mine
}

// requireRefused requires err to be the refusal of a VIF whose device
// names are taken: ErrInvalidArgument, wrapping network.ErrDeviceConflict.
func requireRefused(t *testing.T, err error, msg string) {
	t.Helper()
	require.ErrorIs(t, err, hypervisor.ErrInvalidArgument, msg)
	require.ErrorIs(t, err, network.ErrDeviceConflict, msg)
}

func testVIFsOwnership(t *testing.T, lab *netLab) {
	testenv.MustHaveRoot(t)
	e := newEnv(t, WithVIFDriver(lab.drv))
	// A second agent on the same host, same VIF driver and host
	// namespace, with its own records: only the VIF driver's device
	// checks stand between its instances and e's.
	e2 := newEnv(t, WithVIFDriver(lab.drv))
	ctx := t.Context()
	vp, v1 := lab.vif(1, 2), lab.vif(1, 3)
	p, k1 := e.spec("p"), e.spec("k1")
	p.VIFs, k1.VIFs = []network.VIF{vp}, []network.VIF{v1}
	e.spawn(p)
	e.spawn(k1)
	traffic := func(when string) {
		t.Helper()
		t.Log(when)
		e.requireTraffic("k1", "p", vp, false)
		e.requireTraffic("p", "k1", v1, false)
	}
	traffic("at start")
	// Every VIF of the refused operations below has device names of v1's.
	hostBefore := linksOf(t, lab.hostLinks(t), vp, v1)

	t.Run("ClashAcrossInstances", func(t *testing.T) {
		// Issue scenario 1: K2's port ID starts as K1's.
		k2 := e.spec("k2")
		k2.VIFs = []network.VIF{clashing(lab.vif(1, 4), v1)}
		_, err := e.drv.Spawn(ctx, k2)
		requireRefused(t, err, "spawn of a clashing port")
		_, err = e.drv.Info(ctx, "k2")
		require.ErrorIs(t, err, hypervisor.ErrNotFound, "the refused spawn left nothing")
		// The same port ID in two instances.
		same := lab.vif(1, 5)
		same.ID = v1.ID
		k2.VIFs = []network.VIF{same}
		_, err = e.drv.Spawn(ctx, k2)
		requireRefused(t, err, "spawn with another instance's port")
		// Hot-plugged into the peer.
		requireRefused(t, e.drv.AttachInterface(ctx, "p", clashing(lab.vif(2, 2), v1)), "attach-interface of a clashing port")
		requireRefused(t, e.drv.PlugVIFs(ctx, "p", []network.VIF{clashing(lab.vif(2, 2), v1)}), "plug-vifs of a clashing port")
		assert.ElementsMatch(t, hostBefore, linksOf(t, lab.hostLinks(t), vp, v1), "host devices of this test's VIFs")
		traffic("after the refused spawns and attaches")

		// K1 stopped: its tap went with its process, but its record holds
		// the names.
		require.NoError(t, e.drv.PowerOff(ctx, "k1", hypervisor.StopOptions{Timeout: -1}))
		k2.VIFs = []network.VIF{clashing(lab.vif(1, 4), v1)}
		_, err = e.drv.Spawn(ctx, k2)
		requireRefused(t, err, "spawn of a port clashing with a stopped instance's")
		require.NoError(t, e.drv.PowerOn(ctx, "k1"))
		traffic("K1 started again")

		// Another agent's instance: refused by the VIF driver, which sees
		// K1's devices on the host, and rolled back without touching them
		// (its first VIF was plugged, the clashing one never was).
		other := e2.spec("k2")
		first := lab.vif(3, 2)
		other.VIFs = []network.VIF{first, clashing(lab.vif(1, 4), v1)}
		_, err = e2.drv.Spawn(ctx, other)
		requireRefused(t, err, "another agent's spawn of a clashing port")
		lab.requireNothingLeftOf(t, first)
		traffic("after another agent's refused spawn and its rollback")
	})

	t.Run("ForeignDevice", func(t *testing.T) {
		// Issue scenario 2: a bridge someone made, named as the tap of a
		// new port.
		v3 := lab.vif(1, 6)
		foreign := testenv.ForeignBridge(t, lab.host, tapOf(t, v3))
		was := foreign.Describe(t)
		k3 := e.spec("k3")
		k3.VIFs = []network.VIF{v3}
		_, err := e.drv.Spawn(ctx, k3)
		requireRefused(t, err, "spawn over a foreign device")
		assert.Equal(t, was, foreign.Describe(t), "the foreign device is untouched")
		require.NoError(t, e.drv.Destroy(ctx, "k3"))
		assert.Equal(t, was, foreign.Describe(t), "Destroy leaves it")

		traffic("next to a foreign device")
		if lab.kind == "ovs-direct" {
			// A direct port stays on the integration bridge while its
			// instance is stopped, and Open vSwitch itself opens any
			// device that appears under the port's name.
			return
		}
		// An instance whose tap name someone took while it was stopped:
		// Destroy unplugs what is its own and leaves the rest.
		v4 := lab.vif(1, 7)
		k4 := e.spec("k4")
		k4.VIFs = []network.VIF{v4}
		e.spawn(k4)
		require.NoError(t, e.drv.PowerOff(ctx, "k4", hypervisor.StopOptions{Timeout: -1}))
		lab.waitGone(t, tapOf(t, v4))
		taken := testenv.ForeignBridge(t, lab.host, tapOf(t, v4))
		was = taken.Describe(t)
		require.NoError(t, e.drv.Destroy(ctx, "k4"))
		assert.Equal(t, was, taken.Describe(t), "Destroy leaves a foreign device of its tap's name")
		taken.Remove(t)
		lab.requireNothingLeftOf(t, v4)
		traffic("after the Destroy")
	})

	t.Run("UnplugNextToLiveInstance", func(t *testing.T) {
		// Issue scenario 3 through Reconcile: an instance whose container
		// vanished has its VIFs unplugged; one of another owner now holds
		// the names.
		v7 := lab.vif(1, 8)
		k7 := e.spec("k7")
		k7.VIFs = []network.VIF{v7}
		inst := e.spawn(k7)
		_, err := e.cli.ContainerRemove(ctx, inst.BackendID, client.ContainerRemoveOptions{Force: true})
		require.NoError(t, err)
		var taken networktest.ForeignDevice
		clash := clashing(lab.vif(1, 9), v7)
		switch lab.kind {
		case "linuxbridge":
			lab.waitGone(t, tapOf(t, v7))
			// Its tap died with its namespace: another agent's instance
			// can take the name (this agent's own would be refused by the
			// record).
			k8 := e2.spec("k8")
			k8.VIFs = []network.VIF{clash}
			e2.spawn(k8)
			e2.requireTraffic("k8", "p", vp, false)
		default:
			// The Open vSwitch port (and a hybrid plug's qbr/qvb/qvo)
			// outlive the namespace and keep the names.
			other := e2.spec("k8")
			other.VIFs = []network.VIF{clash}
			_, err := e2.drv.Spawn(ctx, other)
			requireRefused(t, err, "the names of a vanished instance's plugged VIF")
			if lab.kind == "ovs-hybrid" {
				// Its tap went with the namespace; someone takes the name.
				// (Not for a direct port: Open vSwitch itself opens a
				// device of its port's name.)
				lab.waitGone(t, tapOf(t, v7))
				taken = testenv.ForeignBridge(t, lab.host, tapOf(t, v7))
			}
		}
		was := ""
		if taken.Describe != nil {
			was = taken.Describe(t)
		}
		rep, err := e.drv.Reconcile(ctx, hypervisor.ReconcileOptions{Known: []string{"p", "k1"}, Policy: hypervisor.ReconcileRemove})
		require.NoError(t, err)
		assert.Contains(t, rep.Removed, "k7")
		assert.Empty(t, rep.Failed)
		if lab.kind == "linuxbridge" {
			e2.requireTraffic("k8", "p", vp, false)
			e.requireTraffic("p", "k8", clash, false)
			require.NoError(t, e2.drv.Destroy(ctx, "k8"))
		}
		if taken.Describe != nil {
			assert.Equal(t, was, taken.Describe(t), "Reconcile leaves a foreign device of its tap's name")
			taken.Remove(t)
		}
		lab.requireNothingLeftOf(t, v7)

		// Unplugs of VIFs an instance does not have, and of a clashing
		// one, through every unplugging call.
		require.NoError(t, e.drv.UnplugVIFs(ctx, "p", []network.VIF{clashing(lab.vif(2, 3), v1)}))
		require.NoError(t, e.drv.DetachInterface(ctx, "p", clashing(lab.vif(2, 3), v1)))
		traffic("after the unplugs")
	})

	require.NoError(t, e.drv.Destroy(ctx, "k1"))
	lab.requireNothingLeftOf(t, v1)
	require.NoError(t, e.drv.Destroy(ctx, "p"))
	lab.requireNothingLeft(t, vp, v1)
}

// waitGone waits until the host device name is gone: the kernel tears an
// ended process's network namespace down (and the veth in it with it)
// asynchronously, after the process is reaped.
func (l *netLab) waitGone(t *testing.T, name string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for slices.Contains(l.hostLinks(t), name) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s still in the host namespace a minute after its namespace's process ended", name)
		}
	}
}
