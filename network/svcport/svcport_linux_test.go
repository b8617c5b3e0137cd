package svcport_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/dhcp"
	"github.com/dockervisor/dockervisor/network/linuxbridge"
	"github.com/dockervisor/dockervisor/network/metadata"
	"github.com/dockervisor/dockervisor/network/networktest"
	"github.com/dockervisor/dockervisor/network/ovs"
	"github.com/dockervisor/dockervisor/network/secgroup"
	"github.com/dockervisor/dockervisor/network/svcport"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopOVS()
	os.Exit(code)
}

// netFixture is one network of a test: its VIF driver and what makes a
// VIF on it.
type netFixture struct {
	kind   string
	host   string // the host namespace of the bridges
	drv    network.VIFDriver
	bridge string
	octet  int // the subnet is 10.<octet>.0.0/24
	mac    byte
}

func (n *netFixture) cidr() netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("10.%d.0.0/24", n.octet))
}

func (n *netFixture) addr(i int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("10.%d.0.%d", n.octet, i))
}

// vif is a VIF with fixed IP .i, MAC derived from it.
func (n *netFixture) vif(i int) network.VIF {
	v := network.VIF{
		ID: networktest.RandomPortID(), Address: network.MAC{0x02, 0xd5, byte(n.octet), n.mac, 0, byte(i)},
		Type: network.VIFTypeBridge, Bridge: n.bridge, MTU: 1400, NetworkID: "net-" + n.kind,
		Subnets: []network.Subnet{{CIDR: n.cidr(), IPs: []netip.Addr{n.addr(i)}}},
	}
	if n.kind != "linuxbridge" {
		v.Type, v.HybridPlug = network.VIFTypeOVS, n.kind == "ovs-hybrid"
	}
	return v
}

func fixtures(t *testing.T) []*netFixture {
	t.Helper()
	host := testenv.NewHostNetns(t)
	lb, err := linuxbridge.New(linuxbridge.WithHostNetNS(host.Path))
	require.NoError(t, err)
	t.Cleanup(func() { lb.Close() })
	o := testenv.MustHaveOVS(t)
	od, err := ovs.New(ovs.WithDB(o.DB), ovs.WithHostNetNS(o.NetNS), ovs.WithTimeout(10*time.Second))
	require.NoError(t, err)
	// The Open vSwitch is shared by the test binary: a subnet of its own.
	octet := 150 + rand.IntN(100)
	return []*netFixture{
		{kind: "linuxbridge", host: host.Path, drv: lb, bridge: testenv.UniqueName("br"), octet: octet, mac: 1},
		{kind: "ovs-hybrid", host: o.NetNS, drv: od, bridge: o.Bridge, octet: octet + 1, mac: 2},
	}
}

// instanceNetns attaches vif into a new namespace (an instance's) as
// eth0 and returns its path; unplugged at cleanup.
func instanceNetns(t *testing.T, n *netFixture, vif network.VIF) string {
	t.Helper()
	p := testenv.StartNetnsProcess(t)
	inst := "inst-" + vif.ID[:8]
	t.Cleanup(func() { assert.NoError(t, n.drv.Unplug(context.WithoutCancel(t.Context()), inst, vif)) })
	require.NoError(t, n.drv.Plug(t.Context(), inst, vif))
	require.NoError(t, n.drv.Attach(t.Context(), inst, vif, network.Target{NetNS: p.Path, IfName: "eth0"}))
	return p.Path
}

// fetch GETs url from inside the namespace at ns and returns the status
// and body.
func fetch(t *testing.T, ns, url string) (int, string) {
	t.Helper()
	tr := &http.Transport{DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
		return testenv.DialTCP(ns, addr, 10*time.Second)
	}}
	defer tr.CloseIdleConnections()
	c := http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	require.NoError(t, err, "GET %s from %s", url, ns)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// dhcpClient runs busybox udhcpc in ns and configures what it got: the
// address and the classless routes, as a guest's DHCP client does.
func dhcpClient(t *testing.T, ns string) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "script")
	require.NoError(t, os.WriteFile(script, []byte(`#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/$mask" dev "$interface"
set -- $staticroutes
while [ $# -ge 2 ]; do
	[ "$1" = 0.0.0.0/0 ] || ip route add "$1" via "$2" dev "$interface"
	shift 2
done
`), 0o755))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := testenv.RunInNetns(t, ctx, ns, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", script, "-O", "staticroutes")
	require.NoError(t, err, "udhcpc: %s", out)
}

