package networktest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/network"
)

// Harness is what [TestVIFDriver] needs to test one driver.
type Harness struct {
	// Driver is the driver under test.
	Driver network.VIFDriver
	// VIF returns a valid VIF the driver serves. Each call returns a VIF
	// with its own port ID and MAC; n (1 to 50) picks its fixed IP, so
	// VIFs of different n can share a subnet.
	VIF func(n int) network.VIF
	// NewNamespace returns the path of a new, live instance namespace and
	// a function that makes it gone (kills its process). The harness
	// cleans it up when the test ends.
	NewNamespace func(t *testing.T) (path string, kill func())
	// HostState describes the host side of the driver (device names,
	// switch ports…) in a form that compares equal when nothing changed.
	HostState func(t *testing.T) []string
	// GuestLinks returns the names of the links in the namespace path,
	// other than loopback.
	GuestLinks func(t *testing.T, path string) []string
	// Ping sends packets from the namespace from to the address to and
	// returns nil if they are answered: real packets for a real driver.
	// The suite uses it to prove that an instance keeps its traffic while
	// another instance's VIF, whose device names clash with its own, is
	// refused and rolled back. It only checks that traffic passes, so a
	// real harness retries for some seconds: a port just replaced may
	// take a moment to forward on a loaded host.
	Ping func(t *testing.T, from string, to netip.Addr) error
	// AddForeignDevice creates, in the driver's host namespace, a device
	// called name that the driver did not create, as an operator would (a
	// Linux bridge, say).
	AddForeignDevice func(t *testing.T, name string) ForeignDevice
	// Settle is how long the host side may take to show what follows a
	// namespace's death (the kernel dismantles a namespace, and the
	// peers of its devices, in the background): the check after each
	// subtest's cleanups waits that long for the host state to be back.
	// Zero means 30 s; a simulated harness whose state changes at once
	// sets a small value.
	Settle time.Duration
}

// ForeignDevice is a host device made by someone other than the driver
// under test (see [Harness]).
type ForeignDevice struct {
	// Describe returns what is known of the device (its kind, index,
	// alias, master, state…), so that a device deleted, replaced or
	// reconfigured describes differently; "" once it is gone.
	Describe func(t *testing.T) string
	// Remove deletes the device.
	Remove func(t *testing.T)
}

// NewRecorderHarness returns a Harness for a new Recorder serving "bridge"
// VIFs, with simulated namespaces.
func NewRecorderHarness(t *testing.T) Harness {
	r := NewRecorder()
	return Harness{
		Driver: r,
		VIF:    func(n int) network.VIF { return TestVIF(network.VIFTypeBridge, "br-test", n) },
		NewNamespace: func(t *testing.T) (string, func()) {
			p := "/fake/netns/" + randomHex(4)
			r.AddNamespace(p)
			t.Cleanup(func() { r.RemoveNamespace(p) })
			return p, func() { r.RemoveNamespace(p) }
		},
		Settle:     time.Millisecond, // a simulated namespace goes at once
		HostState:  func(*testing.T) []string { return r.HostState() },
		GuestLinks: func(_ *testing.T, p string) []string { return r.GuestLinks(p) },
		Ping: func(_ *testing.T, from string, to netip.Addr) error {
			if !r.Reachable(from, to) {
				return fmt.Errorf("%s unreachable from %s", to, from)
			}
			return nil
		},
		AddForeignDevice: func(t *testing.T, name string) ForeignDevice {
			r.AddHostDevice(name)
			t.Cleanup(func() { r.RemoveHostDevice(name) })
			return ForeignDevice{
				Describe: func(*testing.T) string {
					if r.HasHostDevice(name) {
						return "device " + name
					}
					return ""
				},
				Remove: func(*testing.T) { r.RemoveHostDevice(name) },
			}
		},
	}
}

