package configdrive

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/dockervisor/dockervisor/network"
)

// testKey returns a fresh public key in authorized_keys format.
func testKey(t testing.TB, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sk, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk))) + " " + comment
}

func testECDSAKey(t testing.TB) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	sk, err := ssh.NewPublicKey(&k.PublicKey)
	require.NoError(t, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk)))
}

func testVIFs() []network.VIF {
	mac := network.MustParseMAC("fa:16:3e:11:22:33")
	mac2 := network.MustParseMAC("fa:16:3e:44:55:66")
	return []network.VIF{{
		ID: "4e3b2c1a-0000-4000-8000-000000000001", Address: mac, Type: network.VIFTypeOVS, Bridge: "br-int", MTU: 1450,
		DevName: "tap4e3b2c1a-00", NetworkID: "net-a",
		Subnets: []network.Subnet{{
			CIDR: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
			IPs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, DNS: []netip.Addr{netip.MustParseAddr("10.0.0.2")},
			Routes: []network.Route{{Dest: netip.MustParsePrefix("192.168.0.0/16"), Gateway: netip.MustParseAddr("10.0.0.254")}},
		}, {
			CIDR: netip.MustParsePrefix("fd00:1::/64"), Gateway: netip.MustParseAddr("fd00:1::1"),
			IPs: []netip.Addr{netip.MustParseAddr("fd00:1::5")},
		}},
	}, {
		ID: "9a8b7c6d-0000-4000-8000-000000000002", Address: mac2, Type: network.VIFTypeBridge, Bridge: "brq1",
		Subnets: []network.Subnet{{
			CIDR: netip.MustParsePrefix("172.16.5.0/24"), IPs: []netip.Addr{netip.MustParseAddr("172.16.5.9")},
			DNS:         []netip.Addr{netip.MustParseAddr("10.0.0.2")},
			FloatingIPs: []network.FloatingIP{{Address: netip.MustParseAddr("203.0.113.9"), FixedIP: netip.MustParseAddr("172.16.5.9")}},
		}},
	}, {
		// A DHCP subnet and a SLAAC one, on a VIF of type ethernet.
		ID: "7c6d5e4f-0000-4000-8000-000000000003", Address: network.MustParseMAC("fa:16:3e:77:88:99"), Type: "ethernet",
		NetworkID: "net-c", MTU: 1400,
		Subnets: []network.Subnet{{
			CIDR: netip.MustParsePrefix("10.0.3.0/24"), Gateway: netip.MustParseAddr("10.0.3.1"),
			IPs: []netip.Addr{netip.MustParseAddr("10.0.3.5")}, DNS: []netip.Addr{netip.MustParseAddr("10.0.3.2")},
			DHCPServer: netip.MustParseAddr("10.0.3.2"),
		}, {
			CIDR: netip.MustParsePrefix("fd00:3::/64"), IPs: []netip.Addr{netip.MustParseAddr("fd00:3::5")},
			DNS: []netip.Addr{netip.MustParseAddr("fd00:3::2")}, IPv6AddressMode: network.IPv6SLAAC, IPv6RAMode: network.IPv6SLAAC,
		}},
	}}
}

// fullInstance sets every field.
func fullInstance(t testing.TB) Instance {
	return Instance{
		UUID:             "0b6f2d2e-5d0a-4a53-9d57-6b9a2f1e8c11",
		Name:             "web server",
		Hostname:         "web-1",
		Meta:             map[string]string{"role": "web", "tier": "front"},
		UserData:         []byte("#cloud-config\nruncmd:\n  - echo hi\n\x00\xff binary tail"),
		Keys:             []Key{{Name: "alice", Data: testKey(t, "alice@example")}, {Data: testECDSAKey(t)}},
		AdminPass:        "s3cret-Pass",
		Files:            []File{{Path: "/etc/motd", Content: []byte("welcome\n")}, {Path: "/opt/app/config.bin", Content: []byte{0, 1, 2, 255}}},
		VIFs:             testVIFs(),
		AvailabilityZone: "az1",
		ProjectID:        "proj-1",
		Flavor:           "m1.small",
		LaunchIndex:      0,
		VendorData:       map[string]any{"vendor": "dockervisor"},
		SecurityGroups:   []string{"default", "web"},
		RandomSeed:       bytes.Repeat([]byte{7}, RandomSeedBytes),
	}
}

