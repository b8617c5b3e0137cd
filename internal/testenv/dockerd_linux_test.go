package testenv

import (
	"net/http"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/dockervisor/dockervisor/network/nldump"
)

// TestEngineStartKillStop starts a private engine with each cgroup driver
// this host has, runs a container in it, kills the engine as a crash
// would, and checks that Stop leaves no process, mount, cgroup or
// directory behind.
func TestEngineStartKillStop(t *testing.T) {
	drivers := []string{CgroupDriverCgroupfs}
	if SystemdRuns() {
		drivers = append(drivers, CgroupDriverSystemd)
	}
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			e := StartEngine(t, EngineOptions{CgroupDriver: driver})
			ctx := t.Context()
			info, err := e.Client.Info(ctx, client.InfoOptions{})
			require.NoError(t, err)
			assert.Contains(t, info.Info.Labels, "dockervisor.test.engine="+e.Name)
			assert.Equal(t, e.Dir+"/data", info.Info.DockerRootDir)
			assert.Equal(t, driver, info.Info.CgroupDriver)

			require.NoError(t, e.LoadBusybox(ctx, "t/bb:1"))
			res, err := e.Client.ContainerCreate(ctx, client.ContainerCreateOptions{
				Image:      "t/bb:1",
				Config:     &container.Config{Cmd: []string{"sleep", "600"}},
				HostConfig: &container.HostConfig{NetworkMode: "none"},
			})
			require.NoError(t, err)
			_, err = e.Client.ContainerStart(ctx, res.ID, client.ContainerStartOptions{})
			require.NoError(t, err)
			require.NotEmpty(t, e.processesByCgroup(), "the container runs in the engine's cgroup parent")

			e.Kill()
			_, err = e.Client.Ping(ctx, client.PingOptions{})
			require.Error(t, err)
			require.NoError(t, e.Stop())
			assert.Empty(t, e.EngineLeftovers())
		})
	}
}

// TestEngineKeepsHostBridge: a private engine's start and stop leave the
// machine's engine's default bridge (docker0) alone, and the engine's
// default network is on a bridge of its own, removed by Stop. (dockerd
// started with --bridge=none deletes docker0.)
func TestEngineKeepsHostBridge(t *testing.T) {
	h, err := netlink.NewHandle()
	require.NoError(t, err)
	defer h.Close()
	before, err := nldump.LinkByName(h, "docker0")
	require.NoError(t, err, "the machine's engine has no docker0: start it with scripts/setup.sh")
	e := StartEngine(t, EngineOptions{})
	during, err := nldump.LinkByName(h, "docker0")
	require.NoError(t, err, "docker0 is gone after a private engine's start")
	assert.Equal(t, before.Attrs().Index, during.Attrs().Index)
	nw, err := e.Client.NetworkInspect(t.Context(), "bridge", client.NetworkInspectOptions{})
	require.NoError(t, err)
	assert.Equal(t, engineBridgeName(e.Name), nw.Network.Options["com.docker.network.bridge.name"])
	require.NotEmpty(t, nw.Network.IPAM.Config)
	sub := nw.Network.IPAM.Config[0].Subnet
	assert.True(t, sub.IsValid() && sub.Bits() == 30 && engineNets.Contains(sub.Addr().AsSlice()), "the engine's subnet %v is a /30 of %v", sub, &engineNets)
	require.NoError(t, e.Restart())
	require.NoError(t, e.Stop())
	assert.Empty(t, e.EngineLeftovers())
	after, err := nldump.LinkByName(h, "docker0")
	require.NoError(t, err, "docker0 is gone")
	assert.Equal(t, before.Attrs().Index, after.Attrs().Index, "docker0 was deleted and made again")
}

// TestEnginesDistinct checks that the shared engines are three different
// engines (their own IDs), one of them over TCP with TLS.
func TestEnginesDistinct(t *testing.T) {
	es := MustHaveEngines(t)
	require.Len(t, es, SharedEngineCount)
	ids := map[string]bool{}
	for _, e := range es {
		info, err := e.Client.Info(t.Context(), client.InfoOptions{})
		require.NoError(t, err)
		ids[info.Info.ID] = true
	}
	assert.Len(t, ids, SharedEngineCount, "each engine has its own ID")
	assert.NotEmpty(t, es[SharedEngineCount-1].TCP)
}

func TestMustHavePlacement(t *testing.T) {
	ep := MustHavePlacement(t)
	require.Equal(t, ep, MustHavePlacement(t), "one placement-api per process")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, ep+"resource_providers", nil)
	require.NoError(t, err)
	req.Header.Set("X-Auth-Token", PlacementToken)
	req.Header.Set("OpenStack-API-Version", "placement 1.39")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
