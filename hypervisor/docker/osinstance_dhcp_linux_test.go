package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/dhcp"
	"github.com/dockervisor/dockervisor/network/metadata"
	"github.com/dockervisor/dockervisor/network/networktest"
	"github.com/dockervisor/dockervisor/network/svcport"
)

// serviceLab is a Linux-bridge network whose service namespace carries
// its DHCP server (dnsmasq) and Nova's metadata service, as Neutron's DHCP
// agent gives a network: an IPv4 subnet with DHCP and an IPv6 subnet with
// SLAAC.
type serviceLab struct {
	*netLab
	netID  string
	v4, v6 netip.Prefix
	port   svcport.Port
	dhcp   *dhcp.Server
	md     *metadata.Service
}

func newServiceLab(t testing.TB) *serviceLab {
	t.Helper()
	testenv.MustHaveDnsmasq(t)
	l := &serviceLab{netLab: newBridgeLab(t)}
	l.netID = "net-" + l.bridge
	l.v4 = netip.MustParsePrefix(fmt.Sprintf("10.%d.1.0/24", l.net))
	l.v6 = netip.MustParsePrefix(fmt.Sprintf("fd00:%x:1::/64", l.net))
	ctx := t.Context()
	l.port = svcport.Port{
		Namespace: testenv.UniqueName("dvsvc"), Metadata: true,
		VIF: network.VIF{
			ID: networktest.RandomPortID(), Address: network.MAC{0x02, 0xd6, byte(l.net), 1, 0, 2},
			Type: network.VIFTypeBridge, Bridge: l.bridge, MTU: 1400, NetworkID: l.netID,
			Subnets: []network.Subnet{
				{CIDR: l.v4, IPs: []netip.Addr{l.addr4(2)}},
				{CIDR: l.v6, IPs: []netip.Addr{l.v6.Addr().Next().Next()}},
			},
		},
	}
	require.NoError(t, svcport.Ensure(ctx, l.drv, l.port))
	t.Cleanup(func() { assert.NoError(t, svcport.Remove(context.WithoutCancel(ctx), l.drv, l.port)) })
	tmpl := l.vif(9)
	var subnets []dhcp.Subnet
	for _, s := range tmpl.Subnets {
		ds, ok := dhcp.SubnetOf(s)
		require.True(t, ok)
		subnets = append(subnets, ds)
	}
	var err error
	l.dhcp, err = dhcp.Start(ctx, dhcp.Config{
		Dir: filepath.Join(testenv.PublicTempDir(t), "dhcp"), NetNS: l.port.Path(), Interface: svcport.IfName,
		Subnets: subnets, MTU: 1400, MetadataRoute: l.addr4(2),
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, l.dhcp.Stop(context.WithoutCancel(ctx))) })
	l.md, err = metadata.Open()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, l.md.Close()) })
	_, err = l.md.ListenNetns(ctx, l.port.Path(), l.netID)
	require.NoError(t, err)
	return l
}

func (l *serviceLab) addr4(n int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("10.%d.1.%d", l.net, n))
}

// vif is a port with fixed IP .n on the DHCP subnet and its EUI-64
// address on the SLAAC subnet, with the subnet meta Nova has for them.
func (l *serviceLab) vif(n int) network.VIF {
	mac := network.MAC{0x02, 0xd7, byte(l.net), 1, byte(rand.IntN(256)), byte(n)}
	return network.VIF{
		ID: networktest.RandomPortID(), Address: mac, Type: network.VIFTypeBridge, Bridge: l.bridge,
		MTU: 1400, NetworkID: l.netID,
		Subnets: []network.Subnet{
			{CIDR: l.v4, Gateway: l.addr4(1), IPs: []netip.Addr{l.addr4(n)}, DHCPServer: l.addr4(2)},
			{CIDR: l.v6, IPs: []netip.Addr{network.SLAACAddress(l.v6, mac)}, IPv6AddressMode: "slaac", IPv6RAMode: "slaac"},
		},
	}
}

// options are the Driver's: the lab's VIF driver, the DHCP server's port
// hook (hosts follow the ports) and the metadata service.
func (l *serviceLab) options() []Option {
	hook := dhcp.NewPortHook(func(v network.VIF) (*dhcp.Server, bool) { return l.dhcp, v.NetworkID == l.netID })
	return []Option{WithVIFDriver(l.drv), WithPortObserver(hook), WithMetadataService(l.md)}
}

