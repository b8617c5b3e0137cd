package docker

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
	"github.com/dockervisor/dockervisor/network/networktest"
	"github.com/dockervisor/dockervisor/network/ovs"
	"github.com/dockervisor/dockervisor/stats"
)

// netLab is the host side of a network test: a VIF driver whose bridges
// and ports live in a private host namespace, and the VIFs it serves.
type netLab struct {
	kind   string // "linuxbridge", "ovs-hybrid", "ovs-direct"
	host   string // host namespace path
	bridge string // the Linux bridge, or the integration bridge
	drv    network.VIFDriver
	ovs    *testenv.OVS // for the OVS kinds
	net    int          // the lab's subnets: 10.net.N.0/24 and fd00:net:N::/64
}

// labSeq counts the labs of this process from a random start, so that
// concurrent test processes rarely pick the same networks.
var labSeq = func() *atomic.Int32 {
	var n atomic.Int32
	n.Store(int32(rand.IntN(150)))
	return &n
}()

// labNet returns a second octet no other lab of this process uses (OVS
// labs share one switch: two labs with the same addresses on it answer
// each other's ARP).
func labNet() int {
	return 100 + int(labSeq.Add(1)%150)
}

func newBridgeLab(t testing.TB) *netLab {
	t.Helper()
	host := testenv.NewHostNetns(t)
	drv, err := linuxbridge.New(linuxbridge.WithHostNetNS(host.Path))
	require.NoError(t, err)
	t.Cleanup(func() { drv.Close() })
	return &netLab{kind: "linuxbridge", host: host.Path, bridge: testenv.UniqueName("br"), drv: drv, net: labNet()}
}

func newOVSLab(t *testing.T, o *testenv.OVS, hybrid bool, opts ...ovs.Option) *netLab {
	t.Helper()
	drv, err := ovs.New(append([]ovs.Option{ovs.WithDB(o.DB), ovs.WithHostNetNS(o.NetNS), ovs.WithIntegrationBridge(o.Bridge)}, opts...)...)
	require.NoError(t, err)
	kind := "ovs-direct"
	if hybrid {
		kind = "ovs-hybrid"
	}
	return &netLab{kind: kind, host: o.NetNS, bridge: o.Bridge, drv: drv, ovs: o, net: labNet()}
}

// vif returns a VIF with the address n of the lab's subnet sub (IPv4 and
// IPv6, gateways .1 and ::1, a DNS server each), MTU 1400.
func (l *netLab) vif(sub, n int) network.VIF {
	id := networktest.RandomPortID()
	v := network.VIF{
		ID:      id,
		Address: network.MAC{0x02, 0xd7, byte(l.net), byte(sub), byte(rand.IntN(256)), byte(n)},
		Type:    network.VIFTypeBridge,
		Bridge:  l.bridge,
		MTU:     1400,
		Subnets: []network.Subnet{
			{
				CIDR:    netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", l.net, sub)),
				Gateway: netip.MustParseAddr(fmt.Sprintf("10.%d.%d.1", l.net, sub)),
				IPs:     []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.%d.%d.%d", l.net, sub, n))},
				DNS:     []netip.Addr{netip.MustParseAddr(fmt.Sprintf("10.%d.%d.53", l.net, sub))},
			},
			{
				CIDR:    netip.MustParsePrefix(fmt.Sprintf("fd00:%x:%x::/64", l.net, sub)),
				Gateway: netip.MustParseAddr(fmt.Sprintf("fd00:%x:%x::1", l.net, sub)),
				IPs:     []netip.Addr{netip.MustParseAddr(fmt.Sprintf("fd00:%x:%x::%x", l.net, sub, n))},
			},
		},
	}
	if l.kind != "linuxbridge" {
		v.Type = network.VIFTypeOVS
		v.HybridPlug = l.kind == "ovs-hybrid"
	}
	return v
}

func ip4(v network.VIF) string { return v.Subnets[0].IPs[0].String() }
func ip6(v network.VIF) string { return v.Subnets[1].IPs[0].String() }

// hostLinks returns the names of the links in the lab's host namespace.
func (l *netLab) hostLinks(t *testing.T) []string {
	t.Helper()
	return testenv.LinkNames(t, l.host)
}

