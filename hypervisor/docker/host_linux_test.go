package docker

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dockervisor/dockervisor/hypervisor"
	"github.com/dockervisor/dockervisor/internal/testenv"
	"github.com/dockervisor/dockervisor/stats"
	"github.com/dockervisor/dockervisor/stats/procfs"
)

func TestHostResourcesCountOnlyOwnInstances(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	before, err := e.drv.HostResources(ctx)
	require.NoError(t, err)
	assert.Equal(t, "docker", before.HypervisorType)
	ver, err := e.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	require.NoError(t, err)
	assert.Equal(t, ver.Version, before.HypervisorVersion)
	assert.Equal(t, ver.APIVersion, before.APIVersion)
	assert.Equal(t, procfs.NumCPU(), before.VCPUs)
	assert.Positive(t, before.MemoryMB)
	assert.InDelta(t, before.MemoryMB, before.MemoryUsedMB+before.MemoryFreeMB, 1)
	assert.Positive(t, before.DiskGB)
	assert.Positive(t, before.Uptime)
	assert.Zero(t, before.VCPUsUsed)

	spec := e.spec("h1")
	spec.VCPUs, spec.MemoryMB = 3, 200
	e.spawn(spec)
	// A foreign container with a big CPU weight does not count.
	res, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image:      e.image,
		Name:       testenv.UniqueName("foreign-"),
		Config:     &container.Config{Cmd: sleeper},
		HostConfig: &container.HostConfig{NetworkMode: "none", Resources: container.Resources{CPUShares: 8192, Memory: 300 << 20}},
	})
	require.NoError(t, err)
	testenv.RemoveContainerOnCleanup(t, e.cli, res.ID)
	_, err = e.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{})
	require.NoError(t, err)

	during, err := e.drv.HostResources(ctx)
	require.NoError(t, err)
	assert.Equal(t, before.VCPUsUsed+3, during.VCPUsUsed)
	assert.Equal(t, before.MemoryClaimedMB+200, during.MemoryClaimedMB)
	assert.Equal(t, map[string]int{"running": 1}, during.Instances)

	require.NoError(t, e.drv.PowerOff(ctx, "h1", hypervisor.StopOptions{}))
	stopped, err := e.drv.HostResources(ctx)
	require.NoError(t, err)
	assert.Equal(t, before.VCPUsUsed+3, stopped.VCPUsUsed, "a stopped instance keeps its claim")
	assert.Equal(t, map[string]int{"shutdown": 1}, stopped.Instances)

	require.NoError(t, e.drv.Destroy(ctx, "h1"))
	after, err := e.drv.HostResources(ctx)
	require.NoError(t, err)
	assert.Equal(t, before.VCPUsUsed, after.VCPUsUsed)
	assert.Equal(t, before.MemoryClaimedMB, after.MemoryClaimedMB)

	// Stable JSON field names for exporters.
	b, err := json.Marshal(after)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"vcpus", "vcpus_used", "memory_mb", "memory_used_mb", "memory_claimed_mb", "disk_gb", "disk_used_gb", "cpu_utilization", "load_average", "uptime_ns", "hypervisor_type", "instances"} {
		assert.Contains(t, m, k)
	}
}

func TestAvailableNodes(t *testing.T) {
	e := newEnv(t)
	info, err := e.cli.Info(t.Context(), client.InfoOptions{})
	require.NoError(t, err)
	nodes, err := e.drv.AvailableNodes(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{info.Info.Name}, nodes)

	named := newEnv(t, WithNodeName("compute-7"))
	nodes, err = named.drv.AvailableNodes(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"compute-7"}, nodes)
}