func TestBuildLayout(t *testing.T) {
	in := fullInstance(t)
	tree, err := Build(in)
	require.NoError(t, err)

	for _, v := range append(append([]string{}, OpenStackVersions...), Latest) {
		base := "openstack/" + v + "/"
		assert.Contains(t, tree, base+"meta_data.json")
		assert.Equal(t, in.UserData, tree[base+"user_data"], v)
		_, vd := tree[base+"vendor_data.json"]
		_, nd := tree[base+"network_data.json"]
		_, vd2 := tree[base+"vendor_data2.json"]
		assert.Equal(t, v == Latest || v >= osHavana, vd, "vendor_data.json in %s", v)
		assert.Equal(t, v == Latest || v >= osLiberty, nd, "network_data.json in %s", v)
		assert.Equal(t, v == Latest || v >= osNewtonTwo, vd2, "vendor_data2.json in %s", v)
	}
	// Nova's config_drive_skip_versions leaves every EC2 version but the
	// newest off by default.
	for _, v := range append(append([]string{}, EC2Versions...), Latest) {
		written := v == "2009-04-04" || v == Latest
		_, md := tree["ec2/"+v+"/meta-data.json"]
		assert.Equal(t, written, md, "ec2 %s", v)
		if written {
			assert.Equal(t, in.UserData, tree["ec2/"+v+"/user-data"])
		} else {
			assert.NotContains(t, tree, "ec2/"+v+"/user-data")
		}
	}
	assert.Equal(t, []byte("welcome\n"), tree["openstack/content/0000"])
	assert.Equal(t, []byte{0, 1, 2, 255}, tree["openstack/content/0001"])

	var md map[string]any
	require.NoError(t, json.Unmarshal(tree["openstack/latest/meta_data.json"], &md))
	assert.Equal(t, in.UUID, md["uuid"])
	assert.Equal(t, "web-1.novalocal", md["hostname"], "Nova's dhcp_domain")
	assert.Equal(t, "web server", md["name"])
	assert.Equal(t, "s3cret-Pass", md["admin_pass"])
	assert.Equal(t, "az1", md["availability_zone"])
	assert.Equal(t, "proj-1", md["project_id"])
	assert.Equal(t, map[string]any{"role": "web", "tier": "front"}, md["meta"])
	assert.Equal(t, []any{
		map[string]any{"path": "/etc/motd", "content_path": "/content/0000"},
		map[string]any{"path": "/opt/app/config.bin", "content_path": "/content/0001"},
	}, md["files"])
	pub := md["public_keys"].(map[string]any)
	assert.Len(t, pub, 2)
	assert.Equal(t, in.Keys[0].Data, pub["alice"])
	assert.Contains(t, pub, "key-1")
	keys := md["keys"].([]any)
	assert.Equal(t, map[string]any{"name": "alice", "type": "ssh", "data": in.Keys[0].Data}, keys[0])

	// Older versions lack newer fields, as in Nova.
	var folsom map[string]any
	require.NoError(t, json.Unmarshal(tree["openstack/2012-08-10/meta_data.json"], &folsom))
	assert.NotContains(t, folsom, "random_seed")
	assert.NotContains(t, folsom, "project_id")
	assert.Contains(t, md, "random_seed")
	assert.Contains(t, md, "devices")
	assert.Contains(t, md, "dedicated_cpus")

	var ec2 map[string]any
	require.NoError(t, json.Unmarshal(tree["ec2/latest/meta-data.json"], &ec2))
	assert.Equal(t, EC2InstanceID(in.UUID), ec2["instance-id"])
	assert.Equal(t, "10.0.0.5", ec2["local-ipv4"])
	assert.Equal(t, "web-1.novalocal", ec2["local-hostname"])
	assert.Equal(t, "web-1.novalocal", ec2["hostname"])
	assert.Equal(t, "m1.small", ec2["instance-type"])
	assert.Equal(t, "203.0.113.9", ec2["public-ipv4"], "the first floating IP")
	assert.Equal(t, []any{"default", "web"}, ec2["security-groups"])
	assert.Equal(t, map[string]any{"ami": "sda", "root": "/dev/sda"}, ec2["block-device-mapping"])
	assert.Equal(t, map[string]any{"0": map[string]any{"_name": "0=alice", "openssh-key": in.Keys[0].Data}}, ec2["public-keys"], "with _name, as Nova's drives have it")

	// Every EC2 version, and older ones lack newer fields, as in Nova.
	tree, err = Build(in, WithConfigDriveSkipVersions())
	require.NoError(t, err)
	for _, v := range append(append([]string{}, EC2Versions...), Latest) {
		assert.Contains(t, tree, "ec2/"+v+"/meta-data.json")
		assert.Equal(t, in.UserData, tree["ec2/"+v+"/user-data"])
	}
	var ec21 map[string]any
	require.NoError(t, json.Unmarshal(tree["ec2/1.0/meta-data.json"], &ec21))
	assert.NotContains(t, ec21, "local-hostname")
	assert.NotContains(t, ec21, "placement")

	var vd map[string]any
	require.NoError(t, json.Unmarshal(tree["openstack/latest/vendor_data.json"], &vd))
	assert.Equal(t, map[string]any{"vendor": "dockervisor"}, vd)
}