// hostDevices lists the host device names of a VIF's devices.
func hostDevices(dev network.Devices) []string {
	return []string{dev.Tap, dev.Bridge, dev.VethBridge, dev.VethOVS, dev.Guest}
}

// requireNothingLeft requires that no host device and no switch port of
// vifs is left.
func (l *netLab) requireNothingLeft(t *testing.T, vifs ...network.VIF) {
	t.Helper()
	links := l.hostLinks(t)
	for _, v := range vifs {
		dev, err := network.DeviceNames(v.ID)
		require.NoError(t, err)
		for _, name := range hostDevices(dev) {
			assert.NotContains(t, links, name, "host device of VIF %s left", v.ID)
		}
		if l.ovs != nil {
			ports := l.ovs.MustVsctl(t, "list-ports", l.bridge)
			assert.NotContains(t, ports, dev.VethOVS, "OVS port left")
			assert.NotContains(t, ports, dev.Tap, "OVS port left")
		}
	}
	if l.kind == "linuxbridge" {
		assert.NotContains(t, links, l.bridge, "bridge left")
	}
}

// pidOfInstance returns the process of a running instance.
func (e *env) pid(id string) int {
	e.t.Helper()
	info, err := e.drv.Info(e.t.Context(), id)
	require.NoError(e.t, err)
	require.Equal(e.t, hypervisor.StateRunning, info.State)
	require.Positive(e.t, info.PID)
	return info.PID
}

func nsOf(pid int) string { return netnsPath(pid) }

