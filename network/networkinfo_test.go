package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// novaNetworkInfo is network_info as Nova hands it to a compute driver: an
// OVS hybrid port with IPv4 and IPv6 subnets, and a nova-network VLAN port.
const novaNetworkInfo = `[
 {"id": "8f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b", "address": "fa:16:3e:12:34:56", "type": "ovs",
  "details": {"port_filter": true, "ovs_hybrid_plug": true, "datapath_type": "system", "bridge_name": "br-int"},
  "devname": "tap8f1a2b3c-4d", "ovs_interfaceid": "8f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b",
  "qbh_params": null, "qbg_params": null, "active": true, "vnic_type": "normal", "profile": {},
  "preserve_on_delete": false, "meta": {},
  "network": {"id": "0d2b1a9c-0000-4000-8000-00000000beef", "bridge": "br-int", "label": "private",
   "subnets": [
    {"cidr": "10.0.0.0/26", "version": 4, "meta": {"dhcp_server": "10.0.0.2"},
     "dns": [{"address": "10.0.0.2", "type": "dns", "version": 4, "meta": {}}],
     "gateway": {"address": "10.0.0.1", "type": "gateway", "version": 4, "meta": {}},
     "ips": [{"address": "10.0.0.5", "type": "fixed", "version": 4, "meta": {},
       "floating_ips": [{"address": "203.0.113.7", "type": "floating", "version": 4, "meta": {}}]}],
     "routes": [{"cidr": "172.16.0.0/16", "gateway": {"address": "10.0.0.62", "type": "gateway", "version": 4, "meta": {}}, "interface": null, "meta": {}}]},
    {"cidr": "fd12:3456:789a::/64", "version": 6, "meta": {"ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac", "enable_dhcp": true},
     "dns": [], "gateway": {"address": "fd12:3456:789a::1", "type": "gateway", "version": 6, "meta": {}},
     "ips": [{"address": "fd12:3456:789a:0:f816:3eff:fe12:3456", "type": "fixed", "version": 6, "meta": {}, "floating_ips": []}],
     "routes": []}],
   "meta": {"injected": false, "tenant_id": "abc", "mtu": 1450, "physical_network": null, "tunneled": true}}},
 {"id": "1b2c3d4e-aaaa-4bbb-8ccc-dddddddddddd", "address": "fa:16:3e:ab:cd:ef", "type": "bridge",
  "details": {}, "devname": null, "ovs_interfaceid": null,
  "network": {"id": 7, "bridge": "br100", "label": "vlan100",
   "subnets": [{"cidr": "192.168.100.0/24", "gateway": {"address": null, "type": "gateway"},
     "ips": [{"address": "192.168.100.10"}], "dns": [{"address": "8.8.8.8"}], "routes": []},
    {"cidr": null, "ips": [], "dns": [], "routes": [], "gateway": {"address": null}}],
   "meta": {"bridge_interface": "eth1", "should_create_vlan": "True", "vlan": "100", "should_create_bridge": true, "mtu": null}}}
]`