func TestInstanceStats(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	busy := e.spec("busy")
	busy.Command = []string{"sh", "-c", "while :; do :; done"}
	busy.MemoryMB = 48
	// A larger CPU weight: on a loaded host (the lane's guest runs other
	// tests' instances and engines beside it) the loop still gets its share.
	busy.VCPUs = 4
	idle := e.spec("idle")
	// Pings for as long as it lives, so the loopback counts grow between
	// the two samples however late the first one comes on a slow host.
	idle.Command = []string{"sh", "-c", "trap 'exit 0' TERM; ping -i 0.2 127.0.0.1 >/dev/null & wait"}
	e.spawn(idle)
	e.spawn(busy) // the second: the loop takes a CPU for as short as it can

	first := map[string]stats.Instance{}
	for _, id := range []string{"busy", "idle"} {
		s, err := e.drv.InstanceStats(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, id, s.ID)
		first[id] = s
	}
	assert.EqualValues(t, 48<<20, first["busy"].MemoryLimitBytes, "the flavor's memory limit shows in the stats")
	assert.Positive(t, first["busy"].MemoryBytes)

	// Sample again 7 s later: about 35 pings (70 packets) on the idle one's loopback.
	time.Sleep(7 * time.Second)
	second := map[string]stats.Instance{}
	for _, id := range []string{"busy", "idle"} {
		s, err := e.drv.InstanceStats(ctx, id)
		require.NoError(t, err)
		second[id] = s
	}
	assert.Greater(t, second["busy"].CPUTime, first["busy"].CPUTime+500*time.Millisecond, "a busy loop accumulates CPU time")
	assert.Greater(t, second["busy"].CPUPercent, 5.0, "a busy loop shows CPU use even on a loaded machine")
	assert.Less(t, second["idle"].CPUPercent, 5.0)
	assert.Greater(t, second["busy"].CPUPercent, 5*second["idle"].CPUPercent)

	lo := func(s stats.Instance) stats.Interface {
		for _, i := range s.Interfaces {
			if i.Device == "lo" {
				return i
			}
		}
		t.Fatalf("no lo in %+v", s.Interfaces)
		return stats.Interface{}
	}
	assert.GreaterOrEqual(t, lo(second["idle"]).RxPackets, lo(first["idle"]).RxPackets+20, "pings on the instance's loopback are counted")
	assert.Greater(t, lo(second["idle"]).TxBytes, lo(first["idle"]).TxBytes)
	assert.Equal(t, lo(second["busy"]).RxPackets, lo(first["busy"]).RxPackets, "no traffic, no change")

	require.NoError(t, e.drv.PowerOff(ctx, "busy", hypervisor.StopOptions{Timeout: -1}))
	off, err := e.drv.InstanceStats(ctx, "busy")
	require.NoError(t, err)
	assert.Zero(t, off.CPUPercent)
	assert.Empty(t, off.Interfaces)
	_, err = e.drv.InstanceStats(ctx, "nope")
	assert.ErrorIs(t, err, hypervisor.ErrNotFound)
}

// TestInstanceNetworkNamespace: without the engine's networking an
// instance's namespace is the runtime's, loopback up and nothing else,
// and its /etc/hosts is the Driver's, as the engine would write it.
func TestInstanceNetworkNamespace(t *testing.T) {
	e := newEnv(t)
	inst := e.spawn(e.spec("ns"))
	assert.True(t, e.inspect("ns").Config.NetworkDisabled)
	assert.Equal(t, []string{"lo"}, testenv.LinkNames(t, nsOf(inst.PID)))
	out, err := testenv.Ping(t, nsOf(inst.PID), "127.0.0.1", 1)
	require.NoError(t, err, "loopback is up: %s", out)
	hosts := e.guestFile("ns", "/etc/hosts")
	assert.Contains(t, hosts, "127.0.0.1\tlocalhost\n")
	assert.Contains(t, hosts, "::1\tlocalhost ip6-localhost ip6-loopback\n")
	// The guest may change it; the change stays across a restart.
	require.NoError(t, os.WriteFile(fmt.Sprintf("/proc/%d/root/etc/hosts", inst.PID), []byte(hosts+"10.0.0.9\tdb\n"), 0o644))
	require.NoError(t, e.drv.Reboot(t.Context(), "ns", hypervisor.RebootOptions{Hard: true}))
	assert.Contains(t, e.guestFile("ns", "/etc/hosts"), "10.0.0.9\tdb\n")
}