// ipLink is a guest interface as `ip -j addr` shows it.
type ipLink struct {
	IfName    string   `json:"ifname"`
	MTU       int      `json:"mtu"`
	Address   string   `json:"address"`
	Flags     []string `json:"flags"`
	AddrInfos []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// guestLinks returns the interfaces inside instance id, by name.
func (e *env) guestLinks(id string) map[string]ipLink {
	e.t.Helper()
	var links []ipLink
	require.NoError(e.t, testenv.IPJSONInNetns(e.t, e.t.Context(), nsOf(e.pid(id)), &links, "addr", "show"))
	m := map[string]ipLink{}
	for _, l := range links {
		m[l.IfName] = l
	}
	return m
}

// guestDefaultRoutes returns the default routes inside instance id, as
// "family dev gateway".
func (e *env) guestDefaultRoutes(id string) []string {
	e.t.Helper()
	var out []string
	for _, fam := range []string{"-4", "-6"} {
		var routes []struct{ Dev, Gateway string }
		require.NoError(e.t, testenv.IPJSONInNetns(e.t, e.t.Context(), nsOf(e.pid(id)), &routes, fam, "route", "show", "default"))
		for _, r := range routes {
			out = append(out, fam+" "+r.Dev+" "+r.Gateway)
		}
	}
	return out
}

// requireGuestNIC requires that instance id has v as dev: MAC, MTU, up, and
// its IPv4 and IPv6 addresses.
func (e *env) requireGuestNIC(id, dev string, v network.VIF) {
	e.t.Helper()
	links := e.guestLinks(id)
	l, ok := links[dev]
	require.True(e.t, ok, "no %s in instance %s: %v", dev, id, links)
	assert.Equal(e.t, v.Address.String(), l.Address, "MAC of %s", dev)
	assert.Equal(e.t, v.MTU, l.MTU, "MTU of %s", dev)
	assert.Contains(e.t, l.Flags, "UP")
	var addrs []string
	for _, a := range l.AddrInfos {
		addrs = append(addrs, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
	}
	for _, sn := range v.Subnets {
		for _, ip := range sn.IPs {
			assert.Contains(e.t, addrs, fmt.Sprintf("%s/%d", ip, sn.CIDR.Bits()), "addresses of %s", dev)
		}
	}
	assert.Contains(e.t, links["lo"].Flags, "UP", "loopback up")
}

// startHTTPD runs busybox httpd, serving the instance's root file system
// on port, inside instance id (an exec in the container, so it dies with
// the instance's process).
func (e *env) startHTTPD(id string, port int) {
	e.t.Helper()
	ctx := e.t.Context()
	res, err := e.cli.ExecCreate(ctx, e.drv.containerName(id), client.ExecCreateOptions{Cmd: []string{"/bin/busybox", "httpd", "-p", fmt.Sprint(port), "-h", "/"}})
	require.NoError(e.t, err)
	_, err = e.cli.ExecStart(ctx, res.ID, client.ExecStartOptions{Detach: true})
	require.NoError(e.t, err)
}

// requireTraffic proves that instance from reaches instance to at its
// VIF's addresses: ping over IPv4 and IPv6, and a TCP transfer (the
// busybox binary, about 1-2 MB, over HTTP) over each.
func (e *env) requireTraffic(from, to string, toVIF network.VIF, tcp bool) {
	e.t.Helper()
	src := nsOf(e.pid(from))
	for _, addr := range []string{ip4(toVIF), ip6(toVIF)} {
		out, err := testenv.PingEventually(e.t, src, addr, 10*time.Second)
		require.NoError(e.t, err, "ping %s → %s (%s): %s", from, to, addr, out)
	}
	if !tcp {
		return
	}
	port := 8000 + rand.IntN(1000)
	e.startHTTPD(to, port)
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/root/bin/busybox", e.pid(to)))
	require.NoError(e.t, err)
	for _, url := range []string{
		fmt.Sprintf("http://%s:%d/bin/busybox", ip4(toVIF), port),
		fmt.Sprintf("http://[%s]:%d/bin/busybox", ip6(toVIF), port),
	} {
		body, err := testenv.HTTPGet(e.t, src, url)
		require.NoError(e.t, err, "TCP %s → %s", from, url)
		require.Equal(e.t, fi.Size(), int64(len(body)), "bytes over TCP from %s", url)
	}
}

// guestFile reads a file inside the instance's mount namespace.
func (e *env) guestFile(id, path string) string {
	e.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root%s", e.pid(id), path))
	require.NoError(e.t, err)
	return string(b)
}

func TestVIFsLinuxBridge(t *testing.T) {
	t.Parallel()
	testVIFsEndToEnd(t, newBridgeLab(t))
}

func TestVIFsOVSHybrid(t *testing.T) {
	t.Parallel()
	testVIFsEndToEnd(t, newOVSLab(t, testenv.MustHaveOVS(t), true))
}

func TestVIFsOVSDirect(t *testing.T) {
	t.Parallel()
	testVIFsEndToEnd(t, newOVSLab(t, testenv.MustHaveOVS(t), false))
}

// testVIFsEndToEnd spawns two instances with one VIF each on lab and
// proves, with real packets, that they reach each other after spawn and
// after every transition that restarts a process, that a hot-attached VIF
// carries traffic and a detached one is gone, and that Destroy leaves
// nothing of the VIFs on the host.
func testVIFsEndToEnd(t *testing.T, lab *netLab) {
	testenv.MustHaveRoot(t)
	e := newEnv(t, WithVIFDriver(lab.drv))
	ctx := t.Context()
	va, vb := lab.vif(1, 2), lab.vif(1, 3)
	a, b := e.spec("a"), e.spec("b")
	a.VIFs, b.VIFs = []network.VIF{va}, []network.VIF{vb}
	instA := e.spawn(a)
	e.spawn(b)
	assert.Equal(t, []string{va.ID}, vifIDs(instA.VIFs))
	assert.True(t, e.drv.Capabilities().VIFs)
	assert.True(t, e.drv.Capabilities().HotplugVIF)

	// Inside: eth0 with MAC, MTU, addresses; one default route per family;
	// the subnet's DNS server.
	e.requireGuestNIC("a", "eth0", va)
	assert.ElementsMatch(t, []string{"-4 eth0 10." + fmt.Sprint(lab.net) + ".1.1", "-6 eth0 " + va.Subnets[1].Gateway.String()}, e.guestDefaultRoutes("a"))
	assert.Contains(t, e.guestFile("a", "/etc/resolv.conf"), "nameserver "+va.Subnets[0].DNS[0].String())
	if lab.ovs != nil {
		dev, _ := network.DeviceNames(va.ID)
		port := dev.VethOVS
		if lab.kind == "ovs-direct" {
			port = dev.Tap
		}
		ids := lab.ovs.MustVsctl(t, "get", "Interface", port, "external-ids")
		for _, want := range []string{"iface-id=\"" + va.ID + "\"", "attached-mac=\"" + va.Address.String() + "\"", "vm-uuid=a", "iface-status=active"} {
			assert.Contains(t, ids, want)
		}
	}
	e.requireTraffic("a", "b", vb, true)
	e.requireTraffic("b", "a", va, false)

	// Stats carry the port ID.
	s, err := e.drv.InstanceStats(ctx, "a")
	require.NoError(t, err)
	i := slices.IndexFunc(s.Interfaces, func(x stats.Interface) bool { return x.Device == "eth0" })
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, va.ID, s.Interfaces[i].PortID)
	assert.Positive(t, s.Interfaces[i].RxBytes)

	// Every transition that restarts b's process brings its VIF back.
	transitions := []struct {
		name string
		do   func(d *Driver) error
	}{
		{"power off and on", func(d *Driver) error {
			if err := d.PowerOff(ctx, "b", hypervisor.StopOptions{}); err != nil {
				return err
			}
			return d.PowerOn(ctx, "b")
		}},
		{"soft reboot", func(d *Driver) error { return d.Reboot(ctx, "b", hypervisor.RebootOptions{}) }},
		{"hard reboot", func(d *Driver) error { return d.Reboot(ctx, "b", hypervisor.RebootOptions{Hard: true}) }},
		{"soft delete and restore", func(d *Driver) error {
			if err := d.SoftDelete(ctx, "b"); err != nil {
				return err
			}
			return d.Restore(ctx, "b")
		}},
		{"new driver, power off and on", func(*Driver) error {
			// An agent restart: a new Driver with the same state directory.
			d := e.newDriver()
			if err := d.PowerOff(ctx, "b", hypervisor.StopOptions{Timeout: -1}); err != nil {
				return err
			}
			return d.PowerOn(ctx, "b")
		}},
	}
	for _, tr := range transitions {
		require.NoError(t, tr.do(e.drv), tr.name)
		e.requireGuestNIC("b", "eth0", vb)
		e.requireTraffic("a", "b", vb, tr.name == "hard reboot")
	}

	// Hot attach: a second VIF on another subnet, as eth1 in both.
	va2, vb2 := lab.vif(2, 2), lab.vif(2, 3)
	require.NoError(t, e.drv.AttachInterface(ctx, "a", va2))
	require.NoError(t, e.drv.AttachInterface(ctx, "b", vb2))
	require.NoError(t, e.drv.AttachInterface(ctx, "b", vb2), "attach again")
	e.requireGuestNIC("a", "eth1", va2)
	e.requireGuestNIC("b", "eth1", vb2)
	assert.Len(t, e.guestDefaultRoutes("a"), 2, "still one default route per family")
	e.requireTraffic("a", "b", vb2, true)
	resolv := e.guestFile("a", "/etc/resolv.conf")
	assert.Contains(t, resolv, "nameserver "+va2.Subnets[0].DNS[0].String(), "resolv.conf rewritten in place")

	// Detach: the NIC goes, the first one keeps working.
	require.NoError(t, e.drv.DetachInterface(ctx, "a", va2))
	_, has := e.guestLinks("a")["eth1"]
	assert.False(t, has, "eth1 gone after detach")
	assert.NotContains(t, e.guestFile("a", "/etc/resolv.conf"), va2.Subnets[0].DNS[0].String())
	e.requireTraffic("a", "b", vb, false)
	lab.requireNothingLeftOf(t, va2)

	require.NoError(t, e.drv.Destroy(ctx, "a"))
	require.NoError(t, e.drv.Destroy(ctx, "b"))
	lab.requireNothingLeft(t, va, vb, va2, vb2)
}

// requireNothingLeftOf is requireNothingLeft for some VIFs, with the bridge
// still in use by others.
func (l *netLab) requireNothingLeftOf(t *testing.T, vifs ...network.VIF) {
	t.Helper()
	kind := l.kind
	l.kind = "" // skip the bridge check
	defer func() { l.kind = kind }()
	l.requireNothingLeft(t, vifs...)
}

func vifIDs(vifs []network.VIF) []string {
	var ids []string
	for _, v := range vifs {
		ids = append(ids, v.ID)
	}
	return ids
}
