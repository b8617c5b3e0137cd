package dhcp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/network"
)

func TestValidate(t *testing.T) {
	good := Config{Dir: "/run/x", Interface: "eth0", Subnets: []Subnet{{CIDR: netip.MustParsePrefix("10.0.0.0/24"), Mode: ModeDHCP}}}
	require.NoError(t, good.Validate())
	for name, mod := range map[string]func(*Config){
		"relative dir":   func(c *Config) { c.Dir = "x" },
		"no interface":   func(c *Config) { c.Interface = "" },
		"long interface": func(c *Config) { c.Interface = "abcdefghijklmnop" },
		"no subnets":     func(c *Config) { c.Subnets = nil },
		"v6 mode on v4":  func(c *Config) { c.Subnets[0].Mode = ModeSLAAC },
		"v4 mode on v6":  func(c *Config) { c.Subnets[0].CIDR = netip.MustParsePrefix("fd00::/64") },
		"slaac not /64": func(c *Config) {
			c.Subnets[0] = Subnet{CIDR: netip.MustParsePrefix("fd00::/80"), Mode: ModeSLAAC}
		},
		"unknown mode":     func(c *Config) { c.Subnets[0].Mode = "static" },
		"host bits":        func(c *Config) { c.Subnets[0].CIDR = netip.MustParsePrefix("10.0.0.1/24") },
		"gateway outside":  func(c *Config) { c.Subnets[0].Gateway = netip.MustParseAddr("10.0.1.1") },
		"dns family":       func(c *Config) { c.Subnets[0].DNS = []netip.Addr{netip.MustParseAddr("fd00::1")} },
		"route family":     func(c *Config) { c.Subnets[0].Routes = []network.Route{{Dest: netip.MustParsePrefix("fd00::/64")}} },
		"twice":            func(c *Config) { c.Subnets = append(c.Subnets, c.Subnets[0]) },
		"mtu":              func(c *Config) { c.MTU = 20 },
		"short lease":      func(c *Config) { c.LeaseTime = time.Second },
		"domain":           func(c *Config) { c.Domain = "a..b" },
		"v6 metadata next": func(c *Config) { c.MetadataRoute = netip.MustParseAddr("fd00::1") },
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			c.Subnets = append([]Subnet(nil), good.Subnets...)
			mod(&c)
			assert.ErrorIs(t, c.Validate(), ErrInvalidConfig)
		})
	}
}

func TestRender(t *testing.T) {
	c := Config{
		Dir: "/run/n1", Interface: "tap0", MTU: 1450, MetadataRoute: netip.MustParseAddr("10.0.0.2"),
		Subnets: []Subnet{
			{CIDR: netip.MustParsePrefix("10.0.0.0/24"), Mode: ModeDHCP, Gateway: netip.MustParseAddr("10.0.0.1"),
				DNS: []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("8.8.4.4")}},
			{CIDR: netip.MustParsePrefix("10.1.0.0/24"), Mode: ModeDHCP},
			{CIDR: netip.MustParsePrefix("fd00::/64"), Mode: ModeSLAAC},
			{CIDR: netip.MustParsePrefix("fd01::/64"), Mode: ModeDHCPv6Stateful, DNS: []netip.Addr{netip.MustParseAddr("fd01::53")}},
			{CIDR: netip.MustParsePrefix("fd02::/64"), Mode: ModeDHCPv6Stateless},
		},
	}
	require.NoError(t, c.Validate())
	conf := c.render()
	for _, want := range []string{
		"port=0", "interface=tap0", "domain=novalocal",
		"dhcp-range=set:subnet0,10.0.0.0,static,255.255.255.0,86400",
		"dhcp-option=tag:subnet0,option:router,10.0.0.1",
		"dhcp-option=tag:subnet0,option:dns-server,8.8.8.8,8.8.4.4",
		"dhcp-option=tag:subnet0,option:classless-static-route,169.254.169.254/32,10.0.0.2,0.0.0.0/0,10.0.0.1",
		"dhcp-option-force=tag:subnet0,option:mtu,1450",
		"dhcp-option=tag:subnet1,option:router\n", // no gateway: no router (dnsmasq would send itself)
		"dhcp-range=set:subnet2,fd00::,ra-only,64,86400",
		"dhcp-range=set:subnet3,fd01::,static,64,86400",
		"dhcp-option=tag:subnet3,option6:dns-server,[fd01::53]",
		"dhcp-range=set:subnet4,fd02::,ra-stateless,64,86400",
		"enable-ra", "ra-param=tap0,mtu:1450,30,0",
	} {
		assert.Contains(t, conf, want)
	}
	assert.NotContains(t, conf, "tag:subnet1,option:classless", "the metadata route goes where its next hop is")

	hosts := []Host{
		{MAC: network.MustParseMAC("fa:16:3e:00:00:01"), IPs: []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fd00::f816:3eff:fe00:1"), netip.MustParseAddr("fd01::5")}},
		{MAC: network.MustParseMAC("fa:16:3e:00:00:02"), IPs: []netip.Addr{netip.MustParseAddr("fd01::6")}, Hostname: "web"},
	}
	require.NoError(t, c.validateHosts(hosts))
	assert.Equal(t, strings.Join([]string{
		"fa:16:3e:00:00:01,10.0.0.5,host-10-0-0-5",
		"fa:16:3e:00:00:01,[fd01::5],host-10-0-0-5",
		"fa:16:3e:00:00:02,[fd01::6],web",
	}, "\n")+"\n", c.renderHosts(hosts))
	assert.ErrorIs(t, c.validateHosts(append(hosts, hosts[0])), ErrInvalidConfig)
	assert.ErrorIs(t, c.validateHosts([]Host{{MAC: network.MustParseMAC("01:00:5e:00:00:01")}}), ErrInvalidConfig)
}

func TestParseLeases(t *testing.T) {
	ls, err := parseLeases([]byte("1700000000 02:00:00:00:00:05 10.0.0.5 host-10-0-0-5 01:02:00:00:00:00:05\n0 02:00:00:00:00:06 10.0.0.6 * *\nduid 00:01:00:01\n1700000000 1234 fd00::5 * 00:03:00:01\n"))
	require.NoError(t, err)
	require.Len(t, ls, 3)
	assert.Equal(t, "host-10-0-0-5", ls[0].Hostname)
	assert.True(t, ls[1].Expires.IsZero())
	assert.Empty(t, ls[1].Hostname)
	assert.Nil(t, ls[2].MAC)
	assert.Equal(t, "fd00::5", ls[2].IP.String())
	_, err = parseLeases([]byte("garbage\n"))
	assert.Error(t, err)
}