// TestNetworkServices: on a Linux bridge and on Open vSwitch with hybrid
// ports, a network's service namespace carries its DHCP server and its
// metadata service; an instance without addresses gets its own from
// DHCP with the route to 169.254.169.254 and reads its own metadata; one
// configured statically (a host route to the metadata address) reads its
// own and gets 404 for what only the other has; an address no instance
// has gets 404. Remove leaves nothing.
func TestNetworkServices(t *testing.T) {
	testenv.MustHaveDnsmasq(t)
	for _, n := range fixtures(t) {
		t.Run(n.kind, func(t *testing.T) {
			ctx := t.Context()
			port := svcport.Port{Namespace: testenv.UniqueName("dvsvc"), VIF: n.vif(2), Metadata: true}
			require.NoError(t, svcport.Ensure(ctx, n.drv, port))
			t.Cleanup(func() { require.NoError(t, svcport.Remove(context.WithoutCancel(ctx), n.drv, port)) })
			require.NoError(t, svcport.Ensure(ctx, n.drv, port), "Ensure is idempotent")

			a, b, stranger := n.vif(5), n.vif(6), n.vif(7)
			ha, _ := dhcp.HostFor(a)
			srv, err := dhcp.Start(ctx, dhcp.Config{
				Dir: filepath.Join(testenv.PublicTempDir(t), "dhcp"), NetNS: port.Path(), Interface: svcport.IfName,
				Subnets:       []dhcp.Subnet{{CIDR: n.cidr(), Mode: dhcp.ModeDHCP}},
				MetadataRoute: n.addr(2),
			}, []dhcp.Host{ha})
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, srv.Stop(context.WithoutCancel(ctx))) })

			md, err := metadata.Open()
			require.NoError(t, err)
			t.Cleanup(func() { md.Close() })
			for _, in := range []configdrive.Instance{
				{UUID: "uuid-a", Hostname: "a", VIFs: []network.VIF{a}, UserData: []byte("#cloud-config\n")},
				{UUID: "uuid-b", Hostname: "b", VIFs: []network.VIF{b}},
			} {
				require.NoError(t, md.Register(ctx, in))
			}
			_, err = md.ListenNetns(ctx, port.Path(), "net-"+n.kind)
			require.NoError(t, err)

			// A: no address until DHCP gives it one.
			noAddr := a
			noAddr.Subnets = []network.Subnet{{CIDR: n.cidr()}}
			nsA := instanceNetns(t, n, noAddr)
			dhcpClient(t, nsA)
			out, err := testenv.RunInNetns(t, ctx, nsA, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
			require.NoError(t, err)
			assert.Contains(t, string(out), a.Subnets[0].IPs[0].String()+"/24")
			status, body := fetch(t, nsA, "http://169.254.169.254/openstack/latest/meta_data.json")
			require.Equal(t, http.StatusOK, status, body)
			assert.Contains(t, body, `"uuid": "uuid-a"`)
			status, body = fetch(t, nsA, "http://169.254.169.254/openstack/latest/user_data")
			assert.Equal(t, http.StatusOK, status)
			assert.Equal(t, "#cloud-config\n", body)

			// B: static, with the metadata route as a host route.
			withRoute := func(v network.VIF) network.VIF {
				v.Subnets = []network.Subnet{{CIDR: v.Subnets[0].CIDR, IPs: v.Subnets[0].IPs,
					Routes: []network.Route{{Dest: netip.MustParsePrefix("169.254.169.254/32"), Gateway: n.addr(2)}}}}
				return v
			}
			nsB := instanceNetns(t, n, withRoute(b))
			status, body = fetch(t, nsB, "http://169.254.169.254/openstack/latest/meta_data.json")
			require.Equal(t, http.StatusOK, status, body)
			assert.Contains(t, body, `"uuid": "uuid-b"`)
			assert.NotContains(t, body, "uuid-a")
			status, _ = fetch(t, nsB, "http://169.254.169.254/openstack/latest/user_data")
			assert.Equal(t, http.StatusNotFound, status, "A's user-data is not B's")

			// An address no instance has.
			nsC := instanceNetns(t, n, withRoute(stranger))
			for _, p := range []string{"/openstack/latest/meta_data.json", "/latest/meta-data/", "/openstack"} {
				status, _ = fetch(t, nsC, "http://169.254.169.254"+p)
				assert.Equal(t, http.StatusNotFound, status, p)
			}
			status, _ = fetch(t, nsC, "http://169.254.169.254/")
			assert.Equal(t, http.StatusOK, status)

			if n.kind == "linuxbridge" {
				// D is registered and not on the network (stopped, say).
				d := n.vif(8)
				require.NoError(t, md.Register(ctx, configdrive.Instance{UUID: "uuid-d", Hostname: "d", VIFs: []network.VIF{d}}))
				spoofing(t, n, nsC, stranger, d)
			}

			// The service namespace answers on the network only: the
			// instances do not reach the host side's namespace through it.
			out, err = testenv.RunInNetns(t, ctx, port.Path(), "ip", "-o", "route", "show", "default")
			require.NoError(t, err)
			assert.Empty(t, strings.TrimSpace(string(out)), "no default route in the service namespace")
		})
	}
}

