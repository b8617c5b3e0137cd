package docker

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/configdrive"
	"github.com/dockervisor/dockervisor/network"
)

// TestRebuildKeepsNetworkingAndConfigDrive rebuilds a networked instance
// with boot data and checks, with real packets and inside the new
// container, that it keeps its NIC, its DNS servers and its config drive.
func TestRebuildKeepsNetworkingAndConfigDrive(t *testing.T) {
	t.Parallel()
	lab := newBridgeLab(t)
	e := newEnv(t, WithVIFDriver(lab.drv))
	ctx := t.Context()
	va, vb := lab.vif(1, 2), lab.vif(1, 3)
	a, b := e.spec("a"), e.spec("b")
	a.VIFs, b.VIFs = []network.VIF{va}, []network.VIF{vb}
	a.UserData = []byte("#!/bin/sh\necho rebuilt-user-data\n")
	e.spawn(a)
	e.spawn(b)
	e.requireTraffic("b", "a", va, false)
	before := e.pid("a")

	require.NoError(t, e.drv.Rebuild(ctx, "a", e.image))
	require.NotEqual(t, before, e.pid("a"), "a new container")

	e.requireGuestNIC("a", "eth0", va)
	e.requireTraffic("b", "a", va, false)
	e.requireTraffic("a", "b", vb, false)
	assert.Contains(t, e.guestFile("a", "/etc/resolv.conf"), "nameserver "+va.Subnets[0].DNS[0].String())
	assert.Equal(t, string(a.UserData), e.guestFile("a", configdrive.SeedDir+"/openstack/latest/user_data"))
	assert.Contains(t, e.guestFile("a", configdrive.SeedDir+"/openstack/latest/network_data.json"), va.Address.String())

	info, err := e.drv.Info(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, []string{va.ID}, vifIDs(info.VIFs))
}