// guestAddr is an address of eth0 inside an instance, with its lifetimes.
type guestAddr struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Scope     string `json:"scope"`
	Dynamic   bool   `json:"dynamic"`
	ValidLife uint64 `json:"valid_life_time"`
}

// eth0Addrs returns the global addresses of eth0 inside instance id.
func (e *env) eth0Addrs(id string) []guestAddr {
	e.t.Helper()
	var links []struct {
		AddrInfo []guestAddr `json:"addr_info"`
	}
	out := e.execOut(id, "ip", "-j", "addr", "show", "dev", "eth0")
	require.NoError(e.t, json.Unmarshal([]byte(out), &links), out)
	require.Len(e.t, links, 1)
	return slices.DeleteFunc(links[0].AddrInfo, func(a guestAddr) bool { return a.Scope != "global" })
}

// fromService says whether addr was given by a server (a DHCP lease or a
// router advertisement): such an address has a finite lifetime, a static
// one lives forever.
func fromService(a guestAddr) bool { return a.ValidLife < 1<<32-1 }

// metadataGet fetches url from inside instance id with Python's urllib
// (in the OS image for cloud-init) and returns the status and body.
func (e *env) metadataGet(id, url string) (int, string) {
	e.t.Helper()
	out := e.execOut(id, "python3", "-c", `import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=20)
    sys.stdout.write("%d\n%s" % (r.status, r.read().decode()))
except urllib.error.HTTPError as err:
    sys.stdout.write("%d\n" % err.code)
`, url)
	status, body, _ := strings.Cut(out, "\n")
	var code int
	_, err := fmt.Sscan(status, &code)
	require.NoError(e.t, err, out)
	return code, body
}