// TestVIF returns a valid VIF of type typ on bridge, with a random port ID
// and MAC, MTU 1400, the n-th address of 10.99.0.0/24 and fd00:99::/64
// (gateways .1 and ::1) and a host route.
func TestVIF(typ network.VIFType, bridge string, n int) network.VIF {
	mac := make([]byte, 6)
	_, _ = rand.Read(mac)
	mac[0] = 0xfa
	return network.VIF{
		ID: RandomPortID(), Address: network.MAC(mac), Type: typ, Bridge: bridge, MTU: 1400,
		Subnets: []network.Subnet{
			{
				CIDR: netip.MustParsePrefix("10.99.0.0/24"), Gateway: netip.MustParseAddr("10.99.0.1"),
				IPs:    []netip.Addr{netip.AddrFrom4([4]byte{10, 99, 0, byte(n + 1)})},
				Routes: []network.Route{{Dest: netip.MustParsePrefix("192.168.99.0/24"), Gateway: netip.MustParseAddr("10.99.0.254")}},
			},
			{
				CIDR: netip.MustParsePrefix("fd00:99::/64"), Gateway: netip.MustParseAddr("fd00:99::1"),
				IPs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("fd00:99::%x", n+1))},
			},
		},
	}
}

// RandomPortID returns a random UUID-shaped port ID.
func RandomPortID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// ClashingVIF returns a copy of vif with another port ID that starts with
// the same [network.PortIDPrefixLen] characters, so that its host device
// names are vif's ([network.DeviceNames]).
func ClashingVIF(vif network.VIF) network.VIF {
	v := vif
	for v.ID == vif.ID {
		v.ID = vif.ID[:min(len(vif.ID), network.PortIDPrefixLen)] + RandomPortID()[network.PortIDPrefixLen:]
	}
	return v
}

// SuiteOption configures [TestVIFDriver].
type SuiteOption func(*suiteConfig)

type suiteConfig struct{ parallel bool }

// InParallel runs the suite's subtests in parallel. Use it when the
// harnesses newHarness returns share nothing (each has its own host
// namespace and switch): HostState compares the host side before and after
// each subtest, so a shared one would see the others' devices.
func InParallel() SuiteOption { return func(c *suiteConfig) { c.parallel = true } }

