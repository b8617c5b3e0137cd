package docker

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/network"
)

// TestConfigDriveNetworkDataFollowsVIFs checks, inside a real instance,
// that the config drive's network_data.json describes the instance's VIFs
// at spawn, gains a hot-attached one and loses it again on detach.
func TestConfigDriveNetworkDataFollowsVIFs(t *testing.T) {
	t.Parallel()
	lab := newBridgeLab(t)
	e := newEnv(t, WithVIFDriver(lab.drv))
	ctx := t.Context()
	v0, v1 := lab.vif(1, 2), lab.vif(2, 2)
	spec := e.spec("a")
	spec.VIFs = []network.VIF{v0}
	e.spawn(spec)

	type netData struct {
		Links []struct {
			MAC string `json:"ethernet_mac_address"`
			MTU int    `json:"mtu"`
		} `json:"links"`
		Networks []struct {
			IP string `json:"ip_address"`
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
	assert.Equal(t, 1400, nd.Links[0].MTU)
	assert.Contains(t, ips(nd), ip4(v0))
	assert.Contains(t, ips(nd), ip6(v0))

	require.NoError(t, e.drv.AttachInterface(ctx, "a", v1))
	nd = read()
	assert.Equal(t, []string{v0.Address.String(), v1.Address.String()}, macs(nd))
	assert.Contains(t, ips(nd), ip4(v1))

	require.NoError(t, e.drv.DetachInterface(ctx, "a", v1))
	assert.Equal(t, []string{v0.Address.String()}, macs(read()))
}