// TestOSInstanceDHCPAndSLAAC: two OS instances on a network with a DHCP
// subnet and a SLAAC subnet, configured by real cloud-init from the
// network_data.json of their config drives: each takes exactly its
// Neutron addresses from the network's dnsmasq, the IPv4 one as a DHCP
// lease of its own client, the IPv6 one made from the router
// advertisements (the EUI-64 of its MAC); the Driver set neither. They
// reach each other over both, with ping and TCP. The DHCP server's hosts
// follow the ports: a destroyed instance's entry goes.
func TestOSInstanceDHCPAndSLAAC(t *testing.T) {
	l := newServiceLab(t)
	e := newOSEnv(t, l.options()...)
	vifs := map[string]network.VIF{"dhcp-a": l.vif(10), "dhcp-b": l.vif(11)}
	for _, id := range []string{"dhcp-a", "dhcp-b"} {
		spec := e.osSpec(id)
		spec.VIFs = []network.VIF{vifs[id]}
		spec.UserData = []byte("#cloud-config\nlocale: C.UTF-8\n")
		e.spawn(spec)
	}
	hosts, err := l.dhcp.Hosts()
	require.NoError(t, err)
	assert.Len(t, hosts, 2, "a host entry per port, added as it was plugged")

	for _, id := range []string{"dhcp-a", "dhcp-b"} {
		st, err := e.waitBooted(id, hypervisor.WaitBootOptions{CloudInit: true})
		require.NoError(t, err, "console:\n%s", e.console(id))
		assert.Equal(t, "configdrive", st.CloudInit.Datasource)
		v := vifs[id]
		want := map[string]int{v.Subnets[0].IPs[0].String(): 24, v.Subnets[1].IPs[0].String(): 64}
		var addrs []guestAddr
		require.Eventually(t, func() bool {
			addrs = e.eth0Addrs(id)
			return len(addrs) == 2
		}, bootTimeout, 100*time.Millisecond, "%s: addresses %v", id, addrs)
		for _, a := range addrs {
			bits, ok := want[a.Local]
			assert.True(t, ok, "%s: %s/%d is not a Neutron address of its port", id, a.Local, a.PrefixLen)
			assert.Equal(t, bits, a.PrefixLen, a.Local)
			assert.True(t, fromService(a), "%s: %s is static (lifetime %d), not from the network's server", id, a.Local, a.ValidLife)
		}
		// The lease is the instance's own DHCP client's (systemd-networkd,
		// as cloud-init rendered it), and dnsmasq's lease file has it.
		assert.NotEmpty(t, strings.TrimSpace(e.execOut(id, "ls", "/run/systemd/netif/leases/")), "%s: no DHCP lease of systemd-networkd", id)
		cfg := e.execOut(id, "sh", "-c", "cat /etc/systemd/network/*.network")
		assert.Contains(t, cfg, "DHCP=ipv4", "%s: cloud-init rendered DHCP", id)
	}
	leases, err := l.dhcp.Leases()
	require.NoError(t, err)
	leased := map[string]string{}
	for _, ls := range leases {
		leased[ls.MAC.String()] = ls.IP.String()
	}
	for _, v := range vifs {
		assert.Equal(t, v.Subnets[0].IPs[0].String(), leased[v.Address.String()], "dnsmasq's lease of %s", v.Address)
	}

	b := vifs["dhcp-b"]
	for _, ip := range []string{b.Subnets[0].IPs[0].String(), b.Subnets[1].IPs[0].String()} {
		e.execOut("dhcp-a", "ping", "-c", "2", "-W", "5", ip)
		banner := e.execOut("dhcp-a", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/22; head -c 8 <&3", ip))
		assert.Equal(t, "SSH-2.0-", banner, "TCP to %s", ip)
	}

	require.NoError(t, e.drv.Destroy(t.Context(), "dhcp-b"))
	hosts, err = l.dhcp.Hosts()
	require.NoError(t, err)
	require.Len(t, hosts, 1)
	assert.Equal(t, vifs["dhcp-a"].Address.String(), hosts[0].MAC.String())
}

// TestOSInstanceMetadataService: an OS instance without a config drive,
// whose cloud-init finds the OpenStack datasource (by the product_name of
// its environment), takes a lease (cloud-init's own DHCP client, with the
// route to 169.254.169.254 the DHCP server pushes), reads its metadata
// from the service, runs its user-data and installs its key. Another
// instance asking for what only the first has gets 404, and its own data
// otherwise; Destroy withdraws the registration.
func TestOSInstanceMetadataService(t *testing.T) {
	l := newServiceLab(t)
	e := newOSEnv(t, l.options()...)
	_, pub := sshKeyPair(t)
	md := e.osSpec("md")
	md.NoConfigDrive = true
	md.VIFs = []network.VIF{l.vif(20)}
	md.SSHKeys = []hypervisor.SSHKey{{Name: "login", Data: pub}}
	md.Metadata = map[string]string{"role": "metadata-test"}
	md.UserData = []byte("#cloud-config\nlocale: C.UTF-8\nruncmd:\n  - [ sh, -c, 'echo from-the-service > /root/user-data-ran' ]\n")
	e.spawn(md)
	other := e.osSpec("other")
	other.VIFs = []network.VIF{l.vif(21)}
	e.spawn(other)
	assert.Equal(t, []string{"md", "other"}, l.md.Instances())

	st, err := e.waitBooted("md", hypervisor.WaitBootOptions{CloudInit: true})
	require.NoError(t, err, "console:\n%s", e.console("md"))
	assert.Equal(t, "openstacklocal", st.CloudInit.Datasource)
	assert.Equal(t, "from-the-service\n", e.execOut("md", "cat", "/root/user-data-ran"))
	assert.Contains(t, e.execOut("md", "cat", "/home/debian/.ssh/authorized_keys"), strings.Fields(pub)[1])
	res, err := e.drv.Exec(t.Context(), "md", hypervisor.ExecSpec{Args: []string{"test", "-e", configdrive.SeedDir}})
	require.NoError(t, err)
	assert.NotEqual(t, 0, res.ExitCode, "no config drive")
	status, body := e.metadataGet("md", "http://169.254.169.254/openstack/latest/meta_data.json")
	require.Equal(t, 200, status)
	assert.Contains(t, body, `"role": "metadata-test"`)

	_, err = e.waitBooted("other", hypervisor.WaitBootOptions{CloudInit: true})
	require.NoError(t, err, "console:\n%s", e.console("other"))
	status, body = e.metadataGet("other", "http://169.254.169.254/openstack/latest/meta_data.json")
	require.Equal(t, 200, status)
	assert.Contains(t, body, `"uuid": "other"`)
	assert.NotContains(t, body, "metadata-test")
	for _, p := range []string{"/openstack/latest/user_data", "/latest/user-data", "/latest/meta-data/public-keys/0/openssh-key"} {
		status, _ = e.metadataGet("other", "http://169.254.169.254"+p)
		assert.Equal(t, 404, status, "%s: the other instance's", p)
	}

	require.NoError(t, e.drv.Destroy(t.Context(), "md"))
	assert.Equal(t, []string{"other"}, l.md.Instances())
}
