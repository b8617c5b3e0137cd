package secgroup_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/network"
	"github.com/dockervisor/dockervisor/network/secgroup"
)

func TestRuleValidate(t *testing.T) {
	in, v4, v6 := secgroup.Ingress, secgroup.IPv4, secgroup.IPv6
	good := []secgroup.Rule{
		{Direction: in, EtherType: v4},
		{Direction: secgroup.Egress, EtherType: v6, Protocol: "any"},
		{Direction: in, EtherType: v4, Protocol: "tcp", PortRangeMin: new(22)},
		{Direction: in, EtherType: v4, Protocol: "udp", PortRangeMin: new(1000), PortRangeMax: new(2000)},
		{Direction: in, EtherType: v4, Protocol: "icmp", PortRangeMin: new(8), PortRangeMax: new(0)},
		{Direction: in, EtherType: v6, Protocol: "icmp"},
		{Direction: in, EtherType: v6, Protocol: "ipv6-icmp", PortRangeMin: new(128)},
		{Direction: in, EtherType: v4, Protocol: "132", PortRangeMin: new(9)},
		{Direction: in, EtherType: v4, Protocol: "47"},
		{Direction: in, EtherType: v4, RemoteIPPrefix: "10.0.0.0/8"},
		{Direction: in, EtherType: v6, RemoteIPPrefix: "2001:db8::/32"},
		{Direction: in, EtherType: v4, RemoteGroupID: "g1"},
	}
	for _, r := range good {
		assert.NoError(t, r.Validate(), "%+v", r)
	}
	bad := []secgroup.Rule{
		{Direction: "sideways", EtherType: v4},
		{Direction: in, EtherType: "IPX"},
		{Direction: in, EtherType: v4, Protocol: "tcpp"},
		{Direction: in, EtherType: v4, Protocol: "256"},
		{Direction: in, EtherType: v4, Protocol: "06"},
		{Direction: in, EtherType: v4, Protocol: "icmpv6"},
		{Direction: in, EtherType: v6, Protocol: "1"},
		{Direction: in, EtherType: v4, Protocol: "tcp", PortRangeMin: new(0)},
		{Direction: in, EtherType: v4, Protocol: "tcp", PortRangeMin: new(65536)},
		{Direction: in, EtherType: v4, Protocol: "tcp", PortRangeMin: new(20), PortRangeMax: new(10)},
		{Direction: in, EtherType: v4, Protocol: "tcp", PortRangeMax: new(10)},
		{Direction: in, EtherType: v4, Protocol: "icmp", PortRangeMin: new(256)},
		{Direction: in, EtherType: v4, Protocol: "icmp", PortRangeMin: new(8), PortRangeMax: new(-1)},
		{Direction: in, EtherType: v4, Protocol: "icmp", PortRangeMax: new(0)},
		{Direction: in, EtherType: v4, Protocol: "47", PortRangeMin: new(1)},
		{Direction: in, EtherType: v4, PortRangeMin: new(1)},
		{Direction: in, EtherType: v4, RemoteIPPrefix: "10.0.0.0/33"},
		{Direction: in, EtherType: v4, RemoteIPPrefix: "banana"},
		{Direction: in, EtherType: v4, RemoteIPPrefix: "10.0.0.1/8"},
		{Direction: in, EtherType: v4, RemoteIPPrefix: "2001:db8::/32"},
		{Direction: in, EtherType: v6, RemoteIPPrefix: "10.0.0.0/8"},
		{Direction: in, EtherType: v4, RemoteIPPrefix: "10.0.0.0/8", RemoteGroupID: "g"},
		{Direction: in, EtherType: v4, RemoteGroupID: "a b"},
	}
	for _, r := range bad {
		assert.ErrorIs(t, r.Validate(), secgroup.ErrInvalidRule, "%+v", r)
	}
	assert.ErrorIs(t, secgroup.Group{ID: ""}.Validate(), secgroup.ErrInvalidRule)
}

func TestPortFromVIF(t *testing.T) {
	vif := network.VIF{
		ID: "0123456789abcdef", Address: network.MAC{0xfa, 0x16, 0x3e, 1, 2, 3}, Type: network.VIFTypeOVS, Bridge: "br-int", HybridPlug: true,
		Subnets: []network.Subnet{{CIDR: netip.MustParsePrefix("10.0.0.0/24"), IPs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}}},
	}
	p, err := secgroup.PortFromVIF(vif, "default")
	require.NoError(t, err)
	assert.Equal(t, secgroup.Port{ID: vif.ID, Device: "tap0123456789a", Bridge: "qbr0123456789a", MAC: vif.Address,
		IPs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, Groups: []string{"default"}}, p)

	vif.HybridPlug = false
	_, err = secgroup.PortFromVIF(vif)
	assert.ErrorIs(t, err, secgroup.ErrNotEnforceable)
	assert.ErrorIs(t, err, errors.ErrUnsupported)

	vif.Type, vif.Bridge = network.VIFTypeBridge, "brq1"
	p, err = secgroup.PortFromVIF(vif)
	require.NoError(t, err)
	assert.Equal(t, "brq1", p.Bridge)

	vif.Address = nil
	_, err = secgroup.PortFromVIF(vif)
	assert.ErrorIs(t, err, secgroup.ErrInvalidPort)
	assert.ErrorIs(t, err, network.ErrInvalidVIF)
}