func TestBuildMinimal(t *testing.T) {
	tree, err := Build(Instance{UUID: "i1", Hostname: "h1"})
	require.NoError(t, err)
	assert.NotContains(t, tree, "openstack/latest/user_data", "no user-data, no file")
	assert.NotContains(t, tree, "ec2/latest/user-data")
	assert.JSONEq(t, `{}`, string(tree["openstack/latest/vendor_data.json"]))
	assert.Equal(t, `{}`, string(tree["openstack/latest/network_data.json"]), "Nova's for an empty network_info")
	var ec2 map[string]any
	require.NoError(t, json.Unmarshal(tree["ec2/latest/meta-data.json"], &ec2))
	assert.Nil(t, ec2["local-ipv4"], "no fixed IPv4: Nova's None")
	assert.Equal(t, "", ec2["public-ipv4"])
	assert.Equal(t, []any{}, ec2["security-groups"])
	var md map[string]any
	require.NoError(t, json.Unmarshal(tree["openstack/latest/meta_data.json"], &md))
	assert.NotContains(t, md, "admin_pass")
	assert.NotContains(t, md, "public_keys")
	assert.Nil(t, md["availability_zone"])
	assert.Equal(t, "h1", md["name"])
}

func TestNetworkData(t *testing.T) {
	b, err := json.Marshal(BuildNetworkData(testVIFs()))
	require.NoError(t, err)
	assert.JSONEq(t, `{
	  "links": [
	    {"id": "tap4e3b2c1a-00", "vif_id": "4e3b2c1a-0000-4000-8000-000000000001", "type": "ovs", "mtu": 1450, "ethernet_mac_address": "fa:16:3e:11:22:33"},
	    {"id": "interface1", "vif_id": "9a8b7c6d-0000-4000-8000-000000000002", "type": "bridge", "mtu": null, "ethernet_mac_address": "fa:16:3e:44:55:66"},
	    {"id": "interface2", "vif_id": "7c6d5e4f-0000-4000-8000-000000000003", "type": "phy", "mtu": null, "ethernet_mac_address": "fa:16:3e:77:88:99"}
	  ],
	  "networks": [
	    {"id": "network0", "type": "ipv4", "link": "tap4e3b2c1a-00", "ip_address": "10.0.0.5", "netmask": "255.255.255.0",
	     "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"},
	                {"network": "192.168.0.0", "netmask": "255.255.0.0", "gateway": "10.0.0.254"}],
	     "network_id": "net-a", "services": [{"type": "dns", "address": "10.0.0.2"}]},
	    {"id": "network1", "type": "ipv6", "link": "tap4e3b2c1a-00", "ip_address": "fd00:1::5", "netmask": "ffff:ffff:ffff:ffff::",
	     "routes": [{"network": "::", "netmask": "::", "gateway": "fd00:1::1"}], "network_id": "net-a", "services": []},
	    {"id": "network2", "type": "ipv4", "link": "interface1", "ip_address": "172.16.5.9", "netmask": "255.255.255.0",
	     "routes": [], "network_id": null, "services": [{"type": "dns", "address": "10.0.0.2"}]},
	    {"id": "network3", "type": "ipv4_dhcp", "link": "interface2", "network_id": "net-c"},
	    {"id": "network4", "type": "ipv6_slaac", "link": "interface2", "ip_address": "fd00:3::5", "netmask": "ffff:ffff:ffff:ffff::",
	     "routes": [], "network_id": "net-c", "services": [{"type": "dns", "address": "fd00:3::2"}]}
	  ],
	  "services": [{"type": "dns", "address": "10.0.0.2"}, {"type": "dns", "address": "10.0.3.2"}, {"type": "dns", "address": "fd00:3::2"}]
	}`, string(b))
	// A VIF without subnets gets no link and no number, as in Nova; one
	// whose only subnet is Nova's CIDR-less placeholder gets a number but
	// no link.
	nd := BuildNetworkData([]network.VIF{
		{ID: "p", Type: network.VIFTypeOVS},
		{ID: "q", Type: network.VIFTypeOVS, Subnets: []network.Subnet{{}}},
		{ID: "r", Type: "ethernet", Subnets: []network.Subnet{{CIDR: netip.MustParsePrefix("10.1.0.0/24")}}},
	})
	require.Len(t, nd.Links, 1)
	assert.Equal(t, Link{ID: "interface1", VIFID: "r", Type: "phy"}, nd.Links[0])
	// A host route without a gateway has a null one (Nova fails on it).
	b, err = json.Marshal(Route{Network: "10.8.0.0", Netmask: "255.255.0.0"})
	require.NoError(t, err)
	assert.Equal(t, `{"network":"10.8.0.0","netmask":"255.255.0.0","gateway":null}`, string(b))
	assert.Empty(t, nd.Networks, "a subnet without fixed IPs has no network")
	b, err = json.Marshal(nd.Links[0])
	require.NoError(t, err)
	assert.JSONEq(t, `{"id": "interface1", "vif_id": "r", "type": "phy", "mtu": null, "ethernet_mac_address": null}`, string(b))
}

