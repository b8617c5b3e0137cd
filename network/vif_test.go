package network

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func validVIF() VIF {
	mac := MustParseMAC("fa:16:3e:00:00:01")
	return VIF{
		ID: "4e3b2c1a-0000-4000-8000-000000000001", Address: mac, Type: VIFTypeOVS, Bridge: "br-int", MTU: 1450,
		Subnets: []Subnet{{
			CIDR: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
			IPs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, DNS: []netip.Addr{netip.MustParseAddr("10.0.0.2")},
			Routes: []Route{{Dest: netip.MustParsePrefix("192.168.0.0/16"), Gateway: netip.MustParseAddr("10.0.0.254")}},
		}},
	}
}

func TestVIFValidate(t *testing.T) {
	require.NoError(t, validVIF().Validate())
	cases := map[string]func(*VIF){
		"empty ID":          func(v *VIF) { v.ID = "" },
		"empty type":        func(v *VIF) { v.Type = "" },
		"short MAC":         func(v *VIF) { v.Address = v.Address[:4] },
		"negative MTU":      func(v *VIF) { v.MTU = -1 },
		"MTU below IPv4":    func(v *VIF) { v.MTU = 60 },
		"MTU too large":     func(v *VIF) { v.MTU = 70000 },
		"VLAN out of range": func(v *VIF) { v.VLAN = 4095 },
		"IP outside subnet": func(v *VIF) { v.Subnets[0].IPs = []netip.Addr{netip.MustParseAddr("10.0.1.5")} },
		"IPv6 DHCP server":  func(v *VIF) { v.Subnets[0].DHCPServer = netip.MustParseAddr("fd00::2") },
		"IPv6 mode on IPv4": func(v *VIF) { v.Subnets[0].IPv6AddressMode = IPv6DHCPStateful },
		"unknown RA mode":   func(v *VIF) { v.Subnets[0].IPv6RAMode = "fast" },
		"floating IP of no fixed IP": func(v *VIF) {
			v.Subnets[0].FloatingIPs = []FloatingIP{{Address: netip.MustParseAddr("203.0.113.5"), FixedIP: netip.MustParseAddr("10.0.0.6")}}
		},
		"floating IP twice": func(v *VIF) {
			f := FloatingIP{Address: netip.MustParseAddr("203.0.113.5"), FixedIP: netip.MustParseAddr("10.0.0.5")}
			v.Subnets[0].FloatingIPs = []FloatingIP{f, f}
		},
		"placeholder with a DNS server": func(v *VIF) {
			v.Subnets = append(v.Subnets, Subnet{DNS: []netip.Addr{netip.MustParseAddr("10.0.0.2")}})
		},
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			v := validVIF()
			mod(&v)
			assert.ErrorIs(t, v.Validate(), ErrInvalidVIF)
		})
	}
}

func TestVIFJSONRoundTrip(t *testing.T) {
	v := validVIF()
	v.Subnets[0].DHCPServer = netip.MustParseAddr("10.0.0.2")
	v.Subnets[0].FloatingIPs = []FloatingIP{{Address: netip.MustParseAddr("203.0.113.5"), FixedIP: netip.MustParseAddr("10.0.0.5")}}
	v.Subnets = append(v.Subnets, Subnet{}, Subnet{
		CIDR: netip.MustParsePrefix("fd00::/64"), IPs: []netip.Addr{netip.MustParseAddr("fd00::5")},
		EnableDHCP: true, IPv6AddressMode: IPv6DHCPStateless, IPv6RAMode: IPv6DHCPStateless,
	})
	require.NoError(t, v.Validate())
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var back VIF
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, v, back)
	assert.Contains(t, string(b), `"cidr":"10.0.0.0/24"`)
}

func TestSLAACAddress(t *testing.T) {
	// Neutron's address for MAC fa:16:3e:00:00:07 on fd00:7::/64.
	assert.Equal(t, "fd00:7::f816:3eff:fe00:7", SLAACAddress(netip.MustParsePrefix("fd00:7::/64"), MustParseMAC("fa:16:3e:00:00:07")).String())
	assert.Equal(t, "fe80::ff:fe00:1", SLAACAddress(netip.MustParsePrefix("fe80::/64"), MustParseMAC("02:00:00:00:00:01")).String())
	assert.False(t, SLAACAddress(netip.MustParsePrefix("10.0.0.0/24"), MustParseMAC("02:00:00:00:00:01")).IsValid())
	assert.False(t, SLAACAddress(netip.MustParsePrefix("fd00::/64"), nil).IsValid())
}