// TestVIFDriver runs the VIFDriver conformance suite against the drivers
// newHarness returns, one per subtest: idempotent plug and unplug, unplug
// of what was never plugged, attach, detach and re-attach, two VIFs in one
// namespace, a namespace gone before attach, device name conflicts, and
// the typed errors of bad VIFs and targets — each leaving the host side as
// it found it. Then device ownership, next to a live instance whose
// traffic is proven with packets: another instance's VIF whose port ID
// starts the same (or is the same) is refused up front with
// [network.ErrDeviceConflict] and rolled back without touching the live
// one; a device of the VIF's names made by someone else is refused or
// left alone, never deleted or changed; Detach and Unplug of a VIF that
// was never plugged leave the live instance's devices alone. After each
// subtest's cleanups (the unplugs of VIFs it left attached, its namespaces
// killed) the host side must be as the subtest found it.
//
// The subtests run one at a time, so the harnesses newHarness returns may
// share one switch and host namespace (cheaper where a switch is costly to
// start); with [InParallel] they run in parallel and must share nothing.
func TestVIFDriver(t *testing.T, newHarness func(t *testing.T) Harness, opts ...SuiteOption) {
	var cfg suiteConfig
	for _, o := range opts {
		o(&cfg)
	}
	nh := newHarness
	newHarness = func(t *testing.T) Harness {
		t.Helper()
		if cfg.parallel {
			t.Parallel()
		}
		h := nh(t)
		// Registered before anything the subtest registers, so it runs
		// after all of it: the unplugs, detaches and namespace kills of
		// the subtest's cleanups must leave the host side as it was.
		before := h.HostState(t)
		t.Cleanup(func() { checkHostStateBack(t, h, before) })
		return h
	}
	const inst = "netconf-instance"
	target := func(path, ifname string) network.Target {
		return network.Target{NetNS: path, IfName: ifname, DefaultRouteV4: true, DefaultRouteV6: true}
	}
	ctx := func(t *testing.T) context.Context { return t.Context() }

	t.Run("PlugTwiceUnplugTwice", func(t *testing.T) {
		h := newHarness(t)
		before := h.HostState(t)
		v := h.VIF(1)
		require.NoError(t, h.Driver.Plug(ctx(t), inst, v))
		plugged := h.HostState(t)
		require.NoError(t, h.Driver.Plug(ctx(t), inst, v), "second plug")
		assert.Equal(t, plugged, h.HostState(t), "a second plug changes nothing")
		require.NoError(t, h.Driver.Unplug(ctx(t), inst, v))
		assert.Equal(t, before, h.HostState(t), "unplug leaves the host side as it was")
		require.NoError(t, h.Driver.Unplug(ctx(t), inst, v), "unplug of what is gone")
	})

	t.Run("UnplugNeverPlugged", func(t *testing.T) {
		h := newHarness(t)
		before := h.HostState(t)
		require.NoError(t, h.Driver.Unplug(ctx(t), inst, h.VIF(1)))
		assert.Equal(t, before, h.HostState(t))
	})

	t.Run("AttachDetach", func(t *testing.T) {
		h := newHarness(t)
		before := h.HostState(t)
		ns, _ := h.NewNamespace(t)
		v := h.VIF(1)
		require.NoError(t, h.Driver.Plug(ctx(t), inst, v))
		t.Cleanup(func() { _ = h.Driver.Unplug(context.WithoutCancel(ctx(t)), inst, v) })
		require.NoError(t, h.Driver.Attach(ctx(t), inst, v, target(ns, "eth0")))
		assert.Equal(t, []string{"eth0"}, h.GuestLinks(t, ns))
		require.NoError(t, h.Driver.Attach(ctx(t), inst, v, target(ns, "eth0")), "attach again replaces")
		assert.Equal(t, []string{"eth0"}, h.GuestLinks(t, ns))
		require.NoError(t, h.Driver.Detach(ctx(t), inst, v, target(ns, "eth0")))
		assert.Empty(t, h.GuestLinks(t, ns))
		require.NoError(t, h.Driver.Detach(ctx(t), inst, v, target(ns, "eth0")), "detach of what is gone")
		require.NoError(t, h.Driver.Attach(ctx(t), inst, v, target(ns, "eth0")), "attach after detach")
		assert.Equal(t, []string{"eth0"}, h.GuestLinks(t, ns))
		require.NoError(t, h.Driver.Detach(ctx(t), inst, v, target(ns, "eth0")))
		require.NoError(t, h.Driver.Unplug(ctx(t), inst, v))
		assert.Equal(t, before, h.HostState(t))
	})

	t.Run("TwoVIFsOneNamespace", func(t *testing.T) {
		h := newHarness(t)
		before := h.HostState(t)
		ns, _ := h.NewNamespace(t)
		a, b := h.VIF(1), h.VIF(2)
		for i, v := range []network.VIF{a, b} {
			require.NoError(t, h.Driver.Plug(ctx(t), inst, v))
			t.Cleanup(func() { _ = h.Driver.Unplug(context.WithoutCancel(ctx(t)), inst, v) })
			tg := target(ns, fmt.Sprintf("eth%d", i))
			tg.DefaultRouteV4, tg.DefaultRouteV6 = i == 0, i == 0
			require.NoError(t, h.Driver.Attach(ctx(t), inst, v, tg))
		}
		assert.Equal(t, []string{"eth0", "eth1"}, h.GuestLinks(t, ns))
		require.NoError(t, h.Driver.Detach(ctx(t), inst, a, target(ns, "eth0")))
		assert.Equal(t, []string{"eth1"}, h.GuestLinks(t, ns))
		require.NoError(t, h.Driver.Unplug(ctx(t), inst, a))
		assert.Equal(t, []string{"eth1"}, h.GuestLinks(t, ns), "unplugging one VIF leaves the other")
		require.NoError(t, h.Driver.Detach(ctx(t), inst, b, target(ns, "eth1")))
		require.NoError(t, h.Driver.Unplug(ctx(t), inst, b))
		assert.Equal(t, before, h.HostState(t))
	})

	t.Run("NamespaceGone", func(t *testing.T) {
		h := newHarness(t)
		before := h.HostState(t)
		ns, kill := h.NewNamespace(t)
		v := h.VIF(1)
		require.NoError(t, h.Driver.Plug(ctx(t), inst, v))
		t.Cleanup(func() { _ = h.Driver.Unplug(context.WithoutCancel(ctx(t)), inst, v) })
		plugged := h.HostState(t)
		kill()
		err := h.Driver.Attach(ctx(t), inst, v, target(ns, "eth0"))
		assert.ErrorIs(t, err, network.ErrNamespaceGone)
		assert.Equal(t, plugged, h.HostState(t), "a failed attach leaves nothing")
		require.NoError(t, h.Driver.Detach(ctx(t), inst, v, target(ns, "eth0")), "detach from a gone namespace")
		require.NoError(t, h.Driver.Unplug(ctx(t), inst, v))
		assert.Equal(t, before, h.HostState(t))
	})

	t.Run("DeviceConflict", func(t *testing.T) {
		h := newHarness(t)
		ns, _ := h.NewNamespace(t)
		a, b := h.VIF(1), h.VIF(2)
		for _, v := range []network.VIF{a, b} {
			require.NoError(t, h.Driver.Plug(ctx(t), inst, v))
			t.Cleanup(func() { _ = h.Driver.Unplug(context.WithoutCancel(ctx(t)), inst, v) })
		}
		require.NoError(t, h.Driver.Attach(ctx(t), inst, a, target(ns, "eth0")))
		state := h.HostState(t)
		assert.ErrorIs(t, h.Driver.Attach(ctx(t), inst, b, target(ns, "eth0")), network.ErrDeviceConflict)
		assert.Equal(t, state, h.HostState(t), "a failed attach leaves nothing")
		assert.Equal(t, []string{"eth0"}, h.GuestLinks(t, ns), "the other VIF's device is untouched")
	})

	t.Run("BadVIF", func(t *testing.T) {
		h := newHarness(t)
		before := h.HostState(t)
		ns, _ := h.NewNamespace(t)
		cases := map[string]struct {
			mod  func(*network.VIF)
			want error
		}{
			"empty ID":          {func(v *network.VIF) { v.ID = "" }, network.ErrInvalidVIF},
			"multicast MAC":     {func(v *network.VIF) { v.Address = network.MAC{1, 0, 0, 0, 0, 1} }, network.ErrInvalidVIF},
			"MTU":               {func(v *network.VIF) { v.MTU = 10 }, network.ErrInvalidVIF},
			"CIDR":              {func(v *network.VIF) { v.Subnets[0].CIDR = netip.Prefix{} }, network.ErrInvalidVIF},
			"IP outside subnet": {func(v *network.VIF) { v.Subnets[0].IPs = []netip.Addr{netip.MustParseAddr("10.98.0.1")} }, network.ErrInvalidVIF},
			"bridge too long":   {func(v *network.VIF) { v.Bridge = "bridge-name-too-long" }, network.ErrDeviceNameTooLong},
			"unknown type":      {func(v *network.VIF) { v.Type = "no-such-type" }, network.ErrUnsupportedVIFType},
		}
		for name, c := range cases {
			v := h.VIF(1)
			c.mod(&v)
			assert.ErrorIs(t, h.Driver.Plug(ctx(t), inst, v), c.want, "plug: %s", name)
			assert.ErrorIs(t, h.Driver.Attach(ctx(t), inst, v, target(ns, "eth0")), c.want, "attach: %s", name)
		}
		assert.Equal(t, before, h.HostState(t), "bad input leaves nothing")
		assert.Empty(t, h.GuestLinks(t, ns))
	})

	t.Run("BadTarget", func(t *testing.T) {
		h := newHarness(t)
		ns, _ := h.NewNamespace(t)
		v := h.VIF(1)
		require.NoError(t, h.Driver.Plug(ctx(t), inst, v))
		t.Cleanup(func() { _ = h.Driver.Unplug(context.WithoutCancel(ctx(t)), inst, v) })
		state := h.HostState(t)
		for name, tg := range map[string]network.Target{
			"no namespace":   {IfName: "eth0"},
			"no device name": {NetNS: ns},
			"bad name":       {NetNS: ns, IfName: "eth 0"},
			"long name":      {NetNS: ns, IfName: "a-very-long-ifname"},
		} {
			assert.ErrorIs(t, h.Driver.Attach(ctx(t), inst, v, tg), network.ErrInvalidTarget, name)
		}
		assert.Equal(t, state, h.HostState(t))
		assert.Empty(t, h.GuestLinks(t, ns))
	})

	t.Run("CancelledContext", func(t *testing.T) {
		h := newHarness(t)
		before := h.HostState(t)
		ns, _ := h.NewNamespace(t)
		v := h.VIF(1)
		c, cancel := context.WithCancel(ctx(t))
		cancel()
		if err := h.Driver.Plug(c, inst, v); err == nil {
			t.Cleanup(func() { _ = h.Driver.Unplug(context.WithoutCancel(ctx(t)), inst, v) })
			require.NoError(t, h.Driver.Unplug(ctx(t), inst, v))
		}
		if err := h.Driver.Attach(c, inst, v, target(ns, "eth0")); err == nil {
			t.Errorf("attach with a cancelled context succeeded")
		}
		_ = h.Driver.Unplug(ctx(t), inst, v)
		assert.Equal(t, before, h.HostState(t), "cancelled calls leave nothing")
		assert.False(t, slices.Contains(h.GuestLinks(t, ns), "eth0"))
	})

	t.Run("NameClashAcrossInstances", func(t *testing.T) {
		h := newHarness(t)
		live := startLive(t, h)
		state := h.HostState(t)
		sameID := h.VIF(3)
		sameID.ID = live.vif.ID
		for name, v := range map[string]network.VIF{"same port ID start": ClashingVIF(sameID), "same port ID": sameID} {
			assert.ErrorIs(t, h.Driver.Plug(ctx(t), "clash-instance", v), network.ErrDeviceConflict, "%s: the second plug is refused", name)
			assert.Equal(t, state, h.HostState(t), "%s: a refused plug creates and changes nothing", name)
			live.requireTraffic(t, name+": after the refused plug")
			// What a backend does next: roll the refused plug back.
			require.NoError(t, h.Driver.Unplug(ctx(t), "clash-instance", v), name)
			assert.Equal(t, state, h.HostState(t), "%s: the rollback leaves the other instance's devices", name)
			live.requireTraffic(t, name+": after the rollback")
		}
	})

	t.Run("ForeignDevice", func(t *testing.T) {
		h := newHarness(t)
		live := startLive(t, h)
		before := h.HostState(t)
		v := h.VIF(3)
		d, err := network.DeviceNames(v.ID)
		require.NoError(t, err)
		for _, name := range []string{d.Tap, d.Bridge, d.VethBridge, d.VethOVS, d.Guest} {
			dev := h.AddForeignDevice(t, name)
			was := dev.Describe(t)
			require.NotEmpty(t, was, name)
			state := h.HostState(t)
			err := h.Driver.Plug(ctx(t), "foreign-instance", v)
			if name == d.Tap {
				assert.ErrorIs(t, err, network.ErrDeviceConflict, "every driver uses the tap name: a foreign %s is refused", name)
			}
			if err != nil {
				assert.ErrorIs(t, err, network.ErrDeviceConflict, "foreign %s", name)
				assert.Equal(t, state, h.HostState(t), "a plug refused for a foreign %s creates nothing", name)
				assert.ErrorIs(t, h.Driver.Attach(ctx(t), "foreign-instance", v, target(live.otherNS(t, h), "eth0")), network.ErrDeviceConflict,
					"attach with a foreign %s", name)
			} else {
				// A name this driver does not use: plug and attach work
				// next to the device.
				ns, _ := h.NewNamespace(t)
				if err := h.Driver.Attach(ctx(t), "foreign-instance", v, target(ns, "eth0")); err != nil {
					assert.ErrorIs(t, err, network.ErrDeviceConflict, "attach with a foreign %s", name)
				}
				assert.Equal(t, was, dev.Describe(t), "foreign %s untouched by plug and attach", name)
				require.NoError(t, h.Driver.Detach(ctx(t), "foreign-instance", v, target(ns, "eth0")))
			}
			require.NoError(t, h.Driver.Unplug(ctx(t), "foreign-instance", v), "unplug next to a foreign %s", name)
			assert.Equal(t, was, dev.Describe(t), "foreign %s untouched", name)
			assert.Equal(t, state, h.HostState(t), "nothing left next to a foreign %s", name)
			live.requireTraffic(t, "next to a foreign "+name)
			dev.Remove(t)
			assert.Equal(t, before, h.HostState(t))
		}
	})

	t.Run("UnplugNeverPluggedNextToPlugged", func(t *testing.T) {
		h := newHarness(t)
		live := startLive(t, h)
		state := h.HostState(t)
		ns, _ := h.NewNamespace(t)
		sameID := h.VIF(3)
		sameID.ID = live.vif.ID
		for name, v := range map[string]network.VIF{"same port ID start": ClashingVIF(live.vif), "same port ID": sameID} {
			require.NoError(t, h.Driver.Detach(ctx(t), "never-plugged", v, target(ns, "eth0")), name)
			require.NoError(t, h.Driver.Unplug(ctx(t), "never-plugged", v), name)
			assert.Equal(t, state, h.HostState(t), "%s: the plugged VIF's devices are untouched", name)
			assert.Equal(t, []string{"eth0"}, h.GuestLinks(t, live.ns), name)
			live.requireTraffic(t, name)
		}
		// The live instance's own VIF, unplugged in another instance's name.
		require.NoError(t, h.Driver.Detach(ctx(t), "never-plugged", live.vif, target(live.ns, "eth0")))
		require.NoError(t, h.Driver.Unplug(ctx(t), "never-plugged", live.vif))
		assert.Equal(t, state, h.HostState(t), "another instance's unplug of the same port leaves it")
		live.requireTraffic(t, "same VIF, other instance")
	})

	t.Run("RollbackNextToLiveInstance", func(t *testing.T) {
		h := newHarness(t)
		live := startLive(t, h)
		state := h.HostState(t)
		ns, _ := h.NewNamespace(t)
		v := h.VIF(3)
		v.ID = ClashingVIF(live.vif).ID
		// A spawn of a second instance as a backend runs it: plug, then
		// attach after the start; on failure, detach and unplug. Whatever
		// step fails, the other instance keeps its devices and traffic.
		assert.ErrorIs(t, h.Driver.Plug(ctx(t), "rollback-instance", v), network.ErrDeviceConflict)
		assert.ErrorIs(t, h.Driver.Attach(ctx(t), "rollback-instance", v, target(ns, "eth0")), network.ErrDeviceConflict,
			"an attach whose tap name is another instance's is refused too")
		assert.Empty(t, h.GuestLinks(t, ns))
		require.NoError(t, h.Driver.Detach(ctx(t), "rollback-instance", v, target(ns, "eth0")))
		require.NoError(t, h.Driver.Unplug(ctx(t), "rollback-instance", v))
		assert.Equal(t, state, h.HostState(t))
		assert.Equal(t, []string{"eth0"}, h.GuestLinks(t, live.ns))
		live.requireTraffic(t, "after the rollback")
		// The live instance's own re-attach (after a restart, say) still
		// replaces its own device.
		require.NoError(t, h.Driver.Attach(ctx(t), live.instance, live.vif, target(live.ns, "eth0")))
		live.requireTraffic(t, "after its own re-attach")
	})
}