func TestParseNetworkInfo(t *testing.T) {
	vifs, err := ParseNetworkInfo([]byte(novaNetworkInfo))
	require.NoError(t, err)
	require.Len(t, vifs, 2)
	assert.Equal(t, VIF{
		ID: "8f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b", Address: MustParseMAC("fa:16:3e:12:34:56"), Type: VIFTypeOVS,
		HybridPlug: true, PortFilter: true, Bridge: "br-int", NetworkID: "0d2b1a9c-0000-4000-8000-00000000beef",
		DevName: "tap8f1a2b3c-4d", OVSInterfaceID: "8f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b", MTU: 1450,
		Subnets: []Subnet{
			{
				CIDR: netip.MustParsePrefix("10.0.0.0/26"), Gateway: netip.MustParseAddr("10.0.0.1"),
				IPs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, DNS: []netip.Addr{netip.MustParseAddr("10.0.0.2")},
				Routes:      []Route{{Dest: netip.MustParsePrefix("172.16.0.0/16"), Gateway: netip.MustParseAddr("10.0.0.62")}},
				FloatingIPs: []FloatingIP{{Address: netip.MustParseAddr("203.0.113.7"), FixedIP: netip.MustParseAddr("10.0.0.5")}},
				DHCPServer:  netip.MustParseAddr("10.0.0.2"),
			},
			{
				CIDR: netip.MustParsePrefix("fd12:3456:789a::/64"), Gateway: netip.MustParseAddr("fd12:3456:789a::1"),
				IPs:             []netip.Addr{netip.MustParseAddr("fd12:3456:789a:0:f816:3eff:fe12:3456")},
				EnableDHCP:      true,
				IPv6AddressMode: IPv6SLAAC, IPv6RAMode: IPv6SLAAC,
			},
		},
	}, vifs[0])
	nn := vifs[1]
	assert.Equal(t, VIFTypeBridge, nn.Type)
	assert.Equal(t, "br100", nn.Bridge)
	assert.Equal(t, "eth1", nn.BridgeInterface)
	assert.Equal(t, 100, nn.VLAN)
	assert.Equal(t, "7", nn.NetworkID, "nova-network's numeric network id")
	require.Len(t, nn.Subnets, 2, "the null-CIDR subnet is kept as a placeholder")
	assert.False(t, nn.Subnets[0].Gateway.IsValid())
	assert.True(t, nn.Subnets[1].Placeholder())
	assert.False(t, nn.Subnets[0].Placeholder())

	// Nova's cache stores the list as a JSON string.
	quoted, err := json.Marshal(novaNetworkInfo)
	require.NoError(t, err)
	again, err := ParseNetworkInfo(quoted)
	require.NoError(t, err)
	assert.Equal(t, vifs, again)
}

func TestParseNetworkInfoErrors(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":          `[{`,
		"not a list":        `{"id": "x"}`,
		"bad MAC":           `[{"id": "p1", "type": "ovs", "address": "fa:16:3e:zz:00:00"}]`,
		"long MAC":          `[{"id": "p1", "type": "ovs", "address": "00:00:00:00:fe:80:00:00"}]`,
		"bad CIDR":          `[{"id": "p1", "type": "ovs", "network": {"subnets": [{"cidr": "10.0.0.0/33"}]}}]`,
		"host bits":         `[{"id": "p1", "type": "ovs", "network": {"subnets": [{"cidr": "10.0.0.1/24"}]}}]`,
		"IP outside":        `[{"id": "p1", "type": "ovs", "network": {"subnets": [{"cidr": "10.0.0.0/24", "ips": [{"address": "10.0.1.1"}]}]}}]`,
		"bad MTU":           `[{"id": "p1", "type": "ovs", "network": {"meta": {"mtu": "big"}}}]`,
		"MTU out of range":  `[{"id": "p1", "type": "ovs", "network": {"meta": {"mtu": 70000}}}]`,
		"duplicate ID":      `[{"id": "p1", "type": "ovs"}, {"id": "p1", "type": "ovs"}]`,
		"duplicate MAC":     `[{"id": "p1", "type": "ovs", "address": "fa:16:3e:00:00:01"}, {"id": "p2", "type": "ovs", "address": "fa:16:3e:00:00:01"}]`,
		"same device names": `[{"id": "0123456789a-1", "type": "ovs"}, {"id": "0123456789a-2", "type": "ovs"}]`,
		"no type":           `[{"id": "p1"}]`,
		"bridge too long":   `[{"id": "p1", "type": "bridge", "network": {"bridge": "brq0123456789abcdef"}}]`,
		"bad vlan":          `[{"id": "p1", "type": "bridge", "network": {"meta": {"vlan": 5000, "should_create_vlan": true}}}]`,
		"bad dhcp_server":   `[{"id": "p1", "type": "ovs", "network": {"subnets": [{"cidr": "10.0.0.0/24", "meta": {"dhcp_server": "x"}}]}}]`,
		"v6 dhcp_server":    `[{"id": "p1", "type": "ovs", "network": {"subnets": [{"cidr": "10.0.0.0/24", "meta": {"dhcp_server": "fd00::2"}}]}}]`,
		"mode on IPv4":      `[{"id": "p1", "type": "ovs", "network": {"subnets": [{"cidr": "10.0.0.0/24", "meta": {"ipv6_address_mode": "slaac"}}]}}]`,
		"unknown mode":      `[{"id": "p1", "type": "ovs", "network": {"subnets": [{"cidr": "fd00::/64", "meta": {"ipv6_ra_mode": "fast"}}]}}]`,
		"bad floating IP":   `[{"id": "p1", "type": "ovs", "network": {"subnets": [{"cidr": "10.0.0.0/24", "ips": [{"address": "10.0.0.5", "floating_ips": [{"address": "1.2.3"}]}]}]}}]`,
		"no cidr, an IP":    `[{"id": "p1", "type": "ovs", "network": {"subnets": [{"cidr": null, "ips": [{"address": "10.0.0.5"}]}]}}]`,
		"bad enable_dhcp":   `[{"id": "p1", "type": "ovs", "network": {"subnets": [{"cidr": "10.0.0.0/24", "meta": {"enable_dhcp": "maybe"}}]}}]`,
	} {
		vifs, err := ParseNetworkInfo([]byte(in))
		assert.ErrorIs(t, err, ErrInvalidVIF, name)
		if name != "not JSON" && name != "not a list" {
			var nie *NetworkInfoError
			require.ErrorAs(t, err, &nie, name)
			assert.NotEmpty(t, nie.Skipped, name)
			assert.NoError(t, ValidateVIFs(vifs), name)
		} else {
			assert.Nil(t, vifs, name)
		}
	}
	_, err := ParseNetworkInfo([]byte(`[{"id": "p1", "type": "ovs", "network": {"bridge": "brq0123456789abcdef"}}]`))
	assert.ErrorIs(t, err, ErrDeviceNameTooLong)
	vifs, err := ParseNetworkInfo([]byte(`[]`))
	assert.NoError(t, err)
	assert.Empty(t, vifs)
}