func TestLinkAndNetworkType(t *testing.T) {
	for typ, want := range map[network.VIFType]string{
		"bridge": "bridge", "dvs": "dvs", "hw_veb": "hw_veb", "hyperv": "hyperv", "ovs": "ovs", "tap": "tap",
		"vhostuser": "vhostuser", "vif": "vif", "ethernet": "phy", "other": "phy", "ivs": "phy", "vrouter": "phy",
		"macvtap": "phy", "hostdev_physical": "phy", "binding_failed": "phy", "802.1qbh": "phy",
	} {
		assert.Equal(t, want, LinkType(typ), typ)
	}
	v4 := network.Subnet{CIDR: netip.MustParsePrefix("10.0.0.0/24")}
	v6 := network.Subnet{CIDR: netip.MustParsePrefix("fd00::/64")}
	with := func(s network.Subnet, f func(*network.Subnet)) network.Subnet { f(&s); return s }
	for want, s := range map[string]network.Subnet{
		"ipv4":                  v4,
		"ipv6":                  v6,
		"ipv4_dhcp":             with(v4, func(s *network.Subnet) { s.DHCPServer = netip.MustParseAddr("10.0.0.2") }),
		"ipv6_dhcp":             with(v6, func(s *network.Subnet) { s.EnableDHCP = true }),
		"ipv6_slaac":            with(v6, func(s *network.Subnet) { s.IPv6AddressMode = network.IPv6SLAAC; s.EnableDHCP = true }),
		"ipv6_dhcpv6-stateful":  with(v6, func(s *network.Subnet) { s.IPv6AddressMode = network.IPv6DHCPStateful }),
		"ipv6_dhcpv6-stateless": with(v6, func(s *network.Subnet) { s.IPv6AddressMode = network.IPv6DHCPStateless }),
	} {
		assert.Equal(t, want, NetworkType(s))
	}
}

func TestOptions(t *testing.T) {
	in := Instance{UUID: "i1", Hostname: "h1"}
	host := func(opts ...Option) (string, string) {
		tree, err := Build(in, opts...)
		require.NoError(t, err)
		var md, ec2 map[string]any
		require.NoError(t, json.Unmarshal(tree["openstack/latest/meta_data.json"], &md))
		require.NoError(t, json.Unmarshal(tree["ec2/latest/meta-data.json"], &ec2))
		return md["hostname"].(string), ec2["local-hostname"].(string)
	}
	a, b := host()
	assert.Equal(t, []string{"h1.novalocal", "h1.novalocal"}, []string{a, b})
	a, b = host(WithDHCPDomain("example.org"))
	assert.Equal(t, []string{"h1.example.org", "h1.example.org"}, []string{a, b})
	a, b = host(WithDHCPDomain(""))
	assert.Equal(t, []string{"h1", "h1"}, []string{a, b})
	in.Hostname = "web.example.com"
	a, _ = host()
	assert.Equal(t, "web.example.com", a, "a fully qualified name stays as it is")

	tree, err := Build(in, WithConfigDriveSkipVersions("1.0", Latest))
	require.NoError(t, err)
	assert.NotContains(t, tree, "ec2/1.0/meta-data.json")
	assert.NotContains(t, tree, "ec2/latest/meta-data.json")
	assert.Contains(t, tree, "ec2/2007-01-19/meta-data.json")

	for _, opt := range []Option{WithDHCPDomain("-bad"), WithDHCPDomain("a..b"), WithDHCPDomain("a b"), WithConfigDriveSkipVersions("2010-01-01")} {
		_, err := Build(in, opt)
		assert.ErrorIs(t, err, ErrInvalidOption)
	}
}