// spoofing: an instance that can configure its own interface (an OS
// instance can) and takes the address of another that is not on the
// network reads the other's metadata, as on Neutron without port security; with the port filtered by a
// security group (anti-spoofing: a port sends from its own addresses
// only), the spoofed request is dropped while its own requests pass.
func spoofing(t *testing.T, n *netFixture, ns string, own, victim network.VIF) {
	t.Helper()
	ctx := t.Context()
	victimIP := victim.Subnets[0].IPs[0]
	out, err := testenv.RunInNetns(t, ctx, ns, "ip", "addr", "add", victimIP.String()+"/24", "dev", "eth0")
	require.NoError(t, err, "%s", out)
	status, body, err := fetchFrom(ns, victimIP, "http://169.254.169.254/openstack/latest/meta_data.json")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "uuid-d", "without port security the spoofed address reads the victim's data")

	fw, err := secgroup.New(secgroup.WithHostNetNS(n.host))
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, fw.Teardown(context.WithoutCancel(ctx)))
		fw.Close()
	})
	require.NoError(t, fw.SetGroup(ctx, secgroup.Group{ID: "default", Rules: secgroup.DefaultRules("default")}))
	port, err := secgroup.PortFromVIF(own, "default")
	require.NoError(t, err)
	require.NoError(t, fw.ApplyPort(ctx, port))
	_, _, err = fetchFrom(ns, victimIP, "http://169.254.169.254/openstack/latest/meta_data.json")
	require.Error(t, err, "the spoofed request is dropped at the port")
	status, _, err = fetchFrom(ns, own.Subnets[0].IPs[0], "http://169.254.169.254/openstack/latest/meta_data.json")
	require.NoError(t, err, "the port's own address passes")
	assert.Equal(t, http.StatusNotFound, status, "and is no registered instance's")
}

// fetchFrom GETs url from inside the namespace at ns with source address
// src, giving up after a few seconds.
func fetchFrom(ns string, src netip.Addr, url string) (int, string, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		var c net.Conn
		err := testenv.InNetns(ns, func() error {
			var err error
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src.AsSlice()}, Timeout: 3 * time.Second}
			c, err = d.DialContext(ctx, "tcp4", addr)
			return err
		})
		return c, err
	}}
	defer tr.CloseIdleConnections()
	c := http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestRemove: Remove of what is gone is no error, and leaves no device.
func TestRemove(t *testing.T) {
	host := testenv.NewHostNetns(t)
	lb, err := linuxbridge.New(linuxbridge.WithHostNetNS(host.Path))
	require.NoError(t, err)
	defer lb.Close()
	n := &netFixture{kind: "linuxbridge", host: host.Path, drv: lb, bridge: testenv.UniqueName("br"), octet: 9, mac: 3}
	port := svcport.Port{Namespace: testenv.UniqueName("dvsvc"), VIF: n.vif(2)}
	require.NoError(t, svcport.Ensure(t.Context(), lb, port))
	require.NoError(t, svcport.Remove(t.Context(), lb, port))
	require.NoError(t, svcport.Remove(t.Context(), lb, port))
	_, err = os.Stat(port.Path())
	assert.ErrorIs(t, err, os.ErrNotExist)
	links := testenv.LinkNames(t, host.Path)
	names, _ := network.DeviceNames(port.VIF.ID)
	assert.NotContains(t, links, names.Tap)
	assert.NotContains(t, links, n.bridge, "the bridge went with its last port")

	bad := port
	bad.VIF.Subnets = []network.Subnet{{CIDR: n.cidr()}}
	assert.ErrorIs(t, svcport.Ensure(t.Context(), lb, bad), network.ErrInvalidVIF)
	bad.Namespace = ""
	assert.Error(t, svcport.Ensure(t.Context(), lb, bad))
}
