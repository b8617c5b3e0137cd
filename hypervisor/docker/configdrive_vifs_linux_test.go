package docker

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/network"
)

// TestConfigDriveNetworkDataFollowsVIFs checks, inside a real instance,
// that the config drive's network_data.json describes the instance's VIFs
// at spawn, gains a hot-attached one and loses it again on detach; and
// that the subnet meta and floating IPs of a VIF reach the drive as Nova
// writes them (a DHCP network, no link MTU, EC2 public-ipv4).
func TestConfigDriveNetworkDataFollowsVIFs(t *testing.T) {
	t.Parallel()
	lab := newBridgeLab(t)
	e := newEnv(t, WithVIFDriver(lab.drv), WithConfigDriveOptions(configdrive.WithDHCPDomain("lab.example"), configdrive.WithConfigDriveSkipVersions()))
	ctx := t.Context()
	v0, v1 := lab.vif(1, 2), lab.vif(2, 2)
	spec := e.spec("a")
	spec.VIFs = []network.VIF{v0}
	e.spawn(spec)

	// The hot-attached VIF's IPv4 subnet has DHCP (Neutron's DHCP port
	// holds .2) and a floating IP on its fixed IP.
	v1.Subnets[0].DHCPServer = v1.Subnets[0].Gateway.Next()
	v1.Subnets[0].FloatingIPs = []network.FloatingIP{{Address: netip.MustParseAddr("203.0.113.44"), FixedIP: v1.Subnets[0].IPs[0]}}

	type netData struct {
		Links []struct {
			MAC string `json:"ethernet_mac_address"`
			MTU *int   `json:"mtu"`
		} `json:"links"`
		Networks []struct {
			Type string `json:"type"`
			IP   string `json:"ip_address"`
		} `json:"networks"`
	}
	read := func() netData {
		t.Helper()
		var nd netData
		raw := e.guestFile("a", configdrive.SeedDir+"/openstack/latest/network_data.json")
		require.NoError(t, json.Unmarshal([]byte(raw), &nd), raw)
		return nd
	}
	macs := func(nd netData) []string {
		var out []string
		for _, l := range nd.Links {
			out = append(out, l.MAC)
		}
		return out
	}
	ips := func(nd netData) []string {
		var out []string
		for _, n := range nd.Networks {
			out = append(out, n.IP)
		}
		return out
	}

	nd := read()
	assert.Equal(t, []string{v0.Address.String()}, macs(nd))
	require.NotNil(t, nd.Links[0].MTU)
	assert.Equal(t, 1400, *nd.Links[0].MTU)
	assert.Contains(t, ips(nd), ip4(v0))
	assert.Contains(t, ips(nd), ip6(v0))

	require.NoError(t, e.drv.AttachInterface(ctx, "a", v1))
	nd = read()
	assert.Equal(t, []string{v0.Address.String(), v1.Address.String()}, macs(nd))
	assert.Nil(t, nd.Links[1].MTU, "the DHCP server gives the MTU")
	require.Len(t, nd.Networks, 4)
	assert.Equal(t, "ipv4_dhcp", nd.Networks[2].Type)
	assert.Empty(t, nd.Networks[2].IP, "a DHCP network names no address")
	assert.Equal(t, ip6(v1), nd.Networks[3].IP)
	var ec2 struct {
		PublicIPv4    string `json:"public-ipv4"`
		LocalIPv4     string `json:"local-ipv4"`
		LocalHostname string `json:"local-hostname"`
	}
	raw := e.guestFile("a", configdrive.SeedDir+"/ec2/latest/meta-data.json")
	require.NoError(t, json.Unmarshal([]byte(raw), &ec2), raw)
	assert.Equal(t, "203.0.113.44", ec2.PublicIPv4)
	assert.Equal(t, ip4(v0), ec2.LocalIPv4)
	// The Driver's config drive options: its DHCP domain, every EC2 version.
	assert.Equal(t, spec.Hostname()+".lab.example", ec2.LocalHostname)
	assert.Contains(t, e.guestFile("a", configdrive.SeedDir+"/ec2/1.0/meta-data.json"), `"hostname": "`+spec.Hostname()+`.lab.example"`)
	// The Driver still configures the address in an application
	// instance, which has no DHCP client.
	assert.Contains(t, e.execOut("a", "ip", "-o", "addr", "show"), ip4(v1)+"/")

	require.NoError(t, e.drv.DetachInterface(ctx, "a", v1))
	assert.Equal(t, []string{v0.Address.String()}, macs(read()))
}