func TestValidate(t *testing.T) {
	good := fullInstance(t)
	require.NoError(t, good.Validate())
	cases := []struct {
		name string
		mod  func(*Instance)
		want error
	}{
		{"user-data over 64 KiB", func(i *Instance) { i.UserData = make([]byte, MaxUserDataBytes+1) }, ErrUserDataTooLarge},
		{"relative path", func(i *Instance) { i.Files = []File{{Path: "etc/x"}} }, ErrInvalidPath},
		{"dot-dot escape", func(i *Instance) { i.Files = []File{{Path: "/etc/../../x"}} }, ErrInvalidPath},
		{"proc", func(i *Instance) { i.Files = []File{{Path: "/proc/sys/kernel/x"}} }, ErrInvalidPath},
		{"sys", func(i *Instance) { i.Files = []File{{Path: "/sys"}} }, ErrInvalidPath},
		{"sys via double slash", func(i *Instance) { i.Files = []File{{Path: "//sys/x"}} }, ErrInvalidPath},
		{"root", func(i *Instance) { i.Files = []File{{Path: "/"}} }, ErrInvalidPath},
		{"directory", func(i *Instance) { i.Files = []File{{Path: "/etc/"}} }, ErrInvalidPath},
		{"NUL", func(i *Instance) { i.Files = []File{{Path: "/etc/a\x00b"}} }, ErrInvalidPath},
		{"duplicate path", func(i *Instance) { i.Files = []File{{Path: "/a"}, {Path: "//a"}} }, ErrInvalidPath},
		{"garbage key", func(i *Instance) { i.Keys = []Key{{Data: "ssh-rsa notbase64!!"}} }, ErrInvalidKey},
		{"empty key", func(i *Instance) { i.Keys = []Key{{Name: "x"}} }, ErrInvalidKey},
		{"two keys in one", func(i *Instance) { i.Keys = []Key{{Data: testKey(t, "a") + "\n" + testKey(t, "b")}} }, ErrInvalidKey},
		{"duplicate key name", func(i *Instance) {
			i.Keys = []Key{{Name: "k", Data: testKey(t, "a")}, {Name: "k", Data: testKey(t, "b")}}
		}, ErrInvalidKey},
		{"empty UUID", func(i *Instance) { i.UUID = "" }, ErrInvalidInstance},
		{"empty hostname", func(i *Instance) { i.Hostname = "" }, ErrInvalidInstance},
		{"bad VIF", func(i *Instance) { i.VIFs = []network.VIF{{ID: "x"}} }, ErrInvalidInstance},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := fullInstance(t)
			c.mod(&in)
			assert.ErrorIs(t, in.Validate(), c.want)
			_, err := Build(in)
			assert.ErrorIs(t, err, c.want)
		})
	}
	ok := fullInstance(t)
	ok.UserData = make([]byte, MaxUserDataBytes)
	assert.NoError(t, ok.Validate(), "exactly 64 KiB is allowed")
}

func TestAuthorizedKeys(t *testing.T) {
	in := fullInstance(t)
	lines := strings.Split(strings.TrimSpace(string(in.AuthorizedKeys())), "\n")
	require.Len(t, lines, 2)
	assert.Equal(t, in.Keys[0].Data, lines[0])
	for _, l := range lines {
		_, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l))
		assert.NoError(t, err)
	}
}

func readTree(t *testing.T, dir string) Tree {
	t.Helper()
	got := Tree{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && p != dir {
				t.Errorf("leftover %s", p)
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		got[filepath.ToSlash(rel)] = b
		return nil
	}))
	return got
}

func TestWriteReplacesInPlace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cd")
	in := fullInstance(t)
	tree, err := Build(in)
	require.NoError(t, err)
	require.NoError(t, Write(dir, tree))
	assert.Equal(t, tree, readTree(t, dir))
	st, err := os.Stat(filepath.Join(dir, "openstack/latest/meta_data.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	// An open handle on the root (as a bind mount holds it) sees the new
	// tree after a rewrite with fewer files.
	root, err := os.Open(dir)
	require.NoError(t, err)
	defer root.Close()
	in.Meta = map[string]string{"role": "db"}
	in.UserData = nil
	in.Files = nil
	tree2, err := Build(in)
	require.NoError(t, err)
	require.NoError(t, Write(dir, tree2))
	assert.Equal(t, tree2, readTree(t, dir))
	b, err := os.ReadFile(filepath.Join("/proc/self/fd", strconv.Itoa(int(root.Fd())), "openstack/latest/meta_data.json"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"role": "db"`)
	_, err = os.Stat(filepath.Join(dir, "openstack/latest/user_data"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	assert.ErrorIs(t, Write(dir, Tree{"../x": nil}), ErrInvalidPath)
	assert.ErrorIs(t, Write(dir, Tree{"other/x": nil}), ErrInvalidPath)
}