// checkHostStateBack fails t unless h's host state comes back to before
// within h.Settle.
func checkHostStateBack(t *testing.T, h Harness, before []string) {
	t.Helper()
	settle := h.Settle
	if settle == 0 {
		settle = 30 * time.Second
	}
	deadline := time.Now().Add(settle)
	now := h.HostState(t)
	for !slices.Equal(now, before) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		now = h.HostState(t)
	}
	assert.Equal(t, before, now, "after the subtest's cleanups the host side is as the subtest found it")
}

// live is an instance with one VIF, attached and talking to a peer
// instance on the same network.
type live struct {
	instance string
	vif      network.VIF
	ns       string
	peer     network.VIF
	peerNS   string
	h        Harness
	other    string
}

// startLive plugs and attaches a peer (VIF 1) and the live instance (VIF
// 2), each as eth0 of its own namespace, and proves they reach each other.
func startLive(t *testing.T, h Harness) *live {
	t.Helper()
	l := &live{instance: "live-instance", vif: h.VIF(2), peer: h.VIF(1), h: h}
	l.peerNS, _ = h.NewNamespace(t)
	l.ns, _ = h.NewNamespace(t)
	for _, x := range []struct {
		inst string
		vif  network.VIF
		ns   string
	}{{"peer-instance", l.peer, l.peerNS}, {l.instance, l.vif, l.ns}} {
		require.NoError(t, h.Driver.Plug(t.Context(), x.inst, x.vif))
		t.Cleanup(func() { _ = h.Driver.Unplug(context.WithoutCancel(t.Context()), x.inst, x.vif) })
		require.NoError(t, h.Driver.Attach(t.Context(), x.inst, x.vif, network.Target{NetNS: x.ns, IfName: "eth0", DefaultRouteV4: true, DefaultRouteV6: true}))
	}
	l.requireTraffic(t, "at start")
	return l
}

// requireTraffic proves with packets, both ways, that the live instance
// and its peer reach each other.
func (l *live) requireTraffic(t *testing.T, when string) {
	t.Helper()
	require.NoError(t, l.h.Ping(t, l.ns, l.peer.Subnets[0].IPs[0]), "%s: the live instance reaches its peer", when)
	require.NoError(t, l.h.Ping(t, l.peerNS, l.vif.Subnets[0].IPs[0]), "%s: the peer reaches the live instance", when)
}

// otherNS returns a namespace for attach attempts of other instances.
func (l *live) otherNS(t *testing.T, h Harness) string {
	if l.other == "" {
		l.other, _ = h.NewNamespace(t)
	}
	return l.other
}