// TestParseNetworkInfoSkipsMalformed: as Nova writes the well-formed VIFs
// of a list with a malformed one, the parser returns them, in order, and
// reports the one it left out by position and port ID.
func TestParseNetworkInfoSkipsMalformed(t *testing.T) {
	in := `[
	 {"id": "p0", "type": "ovs", "address": "fa:16:3e:00:00:01", "network": {"id": "n", "subnets": [{"cidr": "10.0.0.0/24", "ips": [{"address": "10.0.0.5"}]}]}},
	 {"id": "p1", "type": "ovs", "address": "fa:16:3e:00:00:02", "network": {"id": "n", "subnets": [{"cidr": "10.0.0.0/24", "ips": [{"address": "10.9.0.5"}]}]}},
	 {"id": "p2", "type": "bridge", "address": "fa:16:3e:00:00:01", "network": {"id": "n"}},
	 {"id": "p3", "type": "bridge", "address": "fa:16:3e:00:00:03", "network": {"id": "n", "meta": {"mtu": {"no": 1}}}},
	 {"id": "p4", "type": "bridge", "address": "fa:16:3e:00:00:04"}
	]`
	vifs, err := ParseNetworkInfo([]byte(in))
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidVIF)
	var nie *NetworkInfoError
	require.ErrorAs(t, err, &nie)
	var idx []int
	for _, s := range nie.Skipped {
		idx = append(idx, s.Index)
		assert.ErrorIs(t, s.Err, ErrInvalidVIF)
		assert.Equal(t, fmt.Sprintf("p%d", s.Index), s.ID)
	}
	assert.Equal(t, []int{1, 2, 3}, idx, "outside its subnet, a repeated MAC, an MTU that is no number")
	require.Len(t, vifs, 2)
	assert.Equal(t, "p0", vifs[0].ID)
	assert.Equal(t, "p4", vifs[1].ID)
	assert.Contains(t, err.Error(), "VIF 1 (\"p1\")")
}

func TestSubnetMeta(t *testing.T) {
	v4 := Subnet{CIDR: netip.MustParsePrefix("10.0.0.0/24")}
	v6 := Subnet{CIDR: netip.MustParsePrefix("fd00::/64")}
	assert.False(t, v4.DHCP())
	assert.False(t, v4.Dynamic())
	d := v4
	d.DHCPServer = netip.MustParseAddr("10.0.0.2")
	assert.True(t, d.DHCP())
	assert.True(t, d.Dynamic())
	d = v4
	d.EnableDHCP = true
	assert.True(t, d.DHCP(), "enable_dhcp without a DHCP port (OVN)")
	s := v6
	s.IPv6AddressMode = IPv6SLAAC
	assert.False(t, s.DHCP())
	assert.True(t, s.Dynamic())
	assert.True(t, Subnet{}.Placeholder())
	assert.False(t, Subnet{DNS: []netip.Addr{netip.MustParseAddr("10.0.0.2")}}.Placeholder())
	assert.False(t, v4.Placeholder())
	assert.NoError(t, Subnet{}.validate())
	assert.Error(t, Subnet{EnableDHCP: true}.validate(), "a subnet without a CIDR holds nothing")
}

func FuzzParseNetworkInfo(f *testing.F) {
	f.Add([]byte(novaNetworkInfo))
	f.Add([]byte(`[]`))
	f.Add([]byte(`"[{\"id\": \"p\", \"type\": \"ovs\"}]"`))
	f.Add([]byte(`[{"id": "p1", "type": "bridge", "address": "fa:16:3e:00:00:01", "network": {"bridge": "br0", "meta": {"mtu": "1500", "vlan": 3, "should_create_vlan": "true"}, "subnets": [{"cidr": "::/0", "ips": [{"address": "::1"}], "routes": [{"cidr": "::/0", "gateway": {"address": "::2"}}]}]}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		vifs, err := ParseNetworkInfo(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidVIF) {
				t.Fatalf("error of no class: %v", err)
			}
			var nie *NetworkInfoError
			if !errors.As(err, &nie) && vifs != nil {
				t.Fatalf("VIFs with an error on the whole list")
			}
		}
		if err := ValidateVIFs(vifs); err != nil {
			t.Fatalf("parsed VIFs do not validate: %v", err)
		}
		// Our own JSON form round-trips what the parser produced.
		b, err := json.Marshal(vifs)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back []VIF
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		b2, _ := json.Marshal(back)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed:\n%s\n%s", b, b2)
		}
	})
}

func TestMACText(t *testing.T) {
	v := VIF{ID: "p1", Type: VIFTypeOVS, Address: MustParseMAC("FA:16:3E:00:00:0A")}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"address":"fa:16:3e:00:00:0a"`)
	var back VIF
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, v, back)

	b, err = json.Marshal(VIF{ID: "p1"})
	require.NoError(t, err)
	assert.NotContains(t, string(b), "address", "nil MAC is omitted")
	assert.ErrorIs(t, json.Unmarshal([]byte(`{"address":"nope"}`), &back), ErrInvalidVIF)
	assert.ErrorIs(t, json.Unmarshal([]byte(`{"address":"00:00:00:00:fe:80:00:00"}`), &back), ErrInvalidVIF)
}

func TestValidateVIFs(t *testing.T) {
	a, b := validVIF(), validVIF()
	b.ID = "5e3b2c1a-0000-4000-8000-000000000002"
	b.Address = MustParseMAC("fa:16:3e:00:00:02")
	require.NoError(t, ValidateVIFs([]VIF{a, b}))
	c := b
	c.Address = a.Address
	assert.ErrorIs(t, ValidateVIFs([]VIF{a, c}), ErrInvalidVIF, "duplicate MAC")
	c = b
	c.ID = a.ID
	assert.ErrorIs(t, ValidateVIFs([]VIF{a, c}), ErrInvalidVIF, "duplicate port ID")
	c = b
	c.Subnets = []Subnet{{CIDR: netip.MustParsePrefix("fd00::/64"), IPs: []netip.Addr{netip.MustParseAddr("fd00::5")}}}
	c.MTU = 1000
	assert.ErrorIs(t, ValidateVIFs([]VIF{a, c}), ErrInvalidVIF, "IPv6 below 1280")
	c.MTU = 1280
	assert.NoError(t, ValidateVIFs([]VIF{a, c}))
}
